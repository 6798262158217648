// What a pool worker may have the main process write for it (snapshot files): only under the
// project's root, never in node_modules, never through a symlink that leads out of the root.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { HOST_WRITE, performHostWrite, type HostWrite } from '../../src/pool/host-writes.ts';
import { assertSupportedVitest, isSupportedVitest } from '../../src/vitest/version.ts';

const base = mkdtempSync(join(tmpdir(), 'vtc-host-writes-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const root = join(base, 'project');
const outside = join(base, 'outside');
mkdirSync(join(root, 'test'), { recursive: true });
mkdirSync(outside);
symlinkSync(outside, join(root, 'test', 'escape'));

const ask = (w: HostWrite) => performHostWrite(root, { ...w, [HOST_WRITE]: 'request', id: 1 });

describe('snapshot writes a pool worker asks for', () => {
  test('a snapshot file under the root is written, its directory made, and removed again', () => {
    const snap = join(root, 'test', '__snapshots__', 'a.test.ts.snap');
    expect(ask({ op: 'mkdir', path: join(root, 'test', '__snapshots__') }).error).toBeUndefined();
    expect(ask({ op: 'write', path: snap, content: 'exports[`x`] = `1`;\n' }).error).toBeUndefined();
    expect(readFileSync(snap, 'utf8')).toBe('exports[`x`] = `1`;\n');
    expect(ask({ op: 'remove', path: snap }).error).toBeUndefined();
    expect(existsSync(snap)).toBe(false);
  });

  test('outside the root, in node_modules, or through a symlink out of it: refused, nothing written', () => {
    for (const path of [join(outside, 'x.snap'), join(root, '..', 'outside', 'y.snap'), join(root, 'node_modules', 'pkg', 'z.snap'), join(root, 'test', 'escape', 'w.snap'), root]) {
      expect(ask({ op: 'write', path, content: 'no' }).error).toMatch(/refused: .* is not under the project root/);
    }
    writeFileSync(join(outside, 'keep'), 'kept');
    expect(ask({ op: 'remove', path: join(root, 'test', 'escape', 'keep') }).error).toMatch(/refused/);
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('kept');
    expect(existsSync(join(root, 'node_modules'))).toBe(false);
    expect(existsSync(join(outside, 'w.snap'))).toBe(false);
  });
});

describe('supported Vitest versions', () => {
  test('4.1.x and 5.x; others refused with VITEST_VERSION_UNSUPPORTED', () => {
    const v = (version: string) => ({ version, major: Number(version.split('.')[0]), minor: Number(version.split('.')[1]) });
    expect(['4.1.0', '4.1.12', '5.0.5', '5.1.2', '5.9.0'].map((x) => isSupportedVitest(v(x)))).toEqual([true, true, true, true, true]);
    expect(['3.2.4', '4.0.18', '6.0.0'].map((x) => isSupportedVitest(v(x)))).toEqual([false, false, false]);
    expect(() => assertSupportedVitest(v('4.0.18'), 'containerPool()')).toThrow(expect.objectContaining({
      code: 'VITEST_VERSION_UNSUPPORTED', message: expect.stringMatching(/containerPool\(\) supports Vitest 4\.1\.x and 5\.x; this is Vitest 4\.0\.18/),
    }));
  });
});
