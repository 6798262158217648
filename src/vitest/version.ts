// Which Vitest is running, and whether this package supports it. The environment and
// the pool rely on Vitest's environment API, its custom-pool API and its public worker
// API (`vitest/worker`), which have the shape used here from 4.1 on.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { readFileSync } from 'node:fs';
import { HostCapabilityError } from '../errors.ts';
import { packageAbove } from '../path.ts';

export const SUPPORTED_VITEST = '4.1.x and 5.x';

export interface VitestVersion { version: string; major: number; minor: number }

function parse(version: string): VitestVersion {
  const [major = 0, minor = 0] = version.split('.').map((p) => Number.parseInt(p, 10) || 0);
  return { version, major, minor };
}

export function isSupportedVitest(v: VitestVersion): boolean {
  return (v.major === 4 && v.minor >= 1) || v.major === 5;
}

/** The Vitest whose dist/ directory is `distPath` (what Vitest gives a pool). */
export function vitestAtDist(distPath: string): VitestVersion | undefined {
  try {
    return parse((JSON.parse(readFileSync(join(distPath, '..', 'package.json'), 'utf8')) as { version: string }).version);
  } catch {
    return undefined;
  }
}

/**
 * The Vitest running this process. A worker runs an entry file inside Vitest's package (or the
 * pool names it in VITEST_CONTAINER_VITEST_DIST); reading that package.json is much cheaper than
 * resolving 'vitest' (1-2 ms in every fresh worker). The main process resolves it from the
 * project (the working directory), as Vitest itself was.
 */
export function runningVitest(): VitestVersion | undefined {
  const dist = process.env[VITEST_DIST_ENV];
  if (dist) return vitestAtDist(dist);
  const version = packageAbove(dirname(process.argv[1] ?? '/'), 'vitest')?.json.version;
  if (version) return parse(version);
  for (const from of [join(process.cwd(), 'noop.js'), import.meta.url]) {
    try {
      return parse((createRequire(from)('vitest/package.json') as { version: string }).version);
    } catch {
      // not resolvable from here
    }
  }
  return undefined;
}

/** Set by the pool in its workers: the main process's vitest/dist, so the worker uses the very same Vitest. */
export const VITEST_DIST_ENV = 'VITEST_CONTAINER_VITEST_DIST';

export function assertSupportedVitest(v: VitestVersion | undefined, what: string): asserts v is VitestVersion {
  if (v && isSupportedVitest(v)) return;
  throw new HostCapabilityError('VITEST_VERSION_UNSUPPORTED',
    `${what} supports Vitest ${SUPPORTED_VITEST}; this is ${v ? `Vitest ${v.version}` : 'a Vitest whose version cannot be read'}`,
    { fix: 'install vitest@^5 (or vitest@~4.1) in this project' });
}
