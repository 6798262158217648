// The per-file resource report both runners' reporters print after a run: what each test
// file's sandbox used (peak memory against its limit, CPU time, OOM kills, processes), with
// the files that came close to their memory limit called out, as a table or as JSON.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FileResources } from '../session/file-sandbox.ts';

export type { FileResources };

export interface FileRow extends Partial<FileResources> {
  /** the project (Vitest) or the rootDir's name (Jest) */
  project: string;
  /** relative to the project's root */
  file: string;
  /** passed, failed, skipped */
  state: string;
  tests: number;
  failed: number;
}

export interface ReportOptions {
  /** Write the report as JSON to this file (true: print JSON instead of the table). */
  json?: string | boolean;
  /** A file is flagged when its peak memory is at least this share of its limit (default 0.9: within 10 %). */
  nearLimit?: number;
  /** Print the table (default true). */
  table?: boolean;
}

export interface ResourceReport {
  files: (FileRow & { nearMemoryLimit: boolean; memoryShare: number | undefined })[];
  /** files that came within (1 - nearLimit) of their memory limit */
  nearMemoryLimit: string[];
  oomKilled: string[];
}

/** Environment variable: a path to write the JSON report to (for CLI runs, where a reporter takes no options). */
export const JSON_ENV = 'VITEST_CONTAINER_REPORT_JSON';

const mib = (bytes: number | undefined): string => (bytes === undefined ? '—' : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const secs = (s: number | undefined): string => (s === undefined ? '—' : `${s.toFixed(2)} s`);

/** A file as the report names it: with its project's name when it has one. */
function displayName(r: FileRow): string {
  return r.project && r.project !== '.' ? `${r.project}/${r.file}` : r.file;
}

export function buildReport(rows: FileRow[], nearLimit = 0.9): ResourceReport {
  const files = [...rows].sort((a, b) => displayName(a).localeCompare(displayName(b))).map((r) => {
    const memoryShare = r.memoryLimitBytes && r.peakMemoryBytes !== undefined ? r.peakMemoryBytes / r.memoryLimitBytes : undefined;
    return { ...r, memoryShare, nearMemoryLimit: memoryShare !== undefined && memoryShare >= nearLimit };
  });
  const name = (r: FileRow) => displayName(r);
  return { files, nearMemoryLimit: files.filter((f) => f.nearMemoryLimit).map(name), oomKilled: files.filter((f) => (f.oomKills ?? 0) > 0).map(name) };
}

/** `<repo>/.cache/images/redis` -> `redis`; 'host' and `seeded:NAME` stay. */
function imageName(image: string | undefined): string {
  if (!image) return '—';
  if (image.startsWith('cache:')) return `${image.slice(0, 'cache:sha256:'.length + 12)}`;
  return image.includes('/') ? image.replace(/[:@].*$/, '').split('/').filter(Boolean).pop() ?? image : image;
}

export function formatReport(report: ResourceReport, nearLimit = 0.9): string {
  const header = ['file', 'result', 'image', 'peak memory', 'of limit', 'CPU time', 'OOM kills', 'pids'];
  const body = report.files.map((r) => [
    displayName(r),
    r.state === 'passed' ? `pass (${r.tests})` : r.state === 'skipped' ? 'skip' : r.failed ? `FAIL (${r.failed}/${r.tests})` : 'FAIL',
    imageName(r.image),
    mib(r.peakMemoryBytes),
    r.memoryShare === undefined ? '—' : `${r.nearMemoryLimit ? '! ' : ''}${Math.round(r.memoryShare * 100)}% of ${mib(r.memoryLimitBytes)}`,
    secs(r.cpuSeconds),
    r.oomKills === undefined ? '—' : String(r.oomKills),
    r.pids === undefined ? '—' : `${r.pids}${r.rejectedForks ? ` (${r.rejectedForks} refused)` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const lines = ['Resources per test file (each in its own sandbox)', line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)];
  const pct = Math.round((1 - nearLimit) * 100);
  if (report.nearMemoryLimit.length) {
    lines.push('', `! ${report.nearMemoryLimit.length} file(s) came within ${pct} % of their memory limit (raise \`memory\` for them, or find what grows):`,
      ...report.nearMemoryLimit.map((f) => `    ${f}`));
  }
  if (report.oomKilled.length) lines.push('', `${report.oomKilled.length} file(s) had a process killed for memory: ${report.oomKilled.join(', ')}`);
  return lines.join('\n');
}

/** Prints and/or writes the report as the options say. */
export function emitReport(rows: FileRow[], options: ReportOptions, print: (text: string) => void): ResourceReport {
  const nearLimit = options.nearLimit ?? 0.9;
  const report = buildReport(rows, nearLimit);
  const json = options.json ?? process.env[JSON_ENV];
  if (json === true) {
    print(JSON.stringify(report, null, 2));
    return report;
  }
  if (typeof json === 'string' && json) {
    mkdirSync(dirname(json), { recursive: true });
    writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (options.table !== false && report.files.length) print(`\n${formatReport(report, nearLimit)}\n`);
  return report;
}
