// The container pool in watch mode: the first run and a rerun after a change both give
// every file its own sandbox, and quitting leaves no sandbox, cgroup or process behind.
// Vitest runs on a copy of test/fixtures/pool-watch in a temp dir (the change is made
// there, never in the repository), with a node_modules of two symlinks to this repo's.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { leftoverCgroups, sandboxCgroupsUnder, startVitestWatch, type WatchRun } from '../helpers/run-fixture.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MARKER = '/tmp/vtc-pool-watch-marker';

/** Host pids (other than `except`) whose environment carries this run's cgroup parent: Vitest's children, sandbox monitors, workers. */
function processesOf(cgroupParent: string, except: number | undefined): number[] {
  const needle = `VTC_CGROUP_PARENT=${cgroupParent}\u0000`;
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== except && Number(p) !== process.pid).filter((p) => {
    try {
      return `${readFileSync(`/proc/${p}/environ`, 'latin1')}\u0000`.includes(needle);
    } catch {
      return false; // gone, or a kernel thread
    }
  }).map(Number);
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

// Vitest handles SIGTERM by closing and exiting with 128 + 15.
const QUIT_BY_SIGTERM = { exitCode: 143, signal: null };
const passedRuns = (output: string): number => output.match(/Test Files\s+3 passed \(3\)/g)?.length ?? 0;
const ranRevision = (output: string, rev: number): boolean => ['a', 'b', 'c'].every((n) => new RegExp(`${n} ran revision ${rev} as pid \\d\\b`).test(output));

describe.runIf(isRoot)('pool: containerPool() in watch mode', () => {
  test('a change reruns every file in a fresh sandbox of its own; quitting leaves nothing', { timeout: 150_000 }, async () => {
    expect(existsSync(MARKER)).toBe(false); // the files assert their sandbox's /tmp starts without it
    const tmp = mkdtempSync(join(tmpdir(), 'vtc-pool-watch-'));
    const dir = join(tmp, 'project');
    cpSync(join(repo, 'test', 'fixtures', 'pool-watch'), dir, { recursive: true });
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(repo, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'));
    symlinkSync(repo, join(dir, 'node_modules', 'vitest-environment-container'));
    let w: WatchRun | undefined;
    try {
      w = startVitestWatch(dir);
      const run = w;
      await run.waitFor((o) => passedRuns(o) >= 1 && ranRevision(o, 1), 60_000);
      // Between runs: the workers of the first run are stopped, their sandboxes and cgroups gone.
      const idle = () => processesOf(run.cgroupParent, run.child.pid).length === 0 && sandboxCgroupsUnder(run.cgroupParent).length === 0;
      expect(await until(idle, 15_000)).toBe(true);

      const shared = join(dir, 'sandboxed.ts');
      writeFileSync(shared, readFileSync(shared, 'utf8').replace('REVISION = 1', 'REVISION = 2'));
      await run.waitFor((o) => passedRuns(o) >= 2 && ranRevision(o, 2), 60_000);
      expect(run.output()).not.toMatch(/failed/i);
      // Quit once idle, as a user does after reading the result. "Test Files … passed" is printed
      // before the pool's worker stop() calls finish; quitting (SIGTERM/SIGINT) in that window
      // leaves their cgroups behind: Vitest exits at once without closing the pool.
      expect(await until(idle, 15_000)).toBe(true);

      await run.stop();
      // It ended from the SIGTERM, within stop()'s grace: not by the SIGKILL that follows it.
      expect({ exitCode: run.child.exitCode, signal: run.child.signalCode }).toEqual(QUIT_BY_SIGTERM);
      expect(await until(() => processesOf(run.cgroupParent, undefined).length === 0, 10_000)).toBe(true);
      expect(leftoverCgroups(run.cgroupParent)).toEqual([]);
      expect(existsSync(MARKER)).toBe(false);
    } finally {
      await w?.stop(2_000);
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
