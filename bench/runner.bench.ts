// What `environment: 'container'` adds to a real Vitest run: a 20-file suite run
// through Vitest's CLI with environment 'node' and with environment 'container'
// (a file that never touches its container, and one that runs `container.exec(['true'])`
// once), interleaved round-robin in one process so machine noise hits every variant
// alike. Reports wall time per run (median, p25..p75, min) and the added ms per file,
// plus Vitest's own per-file durations (TestModule.diagnostic()) from a small reporter,
// and, where a cgroup v1 cpuacct hierarchy allows, each run's CPU time (runner-suite.ts).
//
//   npm run build   (or: node native/build.mjs && npx tsc -p tsconfig.json) — the
//                   environment is loaded from dist/ through node_modules/vitest-environment-container
//   node_modules/node/bin/node bench/runner.bench.ts [--rounds 7] [--warmup 1] [--files 20]
//       [--max-workers 2] [--variants node,floor,container-idle,container-idle-no-spares,container-exec] [--no-write]
//       [--debug-trace]      one extra container-exec run with DEBUG=container:* timestamps
//
// Needs root (or working rootless sandboxes). Default pool (forks) and default
// isolation for every variant, the same --maxWorkers.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg as argOf, assertBuilt, benchDir, check as checkRun, f0, f1, type FileDiag, generateSuite, type RunResult, runSuite, summarize, vitestVersion } from './lib/runner-suite.ts';

// ---------- options ----------

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string): string => argOf(argv, name, fallback);
const ROUNDS = Number(arg('rounds', '7'));
const WARMUP = Number(arg('warmup', '1'));
const FILES = Number(arg('files', '20'));
const MAX_WORKERS = arg('max-workers', '2');
const WRITE = !argv.includes('--no-write');
const DEBUG_TRACE = argv.includes('--debug-trace');
// Issue 11: environment 'container' may add at most this per file against environment 'node'.
const TARGET_MS_PER_FILE = 10;

interface Variant { name: string; env: 'node' | 'floor' | 'container'; dir: 'idle' | 'exec'; what: string; extraEnv?: Record<string, string> }
const ALL_VARIANTS: Variant[] = [
  { name: 'node', env: 'node', dir: 'idle', what: "environment 'node', 2 trivial tests per file" },
  { name: 'floor', env: 'floor', dir: 'idle', what: "a do-nothing environment package that injects a setup file registering an afterAll, as this one does (bench/lib/runner-suite.ts): Vitest's own cost of such an environment" },
  { name: 'container-idle', env: 'container', dir: 'idle', what: "environment 'container', same files: the sandbox is started and stopped, never used" },
  { name: 'container-idle-no-spares', env: 'container', dir: 'idle', extraEnv: { VITEST_CONTAINER_SPARES: '0' },
    what: "container-idle with `VITEST_CONTAINER_SPARES=0`: each file's sandbox started when the file asks, none ahead" },
  { name: 'container-exec', env: 'container', dir: 'exec', what: "environment 'container', each file imports `container` and runs `container.exec(['true'])` once" },
];
const wanted = new Set(arg('variants', ALL_VARIANTS.map((v) => v.name).join(',')).split(','));
const variants = ALL_VARIANTS.filter((v) => wanted.has(v.name));

// ---------- one Vitest run ----------

let runCount = 0;
const reportDir = mkdtempSync(join(tmpdir(), 'vtc-runner-bench-'));

function runVitest(v: Variant, extraEnv: Record<string, string> = {}): Promise<RunResult> {
  const n = ++runCount;
  return runSuite({
    variant: v.name, args: ['--maxWorkers', MAX_WORKERS], report: join(reportDir, `${n}.json`),
    env: { BENCH_ENV: v.env, BENCH_DIR: v.dir, ...v.extraEnv, ...extraEnv },
    ...(v.env === 'container' ? { cgroupParent: `/vtc-bench-runner-${process.pid}-${n}` } : {}),
  });
}

function check(r: RunResult): void {
  checkRun(r, FILES);
}

// ---------- main ----------

if (argv.includes('--generate-only')) {
  generateSuite(FILES);
  process.exit(0);
}
assertBuilt();
generateSuite(FILES);

