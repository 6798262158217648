// A Vitest reporter that lists, per test file, what its sandbox used: the file
// environment records it in the file's task meta (`testModule.meta().container`).
//
//   vitest run --reporter=default --reporter=./resource-reporter.ts
//
// With DEMO_RESOURCES_OUT=<file> it appends one JSON line per test file there
// instead of printing (the demo driver, run.ts, collects them into one table).
import { appendFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import type { Reporter, TestModule, Vitest } from 'vitest/node';

export interface FileResources { peakMemoryBytes: number; cpuSeconds: number; oomKills: number; image: string }

export interface FileRow extends Partial<FileResources> {
  project: string;
  file: string;
  state: string;
  tests: number;
  failed: number;
}

const mib = (bytes: number | undefined): string => (bytes === undefined ? '—' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const secs = (s: number | undefined): string => (s === undefined ? '—' : `${s.toFixed(2)} s`);

/** `<repo>/.cache/images/redis` -> `redis`; 'host' stays. */
export function imageName(image: string | undefined): string {
  if (!image) return '—';
  return image.includes('/') ? basename(image.replace(/[:@].*$/, '')) : image;
}

/** A fixed-width table of rows. */
export function formatTable(rows: FileRow[]): string {
  const header = ['file', 'result', 'image', 'peak memory', 'CPU time', 'OOM kills'];
  const body = rows.map((r) => [
    `${r.project}/${r.file}`,
    r.state === 'passed' ? `pass (${r.tests})` : `FAIL (${r.failed}/${r.tests})`,
    imageName(r.image),
    mib(r.peakMemoryBytes),
    secs(r.cpuSeconds),
    r.oomKills === undefined ? '—' : String(r.oomKills),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

export default class ResourceReporter implements Reporter {
  #root = process.cwd();
  #rows: FileRow[] = [];

  onInit(vitest: Vitest): void {
    this.#root = vitest.config.root;
  }

  onTestModuleEnd(testModule: TestModule): void {
    const meta = testModule.meta() as { container?: FileResources };
    const tests = [...testModule.children.allTests()];
    this.#rows.push({
      project: basename(this.#root),
      file: relative(this.#root, testModule.moduleId),
      state: testModule.state(),
      tests: tests.length,
      failed: tests.filter((t) => t.result().state === 'failed').length,
      ...meta.container,
    });
  }

  onTestRunEnd(): void {
    const rows = this.#rows.sort((a, b) => a.file.localeCompare(b.file));
    const out = process.env.DEMO_RESOURCES_OUT;
    if (out) {
      for (const row of rows) appendFileSync(out, `${JSON.stringify(row)}\n`);
    } else {
      console.log(`\nResources per test file (each in its own sandbox)\n${formatTable(rows)}\n`);
    }
    this.#rows = [];
  }
}
