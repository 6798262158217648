// cgroup limits, enforced for real: memory (OOM kill reported), CPU quota,
// pids. Runs on this cgroup v1 host and, through `npm run test:cgroup2`, in a
// guest whose kernel has only cgroup v2.
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { cgroupDriver, startContainer, withContainer } from '../../src/runtime/index.ts';
import { canLimit, sandboxCgroups } from '../helpers/host.ts';

const MiB = 1024 * 1024;

function hostStillWorks(): void {
  expect(spawnSync('true').status).toBe(0);
}

// Root anywhere; a user with a delegated cgroup v2 subtree (the cgroup2 lane's rootless part).
describe.runIf(canLimit())(`cgroup v${cgroupDriver()?.version} limits`, () => {
  test('a memory hog is OOM-killed at the limit, and the API says so', async () => {
    // tail keeps a line without newlines in memory: 400 MiB against a 64 MiB limit.
    const c = await startContainer({ memory: '64m', cmd: ['sh', '-c', 'head -c 400M /dev/zero | tail; echo survived'] });
    const exit = await c.wait();
    expect(exit.oomKilled).toBe(true);
    expect(c.logs()).toContain('survived'); // the shell lives on: the kernel killed only the hog
    const stats = await c.stats();
    expect(stats.oomKills).toBeGreaterThanOrEqual(1);
    expect(stats.memory.limitBytes).toBe(64 * MiB);
    expect(stats.memory.peakBytes).toBeLessThanOrEqual(64 * MiB);
    expect(stats.memory.peakBytes).toBeGreaterThan(48 * MiB);
    hostStillWorks();
  });

  test('the main process itself killed by the OOM killer: exit 137 and oomKilled', async () => {
    const c = await startContainer({ memory: '32m', cmd: ['sh', '-c', 'exec tail /dev/zero'] });
    const exit = await c.wait();
    expect(exit).toMatchObject({ exitCode: 137, signal: 'SIGKILL', oomKilled: true });
  });

  test('cpus: 0.5 holds a spinner to at most 0.55 of a core', async () => {
    await withContainer({ cpus: 0.5, cmd: ['sh', '-c', 'while :; do :; done'] }, async (c) => {
      await sleep(200); // let the quota settle into its periods
      const before = await c.stats();
      const t0 = performance.now();
      await sleep(1000);
      const after = await c.stats();
      const cores = (after.cpu.usageSeconds - before.cpu.usageSeconds) / ((performance.now() - t0) / 1000);
      expect(cores).toBeLessThanOrEqual(0.55);
      expect(cores).toBeGreaterThan(0.3); // it did spin: the limit, not idleness, held it
    });
    hostStillWorks();
  });

  test('a fork bomb stops at the pids limit', async () => {
    // pid 1's main process does not fork; the bomb comes in through exec: a shell starting
    // sleepers until a fork fails. The sleepers stay, so the sandbox stays at its limit (a
    // recursive shell bomb can die out: a shell exits when it cannot fork).
    await withContainer({ pids: 32 }, async (c) => {
      const bomb = await c.spawn(['sh', '-c', 'while :; do sleep 1000 & done']);
      // Under load the bomb can take a while to reach the limit: watch until the kernel refuses forks.
      let peak = 0;
      let stats = await c.stats();
      const deadline = performance.now() + 60_000; // an emulated guest (the cgroup2 lane) is slow to fork
      for (;;) {
        peak = Math.max(peak, stats.pids.current);
        if ((stats.pids.rejectedForks > 0 && peak >= 24) || performance.now() > deadline) break;
        await sleep(20);
        stats = await c.stats();
      }
      expect(stats.pids.rejectedForks).toBeGreaterThan(0); // the limit, not the bomb, stopped the growth
      expect(peak).toBeGreaterThanOrEqual(24); // it really grew
      expect(peak).toBeLessThanOrEqual(32);
      bomb.kill('SIGKILL');
    });
    hostStillWorks();
  });

  // systemd delegates no cpuset to users by default (cgroup-placement.test.ts checks the error then).
  test.runIf(canLimit({ cpuset: '0' }))('cpuset pins the sandbox to the given CPUs', async () => {
    await withContainer({ cpuset: '0' }, async (c) => {
      expect((await c.exec(['sh', '-c', 'grep Cpus_allowed_list /proc/self/status'])).stdout).toMatch(/:\s*0\n/);
    });
  });

  test('stats report memory, cpu and pids while running', async () => {
    await withContainer({ memory: '128m', cmd: ['sh', '-c', '{ head -c 20M /dev/zero; sleep 1000; } | tail'] }, async (c) => {
      // tail takes in the 20 MiB as head writes it: wait for it (a fixed sleep lost that race in the
      // cgroup2 lane, whose guest is emulated and 10-40x slower), then check every figure.
      let s = await c.stats();
      for (const deadline = performance.now() + 10_000; s.memory.currentBytes <= 15 * MiB && performance.now() < deadline;) {
        await sleep(50);
        s = await c.stats();
      }
      expect(s.memory.currentBytes).toBeGreaterThan(15 * MiB);
      expect(s.cpu.usageSeconds).toBeGreaterThan(0);
      expect(s.pids.current).toBeGreaterThanOrEqual(2);
    });
  });

  test('the cgroup is removed at stop', async () => {
    const c = await startContainer({ memory: '64m' });
    const mine = () => sandboxCgroups().filter((p) => p.endsWith(`/${c.id}`));
    expect(mine().length).toBeGreaterThan(0);
    await c.stop();
    expect(mine()).toEqual([]);
  });

  test('a cgroup parent that climbs out is refused before anything is created', async () => {
    const before = sandboxCgroups('vitest-container', true).length; // ours only: other files run beside us
    await expect(startContainer({ memory: '64m', cgroupParent: '/vitest-container/../escape' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    expect(sandboxCgroups('vitest-container', true).length).toBe(before);
  });
});