const date = new Date().toISOString().slice(0, 10);
const load0 = loadavg();
console.log(`runner bench: ${FILES} files, --maxWorkers ${MAX_WORKERS}, ${ROUNDS} rounds (+${WARMUP} warm-up), variants ${variants.map((v) => v.name).join(', ')}`);
console.log(`host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}, load ${load0.map((l) => l.toFixed(2)).join(' ')}`);

const results = new Map<string, RunResult[]>(variants.map((v) => [v.name, []]));
for (let round = -WARMUP; round < ROUNDS; round++) {
  // Rotate the order every round so no variant always runs right after another.
  const order = variants.map((_, i) => variants[(i + Math.max(0, round)) % variants.length]!);
  const line: string[] = [];
  for (const v of order) {
    const r = await runVitest(v);
    check(r);
    if (round >= 0) results.get(v.name)!.push(r);
    line.push(`${v.name} ${f0(r.wallMs)}`);
  }
  console.log(`${round < 0 ? 'warm-up' : `round ${round + 1}/${ROUNDS}`}: ${line.join(', ')} ms (load ${loadavg()[0]!.toFixed(2)})`);
}

let trace = '';
if (DEBUG_TRACE && variants.some((v) => v.env === 'container')) {
  const v = ALL_VARIANTS.find((x) => x.name === 'container-exec')!;
  const r = await runVitest(v, { DEBUG: 'container:*', DEBUG_HIDE_DATE: '0' });
  check(r);
  trace = r.output;
  writeFileSync(join(reportDir, 'debug-trace.txt'), trace);
  console.log(`DEBUG=container:* trace of one container-exec run: ${join(reportDir, 'debug-trace.txt')}`);
}
const load1 = loadavg();

// ---------- report ----------

const wall = new Map(variants.map((v) => [v.name, summarize(results.get(v.name)!.map((r) => r.wallMs))]));
const base = wall.get('node');
const out: string[] = [];
out.push(`# Runner benchmark — ${date}`, '');
out.push(`${FILES}-file Vitest ${vitestVersion()} suite through the CLI`,
  `(\`vitest run --maxWorkers ${MAX_WORKERS}\`, default pool forks, default per-file isolation), ${ROUNDS} interleaved rounds`,
  `after ${WARMUP} warm-up round(s). Host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version};`,
  `load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end (other engineers' test runs share the machine).`, '');
out.push('| variant | what | wall median ms | p25–p75 | min | max | spread (p75−p25)/median |', '|---|---|---:|---:|---:|---:|---:|');
for (const v of variants) {
  const s = wall.get(v.name)!;
  out.push(`| ${v.name} | ${v.what} | ${f0(s.median)} | ${f0(s.p25)}–${f0(s.p75)} | ${f0(s.min)} | ${f0(s.max)} | ${f0(((s.p75 - s.p25) / s.median) * 100)} % |`);
}
out.push('');
if (base) {
  out.push(`Added wall time per file, against \`node\` (target ≤ ${TARGET_MS_PER_FILE} ms):`, '',
    '| variant | added per file, medians | added per file, min vs min | paired per round (median of round deltas) | target |', '|---|---:|---:|---:|---|');
  for (const v of variants.filter((x) => x.name !== 'node')) {
    const s = wall.get(v.name)!;
    const paired = summarize(results.get(v.name)!.map((r, i) => r.wallMs - results.get('node')![i]!.wallMs));
    const added = (s.median - base.median) / FILES;
    out.push(`| ${v.name} | ${f1(added)} ms | ${f1((s.min - base.min) / FILES)} ms | ${f1(paired.median / FILES)} ms (p25–p75 ${f1(paired.p25 / FILES)}–${f1(paired.p75 / FILES)}) | ${added <= TARGET_MS_PER_FILE ? 'met' : `missed (${f1(added / TARGET_MS_PER_FILE)}×)`} |`);
  }
  out.push('', `With ${MAX_WORKERS} workers, a file's own latency grows by about ${MAX_WORKERS}× the wall-clock figure (files run ${MAX_WORKERS} at a time).`, '');
}
// Each run's CPU, when every run could be counted (a cpuacct cgroup per run, see runner-suite.ts).
const cpu = new Map(variants.map((v) => [v.name, results.get(v.name)!.map((r) => r.cpuMs)]));
const cpuRuns = [...cpu.values()].every((runs) => runs.every((c) => c !== undefined)) ? cpu as Map<string, number[]> : undefined;
if (base && cpuRuns) {
  // Less swayed by the machine than wall time (see bench/README-runner.md), and it shows what a
  // file costs where the cores are the limit.
  const nodeCpu = cpuRuns.get('node')!;
  const nodeMedian = summarize(nodeCpu).median;
  out.push('CPU time of each whole run (Vitest, its workers, the spawner and the sandboxes; a cpuacct cgroup per run), against `node`:', '',
    '| variant | CPU median ms | p25–p75 | added CPU per file, medians | paired per round |', '|---|---:|---:|---:|---:|');
  for (const v of variants) {
    const runs = cpuRuns.get(v.name)!;
    const c = summarize(runs);
    const paired = summarize(runs.map((x, i) => x - nodeCpu[i]!));
    out.push(`| ${v.name} | ${f0(c.median)} | ${f0(c.p25)}–${f0(c.p75)} | ${v.name === 'node' ? '' : `${f1((c.median - nodeMedian) / FILES)} ms`} | ${v.name === 'node' ? '' : `${f1(paired.median / FILES)} ms`} |`);
  }
  out.push('');
}

