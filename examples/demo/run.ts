// `npm run demo`: builds what the examples need (the native runtime, dist/, and the
// redis and postgres images from Debian packages), runs every example project in
// sandboxes, and prints what each test file's sandbox used: the package's own resource
// reporters (vitest-environment-container/reporter and /jest-reporter) write each
// example's report as JSON, and this prints them as one table. Exits non-zero if any
// step or any test fails.
//
//   node_modules/node/bin/node examples/demo/run.ts      (Node >= 23.6: it is TypeScript)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { buildReport, formatReport, type FileRow } from '../../src/report/resources.ts';

const repo = resolve(import.meta.dirname, '../..');
const demo = import.meta.dirname;
const node = process.execPath;
const work = mkdtempSync(join(tmpdir(), 'vtc-demo-'));

interface Ran { code: number | null; output: string; seconds: number }

function run(argv: string[], opts: { cwd?: string; env?: Record<string, string>; show?: boolean } = {}): Promise<Ran> {
  const started = performance.now();
  const child = spawn(node, argv, {
    cwd: opts.cwd ?? repo,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.show ? 'inherit' : 'pipe', opts.show ? 'inherit' : 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr?.on('data', (c: Buffer) => { output += c.toString(); });
  return new Promise((done) => child.on('close', (code) => done({ code, output, seconds: (performance.now() - started) / 1000 })));
}

function step(title: string): void {
  process.stdout.write(`\n▸ ${title}\n`);
}

function fail(what: string, r: Ran): never {
  process.stdout.write(`${r.output}\n✗ ${what} failed (exit code ${r.code})\n`);
  rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

// 1. Build.
step('building the native runtime and dist/');
let r = await run([join(repo, 'native', 'build.mjs')]);
if (r.code !== 0) fail('native/build.mjs', r);
r = await run([join(repo, 'node_modules', 'rolldown', 'bin', 'cli.mjs'), '-c', join(repo, 'rolldown.config.mjs')], { cwd: repo });
if (r.code !== 0) fail('rolldown', r);
const bundled = r.seconds;
r = await run([join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repo, 'tsconfig.json'), '--emitDeclarationOnly']);
if (r.code !== 0) fail('tsc', r);
console.log(`  done (${bundled.toFixed(1)} s for rolldown, ${r.seconds.toFixed(1)} s for tsc)`);

step('building the images from Debian packages (rootfs/; cached in .cache/images)');
r = await run([join(repo, 'rootfs', 'build.ts'), 'redis', 'postgres'], { show: true });
if (r.code !== 0) {
  fail(`rootfs/build.ts${process.getuid?.() !== 0 ? ' (image builds need root: sudo npm run demo)' : ''}`, r);
}

// 2. Run the examples.
interface Example { name: string; runner: 'vitest' | 'jest'; config?: string }
const examples: Example[] = [
  { name: 'redis', runner: 'vitest' },
  { name: 'postgres', runner: 'vitest' },
  { name: 'isolation', runner: 'vitest', config: join(demo, 'isolation.config.ts') }, // + each pool worker's cgroup usage
  { name: 'jest', runner: 'jest' },
];

const rows: FileRow[] = [];
let failed = false;
for (const ex of examples) {
  const dir = join(repo, 'examples', ex.name);
  const out = join(work, `${ex.name}.json`);
  step(`examples/${ex.name} (${ex.runner})`);
  let res: Ran;
  if (ex.runner === 'vitest') {
    res = await run([join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', dir,
      ...(ex.config ? ['--config', ex.config] : []),
      '--reporter=dot', '--reporter=vitest-environment-container/reporter'], { cwd: dir, env: { VITEST_CONTAINER_REPORT_JSON: out } });
  } else {
    res = await run([join(repo, 'node_modules', 'jest', 'bin', 'jest.js'),
      '--reporters=default', '--reporters=vitest-environment-container/jest-reporter'], { cwd: dir, env: { VITEST_CONTAINER_REPORT_JSON: out } });
  }
  const got = readReport(out).map((f) => ({ ...f, project: ex.name }));
  const tests = got.reduce((n, f) => n + f.tests, 0);
  const bad = got.filter((f) => f.state !== 'passed');
  if (res.code !== 0 || bad.length || !got.length) {
    failed = true;
    process.stdout.write(`${res.output}\n  ✗ ${bad.length || 'some'} of ${got.length} files failed (exit code ${res.code})\n`);
  } else {
    console.log(`  ✓ ${got.length} files, ${tests} tests passed in ${res.seconds.toFixed(1)} s`);
  }
  rows.push(...got);
}

// 3. The summary.
console.log(`\nEvery test file above ran in its own sandbox. What each used:\n\n${formatReport(buildReport(rows))}\n`);
console.log('image: the OCI image the file\'s container ran (built by rootfs/), or "host (pool worker)" when the');
console.log('file\'s own Vitest worker was the sandbox (examples/isolation, containerPool). The OOM kill in');
console.log('isolation/memory-hog.test.ts is its runaway child process, killed at the file\'s 512 MiB limit.');
rmSync(work, { recursive: true, force: true });
if (failed) {
  console.log('\n✗ the demo failed: see the output above');
  process.exit(1);
}
console.log('\n✓ all examples passed');

function readReport(path: string): FileRow[] {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { files: FileRow[] }).files;
  } catch {
    return [];
  }
}
