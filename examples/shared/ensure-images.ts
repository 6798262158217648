// Vitest globalSetup for the examples in this repository: builds the images the
// example needs with rootfs/ (Debian packages -> OCI image layout in
// <repo>/.cache/images/<name>) when they are missing or stale, and reuses them
// otherwise (an up-to-date check takes well under a second).
//
// A project that copies an example does not need this file: point `image` at an
// OCI image layout of your own (see the example's README) and drop `globalSetup`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repo = resolve(import.meta.dirname, '../..');

/** Where rootfs/ writes the image called `name`. */
export function imagePath(name: string): string {
  return join(repo, '.cache', 'images', name);
}

/** Builds (or checks) the named rootfs/ recipes; throws with the builder's output when it fails. */
export function ensureImages(names: string[]): void {
  // rootfs/build.ts is TypeScript run directly, which needs Node >= 23.6: prefer the Node the repo pins.
  const pinned = join(repo, 'node_modules', 'node', 'bin', 'node');
  const node = existsSync(pinned) ? pinned : process.execPath;
  const quiet = names.every((n) => existsSync(join(imagePath(n), 'index.json')));
  const res = spawnSync(node, [join(repo, 'rootfs', 'build.ts'), ...(quiet ? ['--quiet'] : []), ...names], {
    stdio: quiet ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    throw new Error(`building the example images (${names.join(', ')}) failed` +
      `${res.status === null ? ` (${res.signal ?? res.error?.message})` : ` with exit code ${res.status}`}` +
      `${quiet ? `:\n${res.stdout}${res.stderr}` : ''}\n` +
      `  by hand: node_modules/node/bin/node rootfs/build.ts ${names.join(' ')}   (as root; see rootfs/README.md)`);
  }
}
