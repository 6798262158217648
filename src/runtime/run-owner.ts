// Which test run this process works for, when it is one of the worker processes a run forked.
// Small on purpose: a test worker asks before it loads anything else of the runtime.
import { isMainThread } from 'node:worker_threads';

/**
 * The test run's main process, when this is a worker process it forked (Vitest's forks and
 * vmForks pools: the environment asks only from a Vitest worker): the spawner and the sandbox
 * service shared by the run's workers end with it. Worker threads and the pool's sandboxed
 * workers keep their own.
 */
export function testRunOwner(): number | undefined {
  if (!isMainThread || typeof process.send !== 'function' || process.env.VITEST_POOL_ID === undefined
    || process.env.VITEST_CONTAINER_POOL_WORKER !== undefined) return undefined;
  return process.ppid > 1 ? process.ppid : undefined;
}
