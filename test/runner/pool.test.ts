// The container pool end to end: a real Vitest run where every test file's
// worker is in its own sandbox.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { isRoot, kernelOomKills } from '../helpers/host.ts';
import { leftoverCgroups, runVitest } from '../helpers/run-fixture.ts';

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
    const r = await runVitest('pool', ['--maxWorkers=2']);
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
});
