// Seeded images: start a service from an image, put data in it once (migrations, fixtures),
// commit, and start every test file from that snapshot. The commit is kept in the layer
// cache and reused, across runs, for as long as what made it is the same: the base image's
// digest and the user's inputs (the contents of migration files, a version), as IntegreSQL
// keys its template databases. One process builds it; others wanting the same key at once
// wait for it (a lock per key in the cache).
import { createHash } from '../lazy-crypto.ts';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ContainerError, InvalidOptionsError, SeedError } from '../errors.ts';
import { logger } from '../log.ts';
import type { Container } from '../runtime/container.ts';
import { checkCommitOptions, type CommitOptions } from '../runtime/commit.ts';
import { loadImage } from '../runtime/image.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { startContainer } from '../runtime/start.ts';

const log = logger('seed');

/** Bumped when what a key covers changes: older seeded images are then made again. */
const SEED_FORMAT = 1;

export interface SeedImageOptions {
  /** The image to seed: anything `image` accepts (an OCI layout, a registry reference, a committed image). */
  image: string;
  /** What `images list` calls it (default: the image's last path component). Letters, digits, . _ - */
  name?: string;
  /** Host files and directories whose contents decide whether the seeded image is still current (migrations, fixtures). */
  inputs?: string[];
  /** Anything else that decides it (a schema version, a fixture size): JSON data. */
  key?: unknown;
  /** Options of the sandbox the seeding runs in (env, cmd, waitFor, memory, files, ...). */
  container?: Omit<ContainerOptions, 'image' | 'network' | 'alias'>;
  /** Puts the data in. The sandbox is committed when it resolves (and stopped after). */
  seed: (container: Container) => Promise<void> | void;
  /** How it is committed: config changes, and stop: true to stop the service cleanly first. */
  commit?: CommitOptions;
}

