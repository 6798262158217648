// `pool: containerPool({ memory: '1g', cpus: 1 })`: every test file's worker
// runs in its own sandbox (pid, network, uts, ipc and mount namespaces, its
// own cgroup, a throwaway layer over the host's file tree), and the sandboxes
// the file starts share the worker's localhost.
import type { PoolOptions, PoolRunnerInitializer } from 'vitest/node';
import { assertSupportedNode } from '../node-version.ts';
import { normalizeOptions } from '../runtime/options.ts';
import { assertSupportedVitest, runningVitest, vitestAtDist } from '../vitest/version.ts';
import { setupStub } from '../vitest/setup-stub.ts';
import { ContainerPoolWorker, POOL_NAME, type PoolSandboxOptions } from './worker.ts';

export type { PoolSandboxOptions } from './worker.ts';

export function containerPool(options: PoolSandboxOptions = {}): PoolRunnerInitializer {
  // Config load is where a user looks: an old Node, an unknown Vitest and bad limits fail here, not in every worker.
  assertSupportedNode();
  assertSupportedVitest(runningVitest(), 'containerPool()');
  normalizeOptions(options);
  // The environment's setup file, should the project use it: written here, on the host, since a
  // worker's own writes are throwaway (its sandbox sees the image cache, where it lives, bound in).
  setupStub();
  return {
    name: POOL_NAME,
    createPoolWorker: (poolOptions: PoolOptions) => {
      // The Vitest that asks is the one that counts (a project may resolve another copy than we do).
      assertSupportedVitest(vitestAtDist(poolOptions.distPath), 'containerPool()');
      return new ContainerPoolWorker(poolOptions, options);
    },
  };
}
