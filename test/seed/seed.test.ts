// Seeded images: made once per key (the base image's digest, the inputs' contents, the options
// and the seed function's text), reused while the key is the same, by this process or another;
// of processes asking for one key at once, one seeds. A cache of this file's own.
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { provideSeededImage, seedImage, seededImage, startContainer, withContainer, type Container } from '../../src/index.ts';
import { busyboxImage } from '../security/helpers.ts';
import { repo } from '../helpers/unprivileged.ts';

const cache = mkdtempSync(join(tmpdir(), 'vtc-seed-cache-'));
const work = mkdtempSync(join(tmpdir(), 'vtc-seed-'));
const inputs = join(work, 'migrations');
const seeds = join(work, 'seeds.log');
let image: string;

beforeAll(() => {
  process.env.VITEST_CONTAINER_CACHE = cache;
  image = busyboxImage(join(work, 'image'));
  mkdirSync(inputs);
  writeFileSync(join(inputs, '001.sql'), 'create table a;\n');
});

afterAll(() => {
  delete process.env.VITEST_CONTAINER_CACHE;
  rmSync(cache, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** A seed that copies the inputs in and records that it ran (on the host). */
async function seedFromInputs(c: Container): Promise<void> {
  await c.copyTo(inputs, '/seeded');
  appendFileSync(seeds, 'seeded\n');
}

const runs = (): number => readFileSync(seeds, 'utf8').split('\n').filter(Boolean).length;

describe('seedImage', () => {
  test('seeds once, then reuses while the inputs are the same; a changed input seeds again', async () => {
    writeFileSync(seeds, '');
    const first = await seedImage({ image, inputs: [inputs], seed: seedFromInputs });
    expect(first).toMatchObject({ seeded: true, reference: expect.stringMatching(/^cache:sha256:/) });
    const again = await seedImage({ image, inputs: [inputs], seed: seedFromInputs });
    expect(again).toEqual({ ...first, seeded: false });
    expect(runs()).toBe(1);

    writeFileSync(join(inputs, '002.sql'), 'create table b;\n');
    const changed = await seedImage({ image, inputs: [inputs], seed: seedFromInputs });
    expect(changed.seeded).toBe(true);
    expect(changed.key).not.toBe(first.key);
    expect(runs()).toBe(2);
    await withContainer({ image: changed.reference }, async (c) => {
      expect((await c.exec(['ls', '/seeded'])).stdout).toBe('001.sql\n002.sql\n');
    });
    // Back to the first inputs: the first image is still there.
    rmSync(join(inputs, '002.sql'));
    expect(await seedImage({ image, inputs: [inputs], seed: seedFromInputs })).toEqual({ ...first, seeded: false });
    expect(runs()).toBe(2);
  });

  test('the key covers the seed function, the options and the key option', async () => {
    const a = await seedImage({ image, seed: async (c) => { await c.exec(['touch', '/a']); } });
    const b = await seedImage({ image, seed: async (c) => { await c.exec(['touch', '/b']); } });
    const withEnv = await seedImage({ image, container: { env: { X: '1' } }, seed: async (c) => { await c.exec(['touch', '/a']); } });
    const withKey = await seedImage({ image, key: { schema: 2 }, seed: async (c) => { await c.exec(['touch', '/a']); } });
    expect(new Set([a.key, b.key, withEnv.key, withKey.key]).size).toBe(4);
  });

  test('processes asking for one key at once: one seeds, all get its image', async () => {
    writeFileSync(seeds, '');
    const script = `import('${join(repo, 'src', 'index.ts')}').then(async ({ seedImage }) => {
      const { appendFileSync } = await import('node:fs');
      const r = await seedImage({ image: process.argv[1], name: 'concurrent', seed: async (c) => {
        await c.exec(['sh', '-c', 'echo once > /marker']);
        appendFileSync(process.argv[2], 'seeded\\n');
      } });
      console.log(r.reference);
    })`;
    const one = () => new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, image, seeds], { env: { ...process.env, VITEST_CONTAINER_CACHE: cache } });
      let out = '', err = '';
      child.stdout.on('data', (c: Buffer) => { out += c; });
      child.stderr.on('data', (c: Buffer) => { err += c; });
      child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err))));
    });
    const refs = await Promise.all([one(), one(), one()]);
    expect(new Set(refs).size).toBe(1);
    expect(runs()).toBe(1);
  });

  test('a failing seed is a SeedError with the sandbox\'s output, and nothing is recorded', async () => {
    const failing = { image, name: 'failing', seed: async (c: Container) => {
      await c.exec(['sh', '-c', 'echo "migration 3 failed" >&2']);
      throw new Error('relation "users" does not exist');
    }, container: { cmd: ['sh', '-c', 'echo booted; exec sleep 100000'], waitFor: { log: 'booted' } } };
    await expect(seedImage(failing)).rejects.toMatchObject({ code: 'SEED_FAILED', name: 'SeedError', message: expect.stringMatching(/relation "users" does not exist[\s\S]*booted/) });
    await expect(seedImage(failing)).rejects.toMatchObject({ code: 'SEED_FAILED' }); // tried again: no half result was kept
    await expect(seedImage({ image: 'host', seed: () => {} })).rejects.toMatchObject({ code: 'SEED_UNSUPPORTED' });
    await expect(seedImage({ image, seed: 'x' } as never)).rejects.toMatchObject({ code: 'INVALID_SEED_OPTIONS' });
    await expect(seedImage({ image, inputs: [join(work, 'absent')], seed: () => {} })).rejects.toMatchObject({ code: 'SEED_INPUT_NOT_FOUND' });
  });
});

describe('handing it over', () => {
  test('provideSeededImage: the environment, Vitest\'s provide, and image \'seeded:NAME\'', async () => {
    const provided: Record<string, unknown> = {};
    const project = { provide: (key: string, value: unknown) => { provided[key] = value; } };
    const ref = await provideSeededImage(project as never, 'handed', { image, seed: async (c) => { await c.exec(['sh', '-c', 'echo handed > /hello']); } });
    expect(provided).toEqual({ handed: ref });
    expect(process.env.VITEST_CONTAINER_SEEDED_handed).toBe(ref);
    expect(seededImage('handed')).toBe(ref);
    await withContainer({ image: 'seeded:handed' }, async (c) => {
      expect((await c.exec(['cat', '/hello'])).stdout).toBe('handed\n');
    });
    await expect(startContainer({ image: 'seeded:never' })).rejects.toMatchObject({ code: 'SEEDED_IMAGE_NOT_PROVIDED', message: expect.stringMatching(/provideSeededImage/) });
    delete process.env.VITEST_CONTAINER_SEEDED_handed;
  });

  test('watch mode: before a rerun the inputs are read again; only a change seeds again', async () => {
    writeFileSync(seeds, '');
    let rerun: (() => Promise<void> | void) | undefined;
    const provided: string[] = [];
    const project = { provide: (_key: string, value: string) => provided.push(value), onTestsRerun: (cb: () => Promise<void>) => { rerun = cb; } };
    await provideSeededImage(project as never, 'watched', { image, inputs: [inputs], seed: seedFromInputs });
    await rerun!();
    expect(provided.length).toBe(1);
    expect(runs()).toBe(1);
    writeFileSync(join(inputs, '003.sql'), 'create table c;\n');
    await rerun!();
    expect(provided.length).toBe(2);
    expect(runs()).toBe(2);
    expect(provided[1]).not.toBe(provided[0]);
    expect(process.env.VITEST_CONTAINER_SEEDED_watched).toBe(provided[1]);
    delete process.env.VITEST_CONTAINER_SEEDED_watched;
  });
});
