// The Jest surface end to end: real Jest runs of fixture projects.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureImages, imagePath } from '../../examples/shared/ensure-images.ts';
import { isRoot, kernelOomKills } from '../helpers/host.ts';
import { jestRequireEnv, leftoverCgroups, runJest } from '../helpers/run-fixture.ts';

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

  describe('the API inside tests, from CommonJS (require) and ESM (import)', () => {
    beforeAll(() => ensureImages(['redis']), 600_000);

    // CommonJS as a plain Jest suite runs it; ESM with node --experimental-vm-modules, as Jest requires.
    test.each([
      ['commonjs', 'commonjs.test.cjs', jestRequireEnv()],
      ['module', 'module.test.mjs', { NODE_OPTIONS: '--experimental-vm-modules' }],
    ])('%s: withContainer/startContainer in tests; forgotten sandboxes stop with the file; clients left connected cause no error', async (name, file, env) => {
      const out = mkdtempSync(join(tmpdir(), 'vtc-jest-api-'));
      try {
        // --forceExit: the file leaves a Redis client connected, which keeps Jest's process alive
        // exactly as a shared Redis would; what matters is that nothing fails on the way out.
        const r = await runJest('jest-api', ['--forceExit', file], { REDIS_IMAGE: imagePath('redis'), JEST_API_OUT: out, ...env });
        expect(r.output).toMatch(new RegExp(`PASS \\./${file.replace('.', '\\.')}`));
        expect(r.output).not.toMatch(/Socket closed unexpectedly|EEXIST|Error:/);
        expect(r.code, r.output).toBe(0);
        // the sandbox the test started and never stopped is gone with its file
        const pid = Number(readFileSync(join(out, `${name}.pid`), 'utf8'));
        expect(pid).toBeGreaterThan(1);
        expect(existsSync(`/proc/${pid}`)).toBe(false);
        expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  });
});
