// vitest-environment-container/reporter, as users run it: after the run a table of each file's
// sandbox (peak memory against its limit, CPU time, OOM kills, processes), the files that came
// within 10 % of their limit called out, JSON on request; with --shard, the blob reports merge
// (--merge-reports) into one table. (The Jest reporter: test/runner/seeded.test.ts.)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isRoot } from '../helpers/host.ts';
import { runVitest } from '../helpers/run-fixture.ts';

const work = mkdtempSync(join(tmpdir(), 'vtc-reporter-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const REPORTER = '--reporter=vitest-environment-container/reporter';

interface Report {
  files: { file: string; state: string; peakMemoryBytes: number; memoryLimitBytes: number; memoryShare: number; nearMemoryLimit: boolean; oomKills: number; cpuSeconds: number; pids: number }[];
  nearMemoryLimit: string[];
  oomKilled: string[];
}

function checkReport(report: Report): void {
  expect(report.files.map((f) => [f.file, f.state])).toEqual([['heavy.test.ts', 'passed'], ['light.test.ts', 'passed'], ['oom.test.ts', 'failed']]);
  const [heavy, light, oom] = report.files;
  expect(heavy!.memoryLimitBytes).toBe(40 * 2 ** 20);
  expect(heavy!.memoryShare).toBeGreaterThanOrEqual(0.9);
  expect(heavy!.nearMemoryLimit).toBe(true);
  expect(light!.memoryShare).toBeLessThan(0.5);
  expect(light!.nearMemoryLimit).toBe(false);
  expect(oom!.oomKills).toBeGreaterThanOrEqual(1);
  for (const f of report.files) expect(f.cpuSeconds).toBeGreaterThanOrEqual(0);
  expect(report.nearMemoryLimit).toEqual(['heavy.test.ts', 'oom.test.ts']);
  expect(report.oomKilled).toEqual(['oom.test.ts']);
}

describe.runIf(isRoot)('the resource reporter', { timeout: 180_000 }, () => {
  test('a table after the run: the file near its limit flagged, the OOM kill counted; JSON when asked', async () => {
    const json = join(work, 'resources.json');
    const r = await runVitest('reporter', ['--reporter=default', REPORTER], { VITEST_CONTAINER_REPORT_JSON: json });
    expect(r.code).toBe(1); // oom.test.ts fails, as it should
    expect(r.output).toMatch(/Resources per test file \(each in its own sandbox\)\nfile\s+result\s+image\s+peak memory\s+of limit\s+CPU time\s+OOM kills\s+pids/);
    expect(r.output).toMatch(/heavy\.test\.ts\s+pass \(1\)\s+host\s+\d+\.\d MiB\s+! 9\d% of 40\.0 MiB/);
    expect(r.output).toMatch(/light\.test\.ts\s+pass \(1\)\s+host\s+\d+\.\d MiB\s+\d% of 40\.0 MiB/);
    // Its tests passed; the file failed after them, for the OOM kill, which the report counts.
    expect(r.output).toMatch(/oom\.test\.ts\s+FAIL\s+host\s+\d+\.\d MiB\s+! 1?\d\d% of 40\.0 MiB\s+\d+\.\d\d s\s+[1-9]\s+\d+\n/);
    expect(r.output).toMatch(/! 2 file\(s\) came within 10 % of their memory limit[^\n]*\n\s+heavy\.test\.ts\n\s+oom\.test\.ts/);
    expect(r.output).toMatch(/1 file\(s\) had a process killed for memory: oom\.test\.ts/);
    checkReport(JSON.parse(readFileSync(json, 'utf8')) as Report);
  });

  test('--shard runs write blob reports; --merge-reports prints one table of every shard\'s files', async () => {
    const blobs = join(work, 'blobs');
    for (const shard of ['1/2', '2/2']) {
      const r = await runVitest('reporter', [`--shard=${shard}`, '--reporter=blob', `--outputFile.blob=${join(blobs, `blob-${shard.replace('/', '-')}.json`)}`]);
      expect(r.output).not.toMatch(/Resources per test file/);
    }
    const json = join(work, 'merged.json');
    const merged = await runVitest('reporter', ['--merge-reports', blobs, REPORTER], { VITEST_CONTAINER_REPORT_JSON: json });
    expect(merged.output.match(/Resources per test file/g)).toHaveLength(1);
    for (const file of ['heavy.test.ts', 'light.test.ts', 'oom.test.ts']) expect(merged.output).toContain(file);
    checkReport(JSON.parse(readFileSync(json, 'utf8')) as Report);
  });
});
