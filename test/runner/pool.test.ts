// The container pool end to end: a real Vitest run where every test file's
// worker is in its own sandbox.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isRoot, kernelOomKills } from '../helpers/host.ts';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from '../runtime/helpers.ts';
import { leftoverCgroups, nextRunCgroupParent, runVitest, sandboxCgroupsUnder, startVitestWatch } from '../helpers/run-fixture.ts';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const ownPidNamespace = readlinkSync('/proc/self/ns/pid').replace(/\D/g, '');
const nameOf = (dir: string) => dir.slice(dir.lastIndexOf('/') + 1);
/** Sandbox cgroups under parent made from another pid namespace than this one's: by a worker, in its sandbox. */
const startedInWorkers = (parent: string) => sandboxCgroupsUnder(parent).map(nameOf).filter((name) => !name.endsWith(`-${ownPidNamespace}`));

/** Host pids of the processes in pid namespace ns. */
function processesInPidNamespace(ns: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readlinkSync(`/proc/${p}/ns/pid`) === `pid:[${ns}]`;
    } catch {
      return false;
    }
  }).map(Number);
}

/** The host pid of pid namespace ns's pid 1 (its NSpid ends in 1). */
function initOf(ns: string): number | undefined {
  return processesInPidNamespace(ns).find((pid) => {
    try {
      return /^NSpid:.*\s1$/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  });
}

function sleepers(): number {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8') === 'sleep\u00001001\u0000';
    } catch {
      return false;
    }
  }).length;
}

describe.runIf(isRoot)('pool: containerPool()', () => {
  test('10 files that collide on a shared host pass side by side; the one over its memory limit fails alone; nothing is left', async () => {
    // Sandboxes the files start (service, with-environment) are made by a worker in its own pid
    // namespace (c<pid>-…-<pid ns>): they too must be under the run's cgroup parent, where the
    // pool reaps them, and gone afterwards.
    const seen = new Set<string>();
    const parentOfRun = nextRunCgroupParent();
    const poll = setInterval(() => {
      for (const name of startedInWorkers(parentOfRun)) seen.add(name);
    }, 20);
    const r = await runVitest('pool', ['--maxWorkers=2']).finally(() => clearInterval(poll));
    expect(r.cgroupParent).toBe(parentOfRun);
    expect(seen.size, [...seen].join(' ')).toBeGreaterThanOrEqual(2);
    // file-01..10 + service + with-environment pass; oom fails with a message naming it and the limit
    expect(r.output).toMatch(/Tests\s+12 passed \(13\)/);
    expect(r.output).toMatch(/OutOfMemoryError: killed: exceeded memory limit 256 MiB while running oom\.test\.ts/);
    // The kernel did kill it: a worker (Node) of this run, at 256 MiB.
    const kills = kernelOomKills(r.cgroupParent);
    expect(kills.length).toBeGreaterThan(0);
    for (const kill of kills) expect(kill.limitKiB).toBe(256 * 1024);
    expect(r.code).toBe(1);
    expect(existsSync('/tmp/state')).toBe(false);
    expect(sleepers()).toBe(0);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  });

  test('--shard splits the files and each shard still isolates them', async () => {
    const [a, b] = await Promise.all([runVitest('pool', ['--shard=1/2', '--maxWorkers=1']), runVitest('pool', ['--shard=2/2', '--maxWorkers=1'])]);
    const passed = (r: { output: string }) => Number(/Tests\s+(\d+) passed/.exec(r.output)?.[1] ?? 0);
    expect(passed(a) + passed(b)).toBe(12);
    expect(sleepers()).toBe(0);
    expect([...leftoverCgroups(a.cgroupParent), ...leftoverCgroups(b.cgroupParent)]).toEqual([]);
  });

  test('a run killed outright leaves the sandboxes its files started in their workers; the next start reaps them', async () => {
    const run = startVitestWatch(join(fixtures, 'pool-crash'));
    try {
      await until('a sandbox started in a worker', () => startedInWorkers(run.cgroupParent).length > 0, 60_000)
        .catch((err: Error) => { throw new Error(`${err.message}; Vitest printed:\n${run.output()}`); });
      const [started] = startedInWorkers(run.cgroupParent);
      const workerNamespace = started!.slice(started!.lastIndexOf('-') + 1);
      const workerInit = initOf(workerNamespace);
      expect(workerInit).toBeDefined();
      // Everything dies at once, as in a crash or an OOM kill of the machine's choosing: Vitest, and the
      // worker's sandbox with the sandbox started in it (a pid namespace inside), with no chance to clean
      // up (left alone, the spawner would end the worker gently and the worker would remove what it started).
      run.child.kill('SIGKILL');
      process.kill(workerInit!, 'SIGKILL');
      await run.stop(0); // until Vitest's exit is collected (a zombie owner still counts as alive)
      await until('the worker\'s pid namespace to empty', () => processesInPidNamespace(workerNamespace).length === 0);
      // ...but nobody was left to remove its cgroup...
      expect(startedInWorkers(run.cgroupParent)).toContain(started);
      // ...until a later start under the same parent: its reaper sees that pid namespace is gone. (The
      // kernel reuses a namespace's number: while a sandbox started meanwhile, elsewhere, has it, the
      // reaper counts the owner as alive and leaves the cgroup for a later start. Hence a few starts.)
      const startOnce = () => new Promise((resolve) => spawn(process.execPath, [join(fixtures, 'owner.ts'), JSON.stringify({ cgroupParent: run.cgroupParent }), 'once'], { stdio: 'inherit' }).on('exit', resolve));
      for (let i = 0; i < 10 && sandboxCgroupsUnder(run.cgroupParent).length; i++) {
        expect(await startOnce()).toBe(0);
        if (sandboxCgroupsUnder(run.cgroupParent).length) await new Promise((r) => setTimeout(r, 1000));
      }
      expect(sandboxCgroupsUnder(run.cgroupParent)).toEqual([]);
    } finally {
      await run.stop(0);
    }
  }, 120_000);
});
