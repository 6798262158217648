// Small filesystem helpers shared by the unpacker and the cache.
import { chmodSync, lstatSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';

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

/** Writes a file so that readers see either the old or the new content, never a part. */
export function writeFileAtomic(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
