// What each piece of the default sandbox's hardening costs (issue 12): the seccomp filter, the user
// namespace a root-started sandbox gets, and the session keyring. Measured at the runtime itself
// (`vtc-runtime run --bundle` and `vtc-runtime exec`, no Node in between), in one run, variants
// interleaved round by round, as p50 and differences against the full default.
//
//   node_modules/node/bin/node bench/hardening.bench.ts [--rounds 300] [--no-write]
//
// The bundles are the spec a real startContainer writes for the project's busybox image (as root),
// with one piece taken out each: no linux.seccomp; no user namespace (and its maps); neither. Times include
// spawnSync's own start of the process (the same for every variant: the differences are what count). The
// keyring join is one syscall per process: timed on its own, 2000 joins in a loop.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startContainer } from '../src/runtime/index.ts';
import { runtimeBinary } from '../src/runtime/native.ts';
import { ensureImages, imagePath } from '../examples/shared/ensure-images.ts';
import { percentile } from './peers/stats.ts';

const argv = process.argv.slice(2);
const ROUNDS = Number(argv[argv.indexOf('--rounds') + 1] ?? 300) || 300;
const WRITE = !argv.includes('--no-write');
if (process.getuid?.() !== 0) {
  console.error('hardening.bench.ts needs root (the user namespace is what a root-started sandbox gets).');
  process.exit(1);
}

ensureImages(['busybox']);
const binary = runtimeBinary();
const dir = mkdtempSync('/run/vtc-hardening-bench-');
const image = imagePath('busybox');

// The spec a real sandbox gets, then its variants.
const keeper = await startContainer({ image, cmd: ['/bin/sleep', '100000'] });
const spec = JSON.parse(readFileSync(join('/run/vitest-container', keeper.id, 'config.json'), 'utf8'));
spec.process.args = ['/bin/true'];
delete spec.linux.cgroupsPath; // limits are not what is measured here
const withoutUserns = (s: typeof spec) => ({ ...s, linux: { ...s.linux, namespaces: s.linux.namespaces.filter((n: { type: string }) => n.type !== 'user'), uidMappings: undefined, gidMappings: undefined } });
const withoutSeccomp = (s: typeof spec) => ({ ...s, linux: { ...s.linux, seccomp: undefined } });
const variants: Record<string, unknown> = {
  'default (all of it)': spec,
  'no seccomp filter': withoutSeccomp(spec),
  'no user namespace': withoutUserns(spec),
  'neither': withoutSeccomp(withoutUserns(spec)),
};
for (const [name, s] of Object.entries(variants)) {
  const b = join(dir, name.replace(/\W+/g, '-'));
  mkdirSync(join(b, 'rootfs'), { recursive: true });
  writeFileSync(join(b, 'config.json'), JSON.stringify(s));
}

function timed(args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const t = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return t;
}

// Lifecycle of each variant, interleaved.
const times = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
for (let round = -20; round < ROUNDS; round++) {
  for (const name of Object.keys(variants)) {
    const t = timed(['run', '--bundle', join(dir, name.replace(/\W+/g, '-'))]);
    if (round >= 0) times.get(name)!.push(t);
  }
}

// exec into the running sandbox, with and without its filter.
const pidns = readlinkSync(`/proc/${keeper.pid}/ns/pid`).replace(/\D/g, '');
const proc = JSON.stringify({ args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, noNewPrivileges: true });
const execBase = ['exec', '--pid', String(keeper.pid), '--pidns', pidns];
const execTimes = { 'exec, with the filter': [] as number[], 'exec, no filter': [] as number[] };
for (let round = -20; round < ROUNDS; round++) {
  const a = timed([...execBase, '--seccomp', join('/run/vitest-container', keeper.id, 'seccomp.bpf'), proc]);
  const b = timed([...execBase, proc]);
  if (round >= 0) { execTimes['exec, with the filter'].push(a); execTimes['exec, no filter'].push(b); }
}
await keeper.stop();

// The session keyring: one KEYCTL_JOIN_SESSION_KEYRING (a new anonymous keyring) per process.
const keyring = spawnSync('python3', ['-c', `
import ctypes, platform, time
nr = {'x86_64': 250, 'aarch64': 219}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
n = 2000
t = time.perf_counter()
for _ in range(n): libc.syscall(nr, 1, None)
join = (time.perf_counter() - t) / n
t = time.perf_counter()
for _ in range(n): libc.syscall(nr, 0, -3, 0)
base = (time.perf_counter() - t) / n
print(round((join - base) * 1e6, 1))`], { encoding: 'utf8' });
rmSync(dir, { recursive: true, force: true });

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const p50 = (xs: number[]) => percentile(sorted(xs), 0.5);
const p90 = (xs: number[]) => percentile(sorted(xs), 0.9);
const full = p50(times.get('default (all of it)')!);
const lines = [
  `# Hardening costs, ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Host: ${cpus().length}× ${cpus()[0]?.model ?? '?'}, Linux ${release()}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${ROUNDS} interleaved rounds (20 warm-up), \`vtc-runtime\` started directly, as root, busybox image.`,
  '',
  '| variant | p50 ms | p90 ms | vs default (p50) |',
  '|---|---:|---:|---:|',
  ...[...times].map(([name, xs]) => `| ${name} | ${p50(xs).toFixed(2)} | ${p90(xs).toFixed(2)} | ${name.startsWith('default') ? '' : `${(p50(xs) - full >= 0 ? '+' : '')}${(p50(xs) - full).toFixed(2)} ms`} |`),
  ...Object.entries(execTimes).map(([name, xs]) => `| ${name} | ${p50(xs).toFixed(2)} | ${p90(xs).toFixed(2)} | ${name.endsWith('no filter') ? `${(p50(xs) - p50(execTimes['exec, with the filter'])).toFixed(2)} ms vs with` : ''} |`),
  '',
  `Session keyring: one KEYCTL_JOIN_SESSION_KEYRING costs ${keyring.stdout.trim() || '?'} µs over a keyctl that makes nothing (2000 in a loop; one per sandbox, one per exec).`,
];
console.log(lines.join('\n'));
if (WRITE) {
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', `hardening-${new Date().toISOString().slice(0, 10)}.md`);
  writeFileSync(out, `${lines.join('\n')}\n`);
  console.log(`\nwritten to ${out}`);
}