export interface SeededImage {
  /** The image's reference (`cache:sha256:…`), for `image` anywhere on this machine. */
  reference: string;
  /** The key it was made for (hex). */
  key: string;
  /** True when it was made now; false when an earlier one was reused. */
  seeded: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function invalid(message: string): never {
  throw new InvalidOptionsError('INVALID_SEED_OPTIONS', `seedImage: ${message}`);
}

export function checkSeedOptions(o: SeedImageOptions): void {
  if (typeof o !== 'object' || o === null) invalid('options must be an object');
  if (typeof o.image !== 'string' || !o.image) invalid('image must name the image to seed');
  if (typeof o.seed !== 'function') invalid('seed must be a function that puts the data in: seed: async (container) => { ... }');
  if (o.name !== undefined && (typeof o.name !== 'string' || !NAME.test(o.name))) invalid(`name ${JSON.stringify(o.name)} may hold letters, digits, '.', '_' and '-'`);
  if (o.inputs !== undefined && (!Array.isArray(o.inputs) || o.inputs.some((p) => typeof p !== 'string' || !p))) invalid('inputs must be an array of host paths');
  if (o.container !== undefined && (typeof o.container !== 'object' || o.container === null || 'image' in o.container)) invalid('container holds the seeding sandbox\'s options, without image (that is the image option)');
  if (o.commit !== undefined) checkCommitOptions(o.commit);
}

export function seedName(o: SeedImageOptions): string {
  return o.name ?? (o.image.replace(/[:@].*$/, '').split('/').filter(Boolean).pop()?.replace(/[^A-Za-z0-9_.-]/g, '-') || 'image');
}

/** sha256 of the inputs' contents: each file by its path relative to the input, directories walked in order. */
function hashInputs(inputs: string[]): string {
  const hash = createHash('sha256');
  for (const input of inputs) {
    const root = resolve(input);
    const walk = (path: string): void => {
      let st;
      try {
        st = lstatSync(path);
      } catch {
        throw new SeedError('SEED_INPUT_NOT_FOUND', `seedImage: input ${path} does not exist`, { fix: 'inputs are host paths (relative to the current directory) of the files the seed reads' });
      }
      const rel = relative(root, path) || '.';
      if (st.isDirectory()) {
        hash.update(`dir ${rel}\n`);
        for (const name of readdirSync(path).sort()) walk(join(path, name));
      } else if (st.isSymbolicLink()) {
        hash.update(`link ${rel} ${readlinkSync(path)}\n`);
      } else if (st.isFile()) {
        hash.update(`file ${rel} ${st.size}\n`);
        hash.update(readFileSync(path));
      }
    };
    hash.update(`input ${input}\n`);
    walk(root);
  }
  return hash.digest('hex');
}

/** The key of a seeded image: everything that decides what it holds. */
export async function seedKey(o: SeedImageOptions): Promise<string> {
  const base = await loadImage(o.image, { pull: o.container?.pull, platform: o.container?.platform });
  if (!base.base) {
    throw new SeedError('SEED_UNSUPPORTED', `seedImage: ${o.image} cannot be seeded: it is not an image of the layer cache (image 'host' and rootfs: directories cannot be committed)`,
      { fix: "seed an image: image: './images/postgres' (an OCI layout) or a registry reference" });
  }
  return createHash('sha256').update(JSON.stringify({
    format: SEED_FORMAT, base: base.base.manifestDigest, container: o.container ?? {}, commit: o.commit ?? {}, key: o.key ?? null,
    // The function's own text: editing the seed makes a new image (what it imports is up to `inputs`).
    seed: o.seed.toString(), inputs: hashInputs(o.inputs ?? []),
  }, (_k, v: unknown) => (v instanceof RegExp ? `RegExp ${String(v)}` : v))).digest('hex');
}

/**
 * The seeded image for these options: reused when one was made for the same key before (in this run
 * or an earlier one, by this process or another), made otherwise.
 */
export async function seedImage(options: SeedImageOptions): Promise<SeededImage> {
  checkSeedOptions(options);
  const key = await seedKey(options);
  const name = seedName(options);
  const { findSeeded, lockSeed, recordSeeded } = await import('./seed-store.ts');
  const found = findSeeded(name, key);
  if (found) {
    log('%s: reusing %s (key %s)', name, found, key.slice(0, 12));
    return { reference: found, key, seeded: false };
  }
  const lock = await lockSeed(key);
  try {
    const raced = findSeeded(name, key); // another process made it while we waited
    if (raced) return { reference: raced, key, seeded: false };
    const started = Date.now();
    const reference = await buildSeeded(options, name);
    recordSeeded(name, key, reference);
    log('%s: seeded %s in %d ms (key %s)', name, reference, Date.now() - started, key.slice(0, 12));
    return { reference, key, seeded: true };
  } finally {
    lock.release();
  }
}

async function buildSeeded(options: SeedImageOptions, name: string): Promise<string> {
  let container: Container;
  try {
    container = await startContainer({ ...options.container, image: options.image });
  } catch (err) {
    throw new SeedError('SEED_START_FAILED', `seedImage ${name}: the sandbox to seed could not start: ${(err as Error).message}`, { cause: err });
  }
  try {
    try {
      await options.seed(container);
    } catch (err) {
      const logs = container.logs().trimEnd().split('\n').slice(-20).map((l) => `    ${l}`).join('\n');
      throw new SeedError('SEED_FAILED', `seedImage ${name}: the seed function failed: ${(err as Error)?.message ?? String(err)}${logs ? `\n  the sandbox's last output:\n${logs}` : ''}`,
        { cause: err, fix: 'nothing was committed; fix the seed (or the migrations it applies) and run again' });
    }
    try {
      return await container.commit(options.commit ?? {});
    } catch (err) {
      if (err instanceof ContainerError && err.code === 'INVALID_COMMIT_OPTIONS') throw err;
      throw new SeedError('SEED_COMMIT_FAILED', `seedImage ${name}: the commit failed: ${(err as Error).message}`, { cause: err });
    }
  } finally {
    await container.stop();
  }
}
