// `vitest-environment-container/jest-reporter`: the per-file resource table for Jest
// (src/report/resources.ts), from what each file's environment left for it (src/report/handoff.ts).
//
//   reporters: ['default', 'vitest-environment-container/jest-reporter']
//   reporters: ['default', ['vitest-environment-container/jest-reporter', { json: 'resources.json' }]]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, relative } from 'node:path';
import { collectLeft, RESOURCES_DIR_ENV } from '../report/handoff.ts';
import { emitReport, type FileRow, type ReportOptions } from '../report/resources.ts';

interface JestResults { testResults: { testFilePath: string; numFailingTests: number; numPassingTests: number; numPendingTests: number; testExecError?: unknown; skipped?: boolean }[] }

export default class ContainerResourceReporter {
  readonly #options: ReportOptions;
  readonly #rootDir: string;
  readonly #dir: string;

  constructor(globalConfig: { rootDir: string }, options: ReportOptions = {}) {
    this.#options = options ?? {};
    this.#rootDir = globalConfig.rootDir;
    this.#dir = mkdtempSync(`${tmpdir()}/vtc-jest-resources-`);
    // Read by the environments of the test workers Jest starts after its reporters.
    process.env[RESOURCES_DIR_ENV] = this.#dir;
  }

  onRunComplete(_contexts: unknown, results: JestResults): void {
    const left = collectLeft(this.#dir);
    rmSync(this.#dir, { recursive: true, force: true });
    const rows: FileRow[] = [];
    for (const r of results.testResults) {
      const resources = left.get(r.testFilePath);
      if (!resources) continue;
      const tests = r.numFailingTests + r.numPassingTests + r.numPendingTests;
      rows.push({
        project: basename(this.#rootDir), file: relative(this.#rootDir, r.testFilePath),
        state: r.numFailingTests || r.testExecError ? 'failed' : r.skipped ? 'skipped' : 'passed', tests, failed: r.numFailingTests, ...resources,
      });
    }
    emitReport(rows, this.#options, (text) => process.stdout.write(`${text}\n`));
  }

  getLastError(): Error | undefined {
    return undefined;
  }
}
