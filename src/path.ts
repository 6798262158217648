// Finding files: executables the way a shell does, and this package's own files.
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function findOnPath(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, binary), constants.X_OK);
      return join(dir, binary);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The nearest directory at or above start whose package.json says name, with that package.json. */
export function packageAbove(start: string, name: string): { dir: string; json: { name?: string; version?: string } } | undefined {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (json.name === name) return { dir, json };
    } catch {
      // no package.json here
    }
    if (dirname(dir) === dir) return undefined;
  }
}

let root: string | undefined;

/**
 * This package's root directory (where package.json and native/ are). Found by walking up from
 * this module rather than by a fixed number of `..`: the module runs from src/ in the repository
 * and from a bundled chunk under dist/ once built.
 */
export function packageRoot(): string {
  if (root) return root;
  const here = dirname(fileURLToPath(import.meta.url));
  root = packageAbove(here, 'vitest-environment-container')?.dir;
  // Republished or vendored under another name: the nearest package with our native sources.
  for (let dir = here; !root; dir = dirname(dir)) {
    if (existsSync(join(dir, 'native', 'build.mjs')) && existsSync(join(dir, 'package.json'))) root = dir;
    else if (dirname(dir) === dir) throw new Error(`vitest-environment-container: cannot find the package root above ${here}`);
  }
  return root;
}

/** Which build of a file this is (inode and mtime): two copies of this package in one test run each get a spawner and a service of their own. */
export function fileIdentity(path: string): string {
  const st = statSync(path);
  return `${st.ino}${Math.floor(st.mtimeMs)}`;
}
