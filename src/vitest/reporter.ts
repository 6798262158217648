// `vitest-environment-container/reporter`: after the run, a table of what each test file's
// sandbox used (src/report/resources.ts). The environment records it in the file's task meta
// (`testModule.meta().container`), which blob reports keep: `vitest --merge-reports` of
// `--shard` runs prints one table for all of them.
//
//   vitest run --reporter=default --reporter=vitest-environment-container/reporter
//   reporters: ['default', ['vitest-environment-container/reporter', { json: 'resources.json' }]]
import { relative } from 'node:path';
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { emitReport, type FileResources, type FileRow, type ReportOptions } from '../report/resources.ts';

export type { ReportOptions, FileRow };

export default class ContainerResourceReporter implements Reporter {
  readonly #options: ReportOptions;
  #root = process.cwd();
  #print: (text: string) => void = (text) => process.stdout.write(`${text}\n`);

  constructor(options: ReportOptions = {}) {
    this.#options = options;
  }

  onInit(vitest: Vitest): void {
    this.#root = vitest.config.root;
    this.#print = (text) => vitest.logger.log(text);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const rows: FileRow[] = [];
    for (const m of testModules) {
      const resources = (m.meta() as { container?: FileResources }).container;
      if (!resources) continue; // not run in a container (another environment, or it never started)
      const tests = [...m.children.allTests()];
      rows.push({
        project: m.project.name || relative(this.#root, m.project.config.root) || '.',
        file: relative(this.#root, m.moduleId),
        state: m.state(),
        tests: tests.length,
        failed: tests.filter((t) => t.result().state === 'failed').length,
        ...resources,
      });
    }
    emitReport(rows, this.#options, this.#print);
  }
}
