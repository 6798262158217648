// Which native runtime binary this process runs: the one place that decides.
//
// - An installed package (its root is inside a node_modules directory) ships a static binary
//   per supported architecture, built from native/ by `npm pack` (native/build.mjs --prebuilt):
//   native/prebuilt/linux-<process.arch>/vtc-runtime. No compiler, no install script.
// - Everywhere else, and on an architecture without a prebuilt binary, it is built from the
//   C sources next to it, on first use, into native/build/vtc-runtime (again whenever a source
//   is newer: in a checkout native/ changes, and a prebuilt binary left over from a pack
//   would not follow, so a checkout never uses one).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { HostCapabilityError } from '../errors.ts';
import { packageRoot } from '../path.ts';

const nativeDir = join(packageRoot(), 'native');
/** Where a binary built on this machine goes (native/build.mjs). */
const builtBinary = join(nativeDir, 'build', 'vtc-runtime');
/** Architectures the package ships a binary for (native/build.mjs TARGETS). */
export const PREBUILT_ARCHES = ['x64', 'arm64'];
const platform = `${process.platform}-${process.arch}`;
const prebuiltBinary = join(nativeDir, 'prebuilt', platform, 'vtc-runtime');
const installed = packageRoot().split(sep).includes('node_modules');
const COMPILER_FIX = 'install a C compiler and C library headers (Debian/Ubuntu: apt-get install gcc libc6-dev; Fedora: dnf install gcc glibc-static); the runtime is then built on first use';

export interface RuntimeChoice {
  path: string;
  /** prebuilt: shipped in the package; built: compiled on this machine and current; build: to be compiled on first use. */
  kind: 'prebuilt' | 'built' | 'build';
  /** Why this one, in words (for doctor and for errors). */
  reason: string;
}

function stale(binary: string): boolean {
  if (!existsSync(binary)) return true;
  const built = statSync(binary).mtimeMs;
  return readdirSync(nativeDir).some((f) => /\.[ch]$/.test(f) && statSync(join(nativeDir, f)).mtimeMs > built);
}

/** The binary this process would run, without building anything. */
export function chooseRuntime(): RuntimeChoice {
  if (installed && existsSync(prebuiltBinary)) return { path: prebuiltBinary, kind: 'prebuilt', reason: `prebuilt for ${platform}` };
  const why = installed
    ? `there is no prebuilt runtime for ${platform} (the package ships linux-${PREBUILT_ARCHES.join(' and linux-')}), so it is built from native/ on this machine`
    : 'in a source checkout it is built from native/ on this machine';
  return { path: builtBinary, kind: stale(builtBinary) ? 'build' : 'built', reason: why };
}

let chosen: string | undefined;

/** The runtime binary, built first when that is the way to get one; NATIVE_BUILD_FAILED says what is missing. */
export function runtimeBinary(): string {
  if (chosen) return chosen;
  const choice = chooseRuntime();
  if (choice.kind === 'build') {
    const r = spawnSync(process.execPath, [join(nativeDir, 'build.mjs')], { encoding: 'utf8' });
    if (r.status !== 0) {
      const said = (r.stderr || r.stdout || r.error?.message || '').trim().replace(/^vitest-environment-container: /, '');
      throw new HostCapabilityError('NATIVE_BUILD_FAILED', r.status === 3
        ? `no native runtime: ${choice.reason}, and there is ${said}`
        : `no native runtime: ${choice.reason}, and building it failed: ${said}`,
      { fix: COMPILER_FIX });
    }
  }
  chosen = choice.path;
  return chosen;
}
