// The adoption path of a real suite (issue 11): an external-style project (test/fixtures/
// external-redis: Redis clients connected at import and never closed, code under coverage,
// a snapshot) with this package installed from its tarball next to each supported Vitest
// line, run as its user would: only SUITE_MODE changes between a baseline (pool: 'forks',
// one Redis that outlives the run) and the container modes. They must exit as the baseline
// does (0: no "Socket closed unexpectedly" from the order of teardown) and report the same
// coverage; snapshots written in a pool worker must land in the project.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureImages, imagePath } from '../../examples/shared/ensure-images.ts';
import { isSupportedNode } from '../../src/node-version.ts';
import { isRoot } from '../helpers/host.ts';
import { packedProject } from '../helpers/packed-project.ts';
import { leftoverCgroups, run, type RunResult } from '../helpers/run-fixture.ts';

// The newest release of each supported line, as a user installing today gets it.
const LINES = { '4.1': '~4.1.0', '5': '^5.0.0' };
// The system's Node, when it is one this package does not support (this machine's is 20).
const oldNode = spawnSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).stdout?.trim();

type Mode = 'forks' | 'pool' | 'environment';

describe.runIf(isRoot)('an external suite, installed from the tarball', { timeout: 600_000 }, () => {
  beforeAll(() => ensureImages(['redis']), 600_000);

  describe.each(Object.entries(LINES))('Vitest %s', (_line, range) => {
    let dir: string;
    beforeAll(async () => {
      ({ dir } = await packedProject({
        manager: 'npm', fixture: 'external-redis', packageJson: { type: 'module' },
        dependencies: { vitest: range, '@vitest/coverage-v8': range, '@vitest/coverage-istanbul': range, vite: '^8.0.0', redis: '^6.0.0' },
      }));
    }, 600_000);

    async function vitest(mode: Mode, args: string[]): Promise<RunResult & { coverage?: unknown }> {
      rmSync(join(dir, 'coverage'), { recursive: true, force: true });
      const r = await run(dir, [join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...(args.some((a) => a.startsWith('--maxWorkers')) ? [] : ['--maxWorkers=2']), ...args],
        { SUITE_MODE: mode, REDIS_IMAGE: imagePath('redis') });
      // The baseline (forks, one shared Redis) starts no sandbox, so it has no cgroup parent to check.
      if (mode !== 'forks') expect(leftoverCgroups(r.cgroupParent), r.output).toEqual([]);
      const summary = join(dir, 'coverage', 'coverage-summary.json');
      return { ...r, coverage: existsSync(summary) ? JSON.parse(readFileSync(summary, 'utf8')).total : undefined };
    }

    const passedCleanly = (r: RunResult) => {
      // 13 tests; the baseline skips the 4 that check that each file has a Redis of its own
      expect(r.output).toMatch(/Test Files\s+5 passed \(5\)/);
      expect(r.output).toMatch(/Tests\s+(13 passed \(13\)|9 passed \| 4 skipped \(13\))/);
      expect(r.output).not.toMatch(/Socket closed unexpectedly|Unhandled|Errors/);
      expect(r.code, r.output).toBe(0);
    };

    test('a snapshot written in a pool worker lands in the project, and is read back', async () => {
      const snap = join(dir, 'test', '__snapshots__', 'snapshot.test.ts.snap');
      rmSync(snap, { force: true });
      passedCleanly(await vitest('pool', ['--update']));
      expect(readFileSync(snap, 'utf8')).toMatch(/"sku": "fig",\s+\},\s+\{\s+"count": 1,\s+"low": true,\s+"sku": "kiwi"/);
      // a wrong snapshot fails the file, and --update puts the right one back on the host
      writeFileSync(snap, readFileSync(snap, 'utf8').replace('"count": 4', '"count": 40'));
      const wrong = await vitest('pool', []);
      expect(wrong.output).toMatch(/Snapshot .*mismatched/);
      expect(wrong.code).toBe(1);
      passedCleanly(await vitest('pool', ['--update']));
      expect(readFileSync(snap, 'utf8')).toContain('"count": 4,');
    });

    test.each(['v8', 'istanbul'])('--coverage (%s) under containerPool(): exit 0 and the coverage of pool: \'forks\'', async (provider) => {
      const baseline = await vitest('forks', ['--coverage', `--coverage.provider=${provider}`]);
      passedCleanly(baseline);
      expect(baseline.coverage).toMatchObject({ functions: { covered: 5, total: 6 } }); // closeStore() is never called
      const pool = await vitest('pool', ['--coverage', `--coverage.provider=${provider}`]);
      passedCleanly(pool);
      expect(pool.coverage).toEqual(baseline.coverage);
    });

    test.each([
      ['environment', []], ['environment', ['--no-isolate']], ['pool', ['--no-isolate']], ['environment', ['--no-isolate', '--maxWorkers=1']],
    ] as [Mode, string[]][])('clients left connected, %s %j: exit 0 like the baseline', async (mode, args) => {
      const r = await vitest(mode, ['--coverage', ...args]);
      passedCleanly(r);
      expect(r.coverage).toMatchObject({ functions: { covered: 5, total: 6 } });
    });

    // Vitest 4.1 itself starts on Node 20; the environment and the pool must then say why they cannot.
    test.runIf(range === LINES['4.1'] && oldNode && !isSupportedNode(oldNode))(`on the system's Node (${oldNode}): environment and pool refuse it clearly`, () => {
      for (const mode of ['environment', 'pool']) {
        const r = spawnSync('/usr/bin/node', [join(dir, 'node_modules', 'vitest', 'vitest.mjs'), 'run'],
          { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', SUITE_MODE: mode, REDIS_IMAGE: imagePath('redis') } });
        expect(r.status).toBe(1);
        expect(`${r.stdout}${r.stderr}`).toMatch(/needs Node 22\.12\.0 or newer; this is Node \d+/);
        expect(`${r.stdout}${r.stderr}`).toMatch(/NODE_VERSION_UNSUPPORTED/);
      }
    });
  });
});
