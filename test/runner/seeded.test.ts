// Seeded images through the runners, as users run them: a globalSetup seeds (commits) once in
// the run's main process, and test files in other worker processes start their sandboxes from it
// (`image: 'seeded:base'`, inject(), Jest's global seededImages); a second run reuses it; in watch
// mode a changed input seeds again before the rerun, an unchanged one does not.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { runJest, runVitest, startVitestWatch } from '../helpers/run-fixture.ts';
import { repo } from '../helpers/unprivileged.ts';
import { busyboxImage } from '../security/helpers.ts';

const work = mkdtempSync(join(tmpdir(), 'vtc-seeded-run-'));
const cache = join(work, 'cache');
let env: Record<string, string>;

beforeAll(() => {
  env = { VTC_SEED_IMAGE: busyboxImage(join(work, 'image')), VITEST_CONTAINER_CACHE: cache, VTC_SEED_LOG: join(work, 'seeds.log') };
  writeFileSync(env.VTC_SEED_LOG!, '');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const seeds = (): number => readFileSync(env.VTC_SEED_LOG!, 'utf8').split('\n').filter(Boolean).length;

/** What each file wrote: its worker's pid, the pid that seeded the image, and the data it found. */
function reports(dir: string): Record<string, { pid: number; seededBy: number; data: string }> {
  const out: Record<string, { pid: number; seededBy: number; data: string }> = {};
  for (const name of ['a', 'b']) {
    const [pid, seededBy, ...data] = readFileSync(join(dir, name), 'utf8').split(' ');
    out[name] = { pid: Number(pid), seededBy: Number(seededBy), data: data.join(' ').trim() };
  }
  return out;
}

describe.runIf(isRoot)('seeded images in a test run', { timeout: 180_000 }, () => {
  test('seeded once in globalSetup; files in other worker processes start from it, each with its own copy; the next run reuses it', async () => {
    const pids = mkdtempSync(join(work, 'pids-'));
    const r = await runVitest('seeded', ['--maxWorkers=2'], { ...env, VTC_SEED_PIDS: pids });
    expect(r.output).toMatch(/Test Files\s+2 passed \(2\)/);
    expect(r.code, r.output).toBe(0);
    const first = reports(pids);
    expect(first.a.seededBy).toBe(r.pid); // the run's main process seeded it
    expect(new Set([first.a.pid, first.b.pid, r.pid]).size).toBe(3); // two other processes used it
    expect(first.b.seededBy).toBe(r.pid);
    // Each file changed its copy; neither saw the other's change.
    expect([first.a.data, first.b.data]).toEqual(['first revision', 'first revision']);
    expect(seeds()).toBe(1);

    const pids2 = mkdtempSync(join(work, 'pids-'));
    const again = await runVitest('seeded', ['--maxWorkers=2'], { ...env, VTC_SEED_PIDS: pids2 });
    expect(again.code, again.output).toBe(0);
    expect(reports(pids2).a.seededBy).toBe(r.pid); // made by the first run
    expect(seeds()).toBe(1);
  });

  test('watch mode: a rerun after an input changed uses a new seed; a rerun without a change does not seed', async () => {
    const dir = join(work, 'watched');
    cpSync(join(repo, 'test', 'fixtures', 'seeded'), dir, { recursive: true, filter: (p) => !p.includes('node_modules') });
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(repo, 'node_modules', 'vitest'), join(dir, 'node_modules', 'vitest'));
    symlinkSync(repo, join(dir, 'node_modules', 'vitest-environment-container'));
    const pids = mkdtempSync(join(work, 'pids-'));
    const before = seeds();
    const w = startVitestWatch(dir, ['--maxWorkers=2'], { ...env, VTC_SEED_PIDS: pids });
    try {
      const passes = () => w.output().match(/Test Files\s+\d passed \(\d\)/g)?.length ?? 0;
      await w.waitFor(() => passes() >= 1, 60_000);
      expect(reports(pids).a.data).toBe('first revision');
      const afterFirst = seeds();
      expect(afterFirst - before).toBeLessThanOrEqual(1); // reused when the first test made it already

      // A test file changes: it reruns; the inputs did not, so nothing is seeded.
      const touch = () => writeFileSync(join(dir, 'a.test.ts'), `${readFileSync(join(dir, 'a.test.ts'), 'utf8')}\n// touched\n`);
      touch();
      await w.waitFor(() => passes() >= 2, 60_000);
      expect(seeds()).toBe(afterFirst);

      writeFileSync(join(dir, 'inputs', 'data.txt'), 'second revision\n');
      touch();
      await w.waitFor(() => passes() >= 3, 60_000);
      expect(seeds()).toBe(afterFirst + 1);
      expect(reports(pids).a.data).toBe('second revision');
    } finally {
      await w.stop();
    }
  });

  test('Jest: globalSetup seeds, every file gets it as its environment\'s image and as the global seededImages', async () => {
    const json = join(work, 'jest-resources.json');
    const r = await runJest('seeded-jest', ['--maxWorkers=2'], { ...env, VTC_REPORT_JSON: json, VTC_JEST_CACHE: mkdtempSync(join(work, 'jest-cache-')) });
    expect(r.output).toMatch(/Tests:\s+2 passed, 2 total/);
    expect(r.code, r.output).toBe(0);
    // The Jest reporter saw both files' sandboxes.
    expect(existsSync(json)).toBe(true);
    const report = JSON.parse(readFileSync(json, 'utf8')) as { files: { file: string; peakMemoryBytes: number; image: string }[] };
    expect(report.files.map((f) => f.file)).toEqual(['seeded-2.test.js', 'seeded.test.js']);
    for (const f of report.files) {
      expect(f.image).toBe('seeded:base');
      expect(f.peakMemoryBytes).toBeGreaterThan(0);
    }
  });
});
