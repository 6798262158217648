// Locates (building on first use when needed) the native runtime binary.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostCapabilityError } from '../errors.ts';
import { packageRoot } from '../path.ts';

const nativeDir = join(packageRoot(), 'native');
/** Where the native runtime is (or will be) built. */
export const runtimeBinaryPath = join(nativeDir, 'build', 'vtc-runtime');
const binary = runtimeBinaryPath;
let checked = false;

function stale(): boolean {
  if (!existsSync(binary)) return true;
  const built = statSync(binary).mtimeMs;
  return readdirSync(nativeDir).some((f) => /\.[ch]$/.test(f) && statSync(join(nativeDir, f)).mtimeMs > built);
}

export function runtimeBinary(): string {
  if (checked) return binary;
  if (stale()) {
    const r = spawnSync(process.execPath, [join(nativeDir, 'build.mjs')], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new HostCapabilityError('NATIVE_BUILD_FAILED', `the native runtime could not be built: ${(r.stderr || r.stdout || '').trim()}`,
        { fix: 'install a C compiler (Debian/Ubuntu: apt-get install gcc libc6-dev) and run: npm run build:native' });
    }
  }
  checked = true;
  return binary;
}
