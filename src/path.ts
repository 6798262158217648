// Finding files: executables the way a shell does, and this package's own files.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
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

let root: string | undefined;

/**
 * This package's root directory (where package.json and native/ are). Found by walking up from
 * this module rather than by a fixed number of `..`: the module runs from src/ in the repository
 * and from a bundled chunk under dist/ once built.
 */
export function packageRoot(): string {
  if (root) return root;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    // Ours: our name, or (republished or vendored under another name) our native sources.
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'vitest-environment-container') return (root = dir);
    } catch {
      // no package.json here
    }
    if (existsSync(join(dir, 'native', 'build.mjs')) && existsSync(join(dir, 'package.json'))) return (root = dir);
    if (dirname(dir) === dir) throw new Error(`vitest-environment-container: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
  }
}
