// cgroup limits, enforced for real: memory (OOM kill reported), CPU quota,
// pids. Runs on this cgroup v1 host and, through `npm run test:cgroup2`, in a
// guest whose kernel has only cgroup v2.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, test } from 'vitest';
import { cgroupDriver, startContainer, withContainer, type Container } from '../../src/runtime/index.ts';
import type { CgroupV1Driver } from '../../src/runtime/cgroups/v1.ts';
import type { CgroupV2Driver } from '../../src/runtime/cgroups/v2.ts';
import { canLimit, isRoot, sandboxCgroups } from '../helpers/host.ts';

const MiB = 1024 * 1024;
const driver = cgroupDriver();

/** The directory of the sandbox's cgroup in the hierarchy that has controller (v1), or in the one tree (v2). */
function cgroupDir(c: Container, controller: 'cpu' | 'memory'): string {
  const root = driver!.version === 1 ? (driver as CgroupV1Driver).roots[controller] : (driver as CgroupV2Driver).root;
  return join(root, c.spec.linux.cgroupsPath!);
}

const readKey = (file: string, key: string) => Number(/^(\S+) (\d+)$/m.exec(readFileSync(file, 'utf8').split('\n').find((l) => l.startsWith(`${key} `)) ?? '')?.[2]);

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

  test('cpus: 0.5 is a quota of half of each period, and the kernel throttles a spinner at it', async () => {
    // The kernel's own account of the limit, not a measured ratio (that belongs in bench/): the quota
    // it holds, and the periods in which it stopped the spinner for having used it up.
    await withContainer({ cpus: 0.5, cmd: ['sh', '-c', 'while :; do :; done'] }, async (c) => {
      const dir = cgroupDir(c, 'cpu');
      const quota = driver!.version === 1
        ? [readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8'), readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8')].map(Number)
        : readFileSync(join(dir, 'cpu.max'), 'utf8').trim().split(' ').map(Number);
      expect(quota).toEqual([50_000, 100_000]);
      // A few throttled periods: the bound is only "it happens" (never, with the quota not applied).
      for (const deadline = performance.now() + 30_000; readKey(join(dir, 'cpu.stat'), 'nr_throttled') < 3 && performance.now() < deadline;) await sleep(50);
      expect(readKey(join(dir, 'cpu.stat'), 'nr_throttled')).toBeGreaterThanOrEqual(3);
      expect((await c.stats()).cpu.usageSeconds).toBeGreaterThan(0);
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
    const escape = `vtc-escape-${process.pid}`;
    await expect(startContainer({ memory: '64m', cgroupParent: `/vitest-container/../${escape}` })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    expect(sandboxCgroups('vitest-container', true).length).toBe(before);
    // nor where the path leads: a level of its own at the top of any hierarchy
    const roots = ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((h) => join('/sys/fs/cgroup', h))];
    expect(roots.map((r) => join(r, escape)).filter(existsSync)).toEqual([]);
  });

  // (as root: a parent at the top of the tree; a user's would be inside its delegated subtree)
  test.runIf(isRoot)('cgroupParent: the sandbox is in a cgroup under it, its limit applied there; the parent stays after the sandbox', async () => {
    const parent = `/vitest-container-parent-${process.pid}`;
    try {
      const c = await startContainer({ memory: '48m', cgroupParent: parent });
      // The kernel's view: the sandbox's pid 1 is in <parent>/<id> (for the memory controller; v2 has one tree).
      const lines = readFileSync(`/proc/${c.pid}/cgroup`, 'utf8').trim().split('\n');
      const memoryLine = lines.find((l) => driver!.version === 1 ? l.split(':')[1]!.split(',').includes('memory') : l.startsWith('0::'));
      expect(memoryLine?.split(':')[2]).toBe(`${parent}/${c.id}`);
      const limitFile = driver!.version === 1 ? 'memory.limit_in_bytes' : 'memory.max';
      expect(Number(readFileSync(join(cgroupDir(c, 'memory'), limitFile), 'utf8'))).toBe(48 * MiB);
      await c.stop();
      expect(sandboxCgroups(parent.slice(1)).filter((d) => d.endsWith(`/${c.id}`))).toEqual([]);
      // a parent the user names is theirs: left in place (only the default parent goes with its last sandbox)
      expect(existsSync(join(cgroupDir(c, 'memory'), '..'))).toBe(true);
    } finally {
      for (const h of ['', ...readdirSync('/sys/fs/cgroup')]) {
        const dir = join('/sys/fs/cgroup', h, parent);
        if (existsSync(dir)) rmdirSync(dir);
      }
    }
  });

  // On a hybrid host the cgroup v2 root cannot pass memory down at all: host-conditions.test.ts has that case.
  const v2Root = driver?.version === 2 ? (driver as CgroupV2Driver).root : undefined;
  const rootPassesAll = v2Root !== undefined && ['memory', 'cpu', 'pids'].every((c) => readFileSync(join(v2Root, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes(c));
  test.runIf(isRoot && rootPassesAll)('cgroup v2 (the cgroup2 lane): a parent it did not make, whose subtree_control lacks memory, is CGROUP_CONTROLLERS_MISSING and left as it is', async () => {
    const name = `vitest-container-foreign-${process.pid}`;
    const dir = join(v2Root!, name);
    mkdirSync(dir); // made by "somebody else": not marked as the library's
    try {
      writeFileSync(join(dir, 'cgroup.subtree_control'), '+pids');
      const before = readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8');
      await expect(startContainer({ memory: '64m', cgroupParent: `/${name}` })).rejects.toMatchObject({
        code: 'CGROUP_CONTROLLERS_MISSING', message: expect.stringMatching(new RegExp(`cgroup ${dir} does not pass the memory.* controller`)),
        fix: expect.stringContaining(`echo "+memory" > ${dir}/cgroup.subtree_control`),
      });
      expect(readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8')).toBe(before); // never changed
      expect(readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory())).toEqual([]); // nothing made in it
      // Without limits the sandbox simply runs without a cgroup there.
      const plain = await startContainer({ cgroupParent: `/${name}`, cmd: ['true'] });
      expect((await plain.wait()).exitCode).toBe(0);
    } finally {
      rmdirSync(dir);
    }
  });
});