// Vitest's per-file durations: median over all files of all rounds.
out.push("Vitest's own per-file durations (`TestModule.diagnostic()`, median over files × rounds, ms).",
  "`environment` is the environment's `setup()` (this package starts the sandbox in the background there);",
  '`setup` is the setup files — the environment injects one that awaits the sandbox, so sandbox start shows up there;',
  "`tests` is the tests and hooks (the afterAll that reads the sandbox's stats, and the exec). Sandbox stop happens in",
  "the environment's teardown, which Vitest does not time per file: it is in the wall time only.", '',
  '| variant | environment | prepare | setup | collect | tests | sum | Vitest summary line (last round) |', '|---|---:|---:|---:|---:|---:|---:|---|');
const diagMedians = new Map<string, Record<string, number>>();
for (const v of variants) {
  const files = results.get(v.name)!.flatMap((r) => r.files);
  const m = (k: keyof FileDiag): number => summarize(files.map((f) => f[k] as number)).median;
  const row = { environment: m('environmentSetupDuration'), prepare: m('prepareDuration'), setup: m('setupDuration'), collect: m('collectDuration'), tests: m('duration') };
  diagMedians.set(v.name, row);
  const sum = row.environment + row.prepare + row.setup + row.collect + row.tests;
  const last = results.get(v.name)!.at(-1);
  out.push(`| ${v.name} | ${f1(row.environment)} | ${f1(row.prepare)} | ${f1(row.setup)} | ${f1(row.collect)} | ${f1(row.tests)} | ${f1(sum)} | ${last?.summaryLine.replace(/\|/g, '/') ?? ''} |`);
}
out.push('');
const leftovers = [...results.values()].flat().flatMap((r) => r.leftovers);
out.push(`Cgroups left behind after all container runs: ${leftovers.length ? leftovers.join(', ') : 'none'}.`, '');
out.push('Raw wall times (ms, in round order):', '');
for (const v of variants) out.push(`- ${v.name}: ${results.get(v.name)!.map((r) => f0(r.wallMs)).join(', ')}`);
out.push('');
if (cpuRuns) {
  out.push('Raw CPU times (ms, in round order):', '');
  for (const v of variants) out.push(`- ${v.name}: ${cpuRuns.get(v.name)!.map(f0).join(', ')}`);
  out.push('');
}

const text = out.join('\n');
console.log(`\n${text}`);
if (WRITE) {
  mkdirSync(join(benchDir, 'results'), { recursive: true });
  const file = join(benchDir, 'results', `runner-${date}.md`);
  writeFileSync(file, text);
  writeFileSync(join(benchDir, 'results', `runner-${date}.json`), JSON.stringify({ date, files: FILES, maxWorkers: MAX_WORKERS, load: [load0, load1], wall: Object.fromEntries(wall), diagnostics: Object.fromEntries(diagMedians), raw: Object.fromEntries([...results].map(([k, rs]) => [k, rs.map((r) => ({ wallMs: r.wallMs, files: r.files }))])) }, null, 1));
  console.log(`\nwritten: ${file}`);
}
if (!DEBUG_TRACE) rmSync(reportDir, { recursive: true, force: true });
