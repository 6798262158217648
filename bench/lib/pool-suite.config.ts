// The config bench/pool.bench.ts runs the runner bench's generated suite with
// (bench/fixtures/runner-suite/idle/, `vitest run --config <this> --root <suite>`):
// BENCH_POOL=forks → Vitest's own `pool: 'forks'`; BENCH_POOL=container →
// `containerPool(BENCH_POOL_OPTIONS)`; BENCH_DIR picks the files (idle/, or covered/ for
// --coverage runs). With BENCH_POOL_TIMES set, each pool worker's
// start() and stop() are timed (wall clock, epoch ms) and appended there as JSON lines.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import type { PoolRunnerInitializer, PoolWorker } from 'vitest/node';
import { containerPool } from 'vitest-environment-container/pool';

const suite = process.env.BENCH_SUITE ?? join(import.meta.dirname, '..', 'fixtures', 'runner-suite');
const times = process.env.BENCH_POOL_TIMES;
const now = (): number => performance.timeOrigin + performance.now();

function timed(init: PoolRunnerInitializer, out: string): PoolRunnerInitializer {
  return {
    name: init.name,
    createPoolWorker: (options) => {
      const worker: PoolWorker = init.createPoolWorker(options);
      const start = worker.start.bind(worker), stop = worker.stop.bind(worker);
      worker.start = async () => {
        const begin = now();
        await start();
        appendFileSync(out, `${JSON.stringify({ op: 'start', begin, end: now() })}\n`);
      };
      worker.stop = async () => {
        const begin = now();
        await stop();
        appendFileSync(out, `${JSON.stringify({ op: 'stop', begin, end: now() })}\n`);
      };
      return worker;
    },
  };
}

function pool(): 'forks' | PoolRunnerInitializer {
  if (process.env.BENCH_POOL !== 'container') return 'forks';
  const init = containerPool({
    ...(JSON.parse(process.env.BENCH_POOL_OPTIONS ?? '{}') as object),
    ...(process.env.BENCH_CGROUP_PARENT ? { cgroupParent: process.env.BENCH_CGROUP_PARENT } : {}),
  });
  return times ? timed(init, times) : init;
}

export default defineConfig({
  test: {
    root: suite,
    include: [`${process.env.BENCH_DIR ?? 'idle'}/*.test.ts`],
    // Used by --coverage runs (covered/ files): json-summary, so the bench can compare the pools' numbers.
    coverage: { include: ['src/**'], reporter: ['json-summary'], reportsDirectory: process.env.BENCH_COVERAGE_DIR ?? 'coverage' },
    pool: pool(),
    reporters: ['default', join(suite, 'reporter.ts')],
  },
});
