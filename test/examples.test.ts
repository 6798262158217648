// The example projects in examples/ run here through Vitest's and Jest's CLIs, as a
// user would run them, so they never rot. Their images are built on first use by the
// examples' globalSetup (rootfs/) and reused from .cache/images afterwards.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

  test('redis: a real client, an empty database in every file; the demo reporter reads each file\'s resources', async () => {
    const rows = join(out, 'redis-resources.jsonl');
    const run = await vitest('redis', [`--reporter=${join(examples, 'demo', 'resource-reporter.ts')}`], { DEMO_RESOURCES_OUT: rows });
    allPassed(run, { 'counters.test.ts': 2, 'queue.test.ts': 3, 'sessions.test.ts': 3 });
    const used = readFileSync(rows, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(used.map((u) => u.file)).toEqual(['counters.test.ts', 'queue.test.ts', 'sessions.test.ts']);
    for (const u of used) {
      expect(u.image).toBe(join(examples, '..', '.cache', 'images', 'redis'));
      expect(u.peakMemoryBytes).toBeGreaterThan(1024 * 1024); // redis-server ran in it
      expect(u.peakMemoryBytes).toBeLessThanOrEqual(128 * 1024 * 1024);
      expect(u.oomKills).toBe(0);
    }
  });

  test('postgres: a real pg client, a schema made in one file is absent in another', async () => {
    allPassed(await vitest('postgres'), { 'roles.test.ts': 2, 'same-names.test.ts': 3, 'schema.test.ts': 2 });
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
