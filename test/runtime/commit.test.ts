// container.commit(): a sandbox's writes and deletions become a layer of an image in the layer
// cache, which sandboxes in this process and others start from. Real sandboxes, a cache of this
// file's own (VITEST_CONTAINER_CACHE), images made here (test/security/helpers.ts's busybox) so
// that the rootless lane runs it too; the services (Redis, Postgres) are the project's images.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer, type Container } from '../../src/index.ts';
import { TarParser } from '../../src/image/tar/parser.ts';
import { isRoot } from '../helpers/host.ts';
import { busyboxImage, sh } from '../security/helpers.ts';
import { ensureImages, imagePath, repo } from '../../examples/shared/ensure-images.ts';

const cache = mkdtempSync(join(tmpdir(), 'vtc-commit-cache-'));
const work = mkdtempSync(join(tmpdir(), 'vtc-commit-'));
let base: string;

beforeAll(() => {
  process.env.VITEST_CONTAINER_CACHE = cache;
  base = busyboxImage(work, [
    { name: 'data/', type: 'dir', mode: 0o755 },
    { name: 'data/keep.txt', data: 'keep\n' },
    { name: 'data/gone.txt', data: 'gone\n' },
    { name: 'olddir/', type: 'dir', mode: 0o755 },
    { name: 'olddir/a', data: 'a\n' },
    { name: 'olddir/b', data: 'b\n' },
  ]);
});

