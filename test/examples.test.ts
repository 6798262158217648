// The example projects in examples/ run here through Vitest's and Jest's CLIs, as a
// user would run them, so they never rot. Their images are built on first use by the
// examples' globalSetup (rootfs/) and reused from .cache/images afterwards.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isRoot } from './helpers/host.ts';
import { runJest, runVitest, type RunResult } from './helpers/run-fixture.ts';

const examples = resolve(import.meta.dirname, '..', 'examples');
/** The runs' reports: made only when the examples run (a skipped file leaves nothing). */
let out = '';

interface FileResult { file: string; status: string; tests: Record<string, string> }

/** Vitest's or Jest's JSON report, reduced to file name -> status and test title -> status. */
function report(path: string, r: RunResult): FileResult[] {
  let json: { testResults: { name: string; status: string; assertionResults: { title: string; status: string }[] }[] };
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new Error(`no JSON report (exit code ${r.code}):\n${r.output}`);
  }
  return json.testResults.map((f) => ({
    file: f.name.slice(f.name.lastIndexOf('/') + 1),
    status: f.status,
    tests: Object.fromEntries(f.assertionResults.map((t) => [t.title, t.status])),
  })).sort((a, b) => a.file.localeCompare(b.file));
}

async function vitest(example: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ r: RunResult; files: FileResult[] }> {
  const json = join(out, `${example}.json`);
  const r = await runVitest(join(examples, example), ['--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...args], env);
  return { r, files: report(json, r) };
}

async function jest(example: string): Promise<{ r: RunResult; files: FileResult[] }> {
  const json = join(out, `${example}.json`);
  const r = await runJest(join(examples, example), ['--json', `--outputFile=${json}`]);
  return { r, files: report(json, r) };
}

function allPassed({ r, files }: { r: RunResult; files: FileResult[] }, expected: Record<string, number>): void {
  const summary = Object.fromEntries(files.map((f) => [f.file, f.status]));
  expect(summary, r.output).toEqual(Object.fromEntries(Object.keys(expected).map((f) => [f, 'passed'])));
  for (const f of files) {
    expect(Object.values(f.tests), `${f.file}\n${r.output}`).toEqual(Array(expected[f.file]).fill('passed'));
  }
  expect(r.code, r.output).toBe(0);
}

describe.runIf(isRoot)('examples/', { timeout: 600_000 }, () => {
  beforeAll(() => {
    out = mkdtempSync(join(tmpdir(), 'vtc-examples-'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  test('redis: a real client, an empty database in every file; the resource reporter reads each file\'s sandbox', async () => {
    const json = join(out, 'redis-resources.json');
    const run = await vitest('redis', ['--reporter=vitest-environment-container/reporter'], { VITEST_CONTAINER_REPORT_JSON: json });
    allPassed(run, { 'counters.test.ts': 2, 'queue.test.ts': 3, 'sessions.test.ts': 3 });
    const used = (JSON.parse(readFileSync(json, 'utf8')) as { files: { file: string; image: string; peakMemoryBytes: number; memoryLimitBytes: number; oomKills: number }[] }).files;
    expect(used.map((u) => u.file)).toEqual(['counters.test.ts', 'queue.test.ts', 'sessions.test.ts']);
    expect(run.r.output).toMatch(/Resources per test file/);
    for (const u of used) {
      expect(u.image).toBe(join(examples, '..', '.cache', 'images', 'redis'));
      expect(u.peakMemoryBytes).toBeGreaterThan(1024 * 1024); // redis-server ran in it
      expect(u.peakMemoryBytes).toBeLessThanOrEqual(u.memoryLimitBytes);
      expect(u.memoryLimitBytes).toBe(128 * 1024 * 1024);
      expect(u.oomKills).toBe(0);
    }
  });

  test('postgres: a real pg client, a schema made in one file is absent in another', async () => {
    allPassed(await vitest('postgres'), { 'roles.test.ts': 2, 'same-names.test.ts': 3, 'schema.test.ts': 2 });
  });

  test('postgres, seeded: migrations and fixtures applied once; every file\'s server starts from the snapshot; the next run reuses it', async () => {
    const cache = join(out, 'seeded-cache');
    const config = ['--config', join(examples, 'postgres', 'vitest.seeded.config.ts')];
    allPassed(await vitest('postgres', config, { VITEST_CONTAINER_CACHE: cache }), { 'catalog.test.ts': 3, 'orders.test.ts': 2 });
    allPassed(await vitest('postgres', config, { VITEST_CONTAINER_CACHE: cache }), { 'catalog.test.ts': 3, 'orders.test.ts': 2 });
    const seeds = readdirSync(join(cache, 'refs')).map((f) => JSON.parse(readFileSync(join(cache, 'refs', f), 'utf8')) as { reference: string; from: string })
      .filter((r) => r.from === 'seed');
    expect(seeds.map((r) => r.reference)).toEqual([expect.stringMatching(/^seed:postgres@sha256:/)]);
  });

  test('isolation: same port, same /tmp file, memory hogs, side by side in the container pool', async () => {
    allPassed(await vitest('isolation'), { 'api-a.test.ts': 3, 'api-b.test.ts': 3, 'memory-hog.test.ts': 2 });
  });

  test('jest: the redis example with testEnvironment vitest-environment-container/jest', async () => {
    const run = await jest('jest');
    allPassed(run, { 'counters.test.js': 2, 'sessions.test.js': 3, 'small-limit.test.js': 1 });
    expect(run.r.output).not.toMatch(/did not exit|open handle/i);
  });
});
