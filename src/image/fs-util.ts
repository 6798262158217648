// Small filesystem helpers shared by the unpacker and the cache.
import { chmodSync, lstatSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { ImageError } from '../errors.ts';

/** rm -rf that also works on trees with read-only directories (rootless unpacks keep image modes). */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw err;
    makeDirsWritable(path);
    rmSync(path, { recursive: true, force: true });
  }
}

function makeDirsWritable(path: string): void {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return;
  chmodSync(path, 0o700);
  for (const name of readdirSync(path)) makeDirsWritable(`${path}/${name}`);
}

/** Writes a file so that readers see either the old or the new content, never a part. No temporary outlives a failure. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** A full disk or quota under the cache, as the typed error that says where and what to do; anything else as it is. */
export function cacheFault(err: unknown, cache: string, what: string): unknown {
  const code = errnoCode(err);
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return err;
  return new ImageError('IMAGE_CACHE_FULL',
    `${what}: the image cache at ${cache} has no room left (${code === 'ENOSPC' ? 'ENOSPC: the file system is full' : 'EDQUOT: the disk quota is used up'}); nothing was added to it`,
    { cause: err, fix: `free space there (npx vitest-environment-container images prune --older-than 7d removes unused images), or set VITEST_CONTAINER_CACHE to a directory on a larger disk` });
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
