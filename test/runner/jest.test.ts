// The Jest surface end to end: a real Jest run of a fixture project.
import { describe, expect, test } from 'vitest';
import { isRoot, kernelOomKills } from '../helpers/host.ts';
import { leftoverCgroups, runJest } from '../helpers/run-fixture.ts';

describe.runIf(isRoot)("testEnvironment: 'vitest-environment-container/jest'", () => {
  test('per-file sandboxes, the global container, ports, docblock merge, OOM reported with the file', async () => {
    const r = await runJest('jest-env', ['--maxWorkers=2']);
    expect(r.output).toMatch(/PASS \.\/a\.test\.js/);
    expect(r.output).toMatch(/PASS \.\/b\.test\.js/);
    expect(r.output).toMatch(/PASS \.\/docblock\.test\.js/);
    expect(r.output).toMatch(/FAIL \.\/oom\.test\.js[\s\S]*OutOfMemoryError: killed: exceeded memory limit 32 MiB while running oom\.test\.js/);
    expect(kernelOomKills(r.cgroupParent)).toContainEqual(expect.objectContaining({ task: 'tail', limitKiB: 32 * 1024 })); // the kernel did kill it
    expect(r.output).toMatch(/Tests:\s+5 passed, 5 total/);
    expect(r.output).not.toMatch(/did not exit/);
    expect(r.code).toBe(1);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  });
});