afterAll(() => {
  delete process.env.VITEST_CONTAINER_CACHE;
  rmSync(cache, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** The entries of a tar stream: path -> { type, mode, uid, xattrs }. */
async function tarEntries(stream: AsyncIterable<Buffer>): Promise<Map<string, { type: string; mode: number; uid: number; xattrs: Record<string, string> }>> {
  const out = new Map<string, { type: string; mode: number; uid: number; xattrs: Record<string, string> }>();
  const parser = new TarParser({
    entry: (e) => out.set(e.path.replace(/\/$/, ''), { type: e.type, mode: e.mode, uid: e.uid, xattrs: Object.fromEntries([...(e.xattrs ?? [])].map(([k, v]) => [k, v.toString()])) }),
    data: () => {},
    endEntry: () => {},
  });
  for await (const chunk of stream) parser.push(chunk);
  parser.finish();
  return out;
}

describe('commit', () => {
  test('a fork sees the writes and deletions, modes, owners, links and xattrs; the image it was made from is unchanged', async () => {
    let ref: string;
    await withContainer({ image: base }, async (c) => {
      await sh(c, [
        'echo new > /data/new.txt', 'chmod 0640 /data/new.txt', 'chown 1000:1000 /data/new.txt',
        'rm /data/gone.txt', // a whiteout
        'rm -rf /olddir && mkdir /olddir && echo c > /olddir/c', // an opaque directory: a and b stay gone
        'ln -s new.txt /data/link', 'ln /data/new.txt /data/hard', 'mkfifo /data/fifo',
      ].join(' && '));
      // An xattr, set through copyTo (busybox has no setfattr).
      const { tarArchive } = await import('../image/helpers/tar-builder.ts');
      const { Readable } = await import('node:stream');
      await c.copyTo(Readable.from([tarArchive([{ name: 'tagged.txt', data: 't\n', pax: { 'SCHILY.xattr.user.origin': 'test' } }])]), '/data');
      ref = await c.commit();
    });
    expect(ref!).toMatch(/^cache:sha256:[0-9a-f]{64}$/);

    await withContainer({ image: ref! }, async (fork) => {
      expect(await sh(fork, 'cat /data/new.txt /data/keep.txt /olddir/c')).toBe('new\nkeep\nc\n');
      expect(await sh(fork, 'ls /olddir; ls /data')).toBe('c\nfifo\nhard\nkeep.txt\nlink\nnew.txt\ntagged.txt\n');
      expect(await sh(fork, 'stat -c "%a %F" /data/new.txt /data/fifo; readlink /data/link')).toBe('640 regular file\n644 fifo\nnew.txt\n');
      expect(await sh(fork, 'stat -c %i /data/new.txt /data/hard | uniq | wc -l')).toBe('1\n');
      // As root the layer keeps owners; rootless every layer's files are the user's, its root's inside (README: Known limits).
      expect(await sh(fork, 'stat -c %u:%g /data/new.txt')).toBe(isRoot ? '1000:1000\n' : '0:0\n');
      const tagged = (await tarEntries(fork.copyFrom('/data'))).get('tagged.txt');
      expect(tagged?.xattrs).toEqual({ 'user.origin': 'test' });
    });

    await withContainer({ image: base }, async (again) => {
      expect(await sh(again, 'cat /data/gone.txt; ls /olddir; ls /data')).toBe('gone\na\nb\ngone.txt\nkeep.txt\n');
    });
  });

  test('two forks of one commit are independent, and a fork can be committed again', async () => {
    const ref = await withContainer({ image: base }, async (c) => {
      await sh(c, 'echo 1 > /data/counter');
      return c.commit();
    });
    const [a, b] = await Promise.all([startContainer({ image: ref }), startContainer({ image: ref })]);
    try {
      await sh(a, 'echo 2 > /data/counter && rm /data/keep.txt && echo mine > /data/a-only');
      expect(await sh(b, 'cat /data/counter /data/keep.txt; ls /data')).toBe('1\nkeep\ncounter\ngone.txt\nkeep.txt\n');
      const second = await a.commit();
      await withContainer({ image: second }, async (c) => {
        expect(await sh(c, 'cat /data/counter /data/a-only; ls /data')).toBe('2\nmine\na-only\ncounter\ngone.txt\n');
      });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('the reference works in another process of this machine (the layer is in the shared cache)', async () => {
    const ref = await withContainer({ image: base }, async (c) => {
      await sh(c, 'echo from-another-process > /data/shared');
      return c.commit();
    });
    const script = `import('${join(repo, 'src', 'index.ts')}').then(async ({ withContainer }) => {
      const out = await withContainer({ image: process.argv[1] }, (c) => c.exec(['cat', '/data/shared']));
      console.log(out.stdout.trim());
    })`;
    const r = spawnSync(process.execPath, ['-e', script, ref], { env: { ...process.env, VITEST_CONTAINER_CACHE: cache }, encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout.trim(), r.stderr).toBe('from-another-process');
  });

  test('config changes: env, cmd, workdir, user, ports and labels are the committed image\'s', async () => {
    const ref = await withContainer({ image: base, env: { STARTED_WITH: 'yes' } }, (c) => c.commit({
      env: { MODE: 'seeded' }, cmd: ['sh', '-c', 'echo "main: $MODE $STARTED_WITH $(pwd) $(id -u)"; exec sleep 100000'],
      workdir: '/data', user: '1000:1000', ports: [8080], labels: { purpose: 'test' },
    }));
    const fork = await startContainer({ image: ref, waitFor: { log: 'main:' } });
    try {
      expect(fork.logs()).toContain('main: seeded yes /data 1000');
      expect(fork.image.config).toMatchObject({ WorkingDir: '/data', User: '1000:1000', ExposedPorts: { '8080/tcp': {} }, Labels: { purpose: 'test' } });
      expect(fork.ports.has(8080)).toBe(true);
    } finally {
      await fork.stop();
    }
  });

  test('stop: true stops the sandbox first and commits what it left at its stop', async () => {
    const c = await startContainer({ image: base, cmd: ['sh', '-c', 'trap "echo written-at-stop > /data/state; exit 0" TERM; while :; do sleep 0.05; done'] });
    const ref = await c.commit({ stop: true });
    expect(c.running).toBe(false);
    expect((await c.wait()).exitCode).toBe(0);
    await withContainer({ image: ref, cmd: ['sleep', '100000'] }, async (fork) => {
      expect(await sh(fork, 'cat /data/state')).toBe('written-at-stop\n');
    });
  });

  test('images list shows a committed image; images prune removes it, and starting it then says so', async () => {
    const ref = await withContainer({ image: base }, async (c) => {
      await sh(c, 'echo listed > /data/listed');
      return c.commit();
    });
    const cli = (args: string[]) => execFileSync(process.execPath, [join(repo, 'src', 'cli', 'main.ts'), 'images', ...args, '--cache-dir', cache, '--json'], { encoding: 'utf8' });
    const listing = JSON.parse(cli(['list'])) as { images: { reference: string; manifestDigest: string }[] };
    expect(listing.images.map((i) => i.reference)).toContain(ref);
    const pruned = JSON.parse(cli(['prune', '--all'])) as { removedImages: string[]; removedLayers: string[] };
    expect(pruned.removedImages).toContain(ref.slice('cache:'.length));
    expect(readdirSync(join(cache, 'images')).filter((n) => n.endsWith('.json'))).toEqual([]);
    await expect(startContainer({ image: ref })).rejects.toMatchObject({ code: 'IMAGE_NOT_IN_CACHE' });
  });

  test('what cannot be committed says why: image host, a stopped sandbox, bad options, unknown references', async () => {
    await withContainer({ image: 'host', cmd: ['sleep', '100000'] }, async (c) => {
      await expect(c.commit()).rejects.toMatchObject({ code: 'COMMIT_UNSUPPORTED', name: 'SandboxError' });
    });
    const c = await startContainer({ image: base });
    await expect(c.commit({ cmd: 'sh' } as never)).rejects.toMatchObject({ code: 'INVALID_COMMIT_OPTIONS', name: 'InvalidOptionsError' });
    await expect(c.commit({ color: 'red' } as never)).rejects.toMatchObject({ code: 'INVALID_COMMIT_OPTIONS' });
    await c.stop();
    await expect(c.commit()).rejects.toMatchObject({ code: 'NOT_RUNNING', message: expect.stringMatching(/commit\(\{ stop: true \}\)/) });
    await expect(startContainer({ image: `cache:sha256:${'a'.repeat(64)}` })).rejects.toMatchObject({ code: 'IMAGE_NOT_IN_CACHE' });
    await expect(startContainer({ image: 'cache:latest' })).rejects.toMatchObject({ code: 'IMAGE_INVALID_REFERENCE' });
  });

  test('nothing of a commit is left in the cache\'s tmp/, and the sandbox\'s pid 1 keeps its scratch from the sandbox (root)', async () => {
    await withContainer({ image: base }, async (c) => {
      await c.commit();
      if (isRoot) {
        // Started by root pid 1 is not dumpable: its descriptors (the writable layer's among them) are not the sandbox's to open.
        const r = await c.exec(['sh', '-c', 'ls /proc/1/fd/ 2>&1; cat /proc/1/fd/*/upper 2>&1']);
        expect(r.stdout).toMatch(/Permission denied/);
        expect(r.stdout).not.toMatch(/^\d+$/m);
      }
    });
    expect(existsSync(join(cache, 'tmp')) ? readdirSync(join(cache, 'tmp')) : []).toEqual([]);
  });
});

describe.runIf(isRoot)('commit of services (the project\'s images)', { timeout: 300_000 }, () => {
  beforeAll(() => ensureImages(['redis', 'postgres']), 900_000);

  test('Redis: SAVE, then commit; each fork serves the keys', async () => {
    const ref = await withContainer({ image: imagePath('redis'), waitFor: { port: 6379 } }, async (redis) => {
      for (const [k, v] of [['alpha', '1'], ['beta', '2']]) expect((await redis.exec(['redis-cli', 'SET', k, v])).stdout.trim()).toBe('OK');
      expect((await redis.exec(['redis-cli', 'SAVE'])).stdout.trim()).toBe('OK'); // dump.rdb in /var/lib/redis, the image's dir
      return redis.commit();
    });
    const forks = await Promise.all([1, 2].map(() => startContainer({ image: ref, waitFor: { port: 6379 } })));
    try {
      await forks[0]!.exec(['redis-cli', 'SET', 'alpha', 'changed-in-one-fork']);
      for (const [i, fork] of forks.entries()) {
        expect((await fork.exec(['redis-cli', 'GET', 'beta'])).stdout.trim()).toBe('2');
        expect((await fork.exec(['redis-cli', 'GET', 'alpha'])).stdout.trim()).toBe(i === 0 ? 'changed-in-one-fork' : '1');
      }
    } finally {
      await Promise.all(forks.map((f) => f.stop()));
    }
  });

  test('Postgres: CHECKPOINT, then commit while it runs; a fork starts on the data with its rows', async () => {
    const pg = { env: { POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'app' }, waitFor: { command: ['pg_isready', '-h', '127.0.0.1', '-U', 'app', '-d', 'app'] } };
    const psql = (c: Container, sql: string) => c.exec(['psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'app', '-tAc', sql], { env: { PGPASSWORD: 'secret' } });
    const ref = await withContainer({ image: imagePath('postgres'), ...pg }, async (db) => {
      expect((await psql(db, 'CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 1000); CHECKPOINT')).exitCode).toBe(0);
      return db.commit();
    });
    await withContainer({ image: ref, ...pg }, async (fork) => {
      expect((await psql(fork, 'SELECT count(*) FROM items')).stdout.trim()).toBe('1000');
      // Started from the committed data: no initdb ran.
      expect(fork.logs()).not.toContain('entrypoint: initialized');
    });
  });
});
