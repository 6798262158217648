// The Jest surface end to end: real Jest runs of fixture projects.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { ensureImages, imagePath } from '../../examples/shared/ensure-images.ts';
import { isRoot } from '../helpers/host.ts';
import { leftoverCgroups, runJest } from '../helpers/run-fixture.ts';

describe.runIf(isRoot)("testEnvironment: 'vitest-environment-container/jest'", () => {
  test('per-file sandboxes, the global container, ports, docblock merge, OOM reported with the file', async () => {
    const r = await runJest('jest-env', ['--maxWorkers=2']);
    expect(r.output).toMatch(/PASS \.\/a\.test\.js/);
    expect(r.output).toMatch(/PASS \.\/b\.test\.js/);
    expect(r.output).toMatch(/PASS \.\/docblock\.test\.js/);
    expect(r.output).toMatch(/FAIL \.\/oom\.test\.js[\s\S]*OutOfMemoryError: killed: exceeded memory limit 32 MiB while running oom\.test\.js/);
    expect(r.output).toMatch(/Tests:\s+5 passed, 5 total/);
    expect(r.output).not.toMatch(/did not exit/);
    expect(r.code).toBe(1);
    expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
  });

  describe('the API inside tests, from CommonJS (require) and ESM (import)', () => {
    beforeAll(() => ensureImages(['redis']), 600_000);

    test('withContainer/startContainer in tests; forgotten sandboxes stop with the file; clients left connected cause no error', async () => {
      const out = mkdtempSync(join(tmpdir(), 'vtc-jest-api-'));
      try {
        // --forceExit: the files leave Redis clients connected, which keeps Jest's process alive
        // exactly as a shared Redis would; what matters is that nothing fails on the way out.
        const r = await runJest('jest-api', ['--forceExit'], {
          REDIS_IMAGE: imagePath('redis'), JEST_API_OUT: out, NODE_OPTIONS: '--experimental-vm-modules',
        });
        expect(r.output).toMatch(/PASS \.\/commonjs\.test\.cjs/);
        expect(r.output).toMatch(/PASS \.\/module\.test\.mjs/);
        expect(r.output).toMatch(/Tests:\s+5 passed, 5 total/);
        expect(r.output).not.toMatch(/Socket closed unexpectedly|EEXIST|Error:/);
        expect(r.code, r.output).toBe(0);
        // the sandboxes the tests started and never stopped are gone with their files
        for (const file of ['commonjs.pid', 'module.pid']) {
          const pid = Number(readFileSync(join(out, file), 'utf8'));
          expect(pid).toBeGreaterThan(1);
          expect(existsSync(`/proc/${pid}`)).toBe(false);
        }
        expect(leftoverCgroups(r.cgroupParent)).toEqual([]);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  });
});
