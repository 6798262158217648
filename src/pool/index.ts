// `pool: containerPool({ memory: '1g', cpus: 1 })`: every test file's worker
// runs in its own sandbox (pid, network, uts, ipc and mount namespaces, its
// own cgroup, a throwaway layer over the host's file tree), and the sandboxes
// the file starts share the worker's localhost.
import { createRequire } from 'node:module';
import type { PoolOptions, PoolRunnerInitializer } from 'vitest/node';
import { HostCapabilityError } from '../errors.ts';
import { normalizeOptions } from '../runtime/options.ts';
import { ContainerPoolWorker, POOL_NAME, type PoolSandboxOptions } from './worker.ts';

export type { PoolSandboxOptions } from './worker.ts';

// The pool runs Vitest's internal worker entry (dist/workers/forks.js), which may
// change in any minor release: only the versions tested here are accepted.
export const SUPPORTED_VITEST = /^5\.1\./;

function assertSupportedVitest(): void {
  const version = (createRequire(import.meta.url)('vitest/package.json') as { version: string }).version;
  if (!SUPPORTED_VITEST.test(version)) {
    throw new HostCapabilityError('VITEST_VERSION_UNSUPPORTED', `containerPool() supports Vitest 5.1.x; this is Vitest ${version}`,
      { fix: 'install vitest@~5.1.0, or use environment: \'container\' without the pool' });
  }
}

export function containerPool(options: PoolSandboxOptions = {}): PoolRunnerInitializer {
  assertSupportedVitest();
  normalizeOptions(options); // bad limits fail at config load, not in every worker
  return {
    name: POOL_NAME,
    createPoolWorker: (poolOptions: PoolOptions) => new ContainerPoolWorker(poolOptions, options),
  };
}
