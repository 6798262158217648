// Sandbox lifecycle and exec latency: our runtime against crun, runc,
// bubblewrap and podman, in one run, interleaved in rounds, as ratios.
//
//   npm run bench                       (builds native/ first)
//   node_modules/node/bin/node bench/runtime.bench.ts [--rounds 200] [--warmup 20]
//       [--exec-rounds 200] [--podman-every 5] [--seed 1] [--no-write]
//       [--tools ours,crun,runc,bwrap,bwrap-ovl,podman,node-spawn]
//
// Lifecycle = start a sandbox with pid, net, ipc, uts, mount and cgroup
// namespaces, a fresh writable overlay over the same read-only busybox rootfs,
// memory/CPU/pids limits, run /bin/true, wait, tear down. Needs root. See
// bench/README.md for what each contender does exactly.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startContainer, type Container } from '../src/runtime/index.ts';
import { benchCgroups, removeBenchCgroups } from './peers/cgroups.ts';
import { Driver } from './peers/client.ts';
import type { DriverOptions, ExecTool, MemoryInfo, PeerTool } from './peers/protocol.ts';
import { buildRootfs } from './peers/rootfs.ts';
import { mib, ms, percentile, ratio, summarize, type Summary } from './peers/stats.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));

// ---------- options ----------

const argv = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}
const ROUNDS = Number(arg('rounds', '200'));
const IDLE_ROUNDS = Number(arg('idle-rounds', '30'));
const IDLE_MS = Number(arg('idle-ms', '100'));
const WARMUP = Number(arg('warmup', '20'));
const EXEC_ROUNDS = Number(arg('exec-rounds', '200'));
const PODMAN_EVERY = Math.max(1, Number(arg('podman-every', '5')));
const SEED = Number(arg('seed', '1'));
const WRITE = !argv.includes('--no-write');
const PAD = !argv.includes('--no-pad');
const ALL_TOOLS = ['ours', 'crun', 'runc', 'bwrap', 'bwrap-ovl', 'podman', 'node-spawn', 'node-spawn@driver'] as const;
type Tool = (typeof ALL_TOOLS)[number];
const wanted = new Set(arg('tools', ALL_TOOLS.join(',')).split(',').map((s) => s.trim()));
const LIMITS = { memory: '64m', memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 64 };

if (process.getuid?.() !== 0) {
  console.error('runtime.bench.ts needs root: crun, runc and podman with cgroup limits, and the overlay mounts for the peers.');
  process.exit(1);
}

// ---------- host and tools ----------

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

function version(tool: string): string {
  const r = spawnSync(tool, ['--version'], { encoding: 'utf8' });
  return (r.stdout || r.stderr || '').split('\n')[0]!.trim();
}

const PACKAGES: Record<string, string> = { crun: 'crun', runc: 'runc', bwrap: 'bubblewrap', podman: 'podman' };
/** Why a contender is not in the table (not installed, failed to set up, failed while running). */
const skipped = new Map<Tool | string, string>();
const notes: string[] = [];
const setupInfo = new Map<string, string>();

const tools: Tool[] = [];
for (const tool of ALL_TOOLS) {
  if (!wanted.has(tool)) continue;
  const binary = tool === 'bwrap-ovl' ? 'bwrap' : tool;
  if (tool !== 'ours' && !tool.startsWith('node-spawn') && !have(binary)) {
    skipped.set(tool, `\`${binary}\` is not installed (apt-get install -y ${PACKAGES[binary]})`);
    continue;
  }
  tools.push(tool);
}

const versions: Record<string, string> = {
  node: process.version,
  kernel: release(),
  ...Object.fromEntries(['crun', 'runc', 'bwrap', 'podman'].filter(have).map((t) => [t, version(t)])),
};

// ---------- work dir, rootfs, drivers ----------

const stale = removeBenchCgroups();
if (stale.length) throw new Error(`cannot remove stale bench cgroups: ${stale.join(', ')}`);
const work = mkdtempSync(join(tmpdir(), 'vtc-runtime-bench-'));
const ROOTFS = join(work, 'rootfs');
const loadBefore = loadavg();
let drivers: Driver[] = [];

function driverOptions(extra: Partial<DriverOptions>): DriverOptions {
  return { work, rootfs: ROOTFS, noUnified: false, privateState: false, memoryBytes: LIMITS.memoryBytes, cpus: LIMITS.cpus, pids: LIMITS.pids, ...extra };
}

/** Which driver (mount namespace) runs which peer. */
const driverFor = new Map<PeerTool | `${ExecTool}-exec`, Driver>();

async function cleanup(): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(drivers.map((d) => d.close()));
  drivers = [];
  problems.push(...removeBenchCgroups().map((d) => `cgroup left: ${d}`));
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(work));
  if (mounts.length) problems.push(`mounts left in the host namespace: ${mounts.join('; ')}`);
  else rmSync(work, { recursive: true, force: true });
  return problems;
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: cleaning up…`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------- measurement ----------

type Samples = Map<string, (number | undefined)[]>;
/** RSS of the process that spawned each contender's process: Node's spawn is fork()+exec, and fork() costs grow with it. */
const spawnerRss = new Map<string, number[]>();
const noteRss = (tool: string, bytes: number | undefined): void => {
  if (bytes !== undefined) (spawnerRss.get(tool) ?? spawnerRss.set(tool, []).get(tool)!).push(bytes);
};

/** Node's own spawn + exit + close of /bin/true: the floor under every contender here. */
function nodeSpawn(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

async function oursLifecycle(): Promise<void> {
  const c = await startContainer({ image: `rootfs:${ROOTFS}`, memory: LIMITS.memory, cpus: LIMITS.cpus, pids: LIMITS.pids, cmd: ['/bin/true'] });
  const exit = await c.wait();
  if (exit.exitCode !== 0) throw new Error(`ours: /bin/true exited ${exit.exitCode}: ${c.logs().slice(-500)}`);
}

/** One timed lifecycle; undefined when the tool failed (it is then dropped after 3 failures). */
async function lifecycle(tool: Tool, i: number): Promise<number> {
  if (tool === 'ours' || tool === 'node-spawn') {
    const t0 = performance.now();
    await (tool === 'ours' ? oursLifecycle() : nodeSpawn());
    const t = performance.now() - t0;
    noteRss(tool, process.memoryUsage.rss());
    return t;
  }
  const r = await driverFor.get(tool)!.request({ op: 'run', tool, i });
  if (!r.ok) throw new Error(r.error);
  noteRss(tool, r.rssBytes);
  return r.ms!;
}

/** mulberry32: a small seeded PRNG, so a run's orders can be repeated (--seed). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(SEED);

function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

interface RoundOptions<T> {
  /** The tool takes part in every k-th round only. */
  every?: (tool: T) => number;
  /** Milliseconds of idleness before each iteration (the sporadic case: one sandbox now and then). */
  idleMs?: number;
  afterWarmup?: () => Promise<void>;
}

async function rounds<T extends string>(label: string, contenders: T[], n: number, warmup: number,
  once: (tool: T, i: number) => Promise<number>, { every = () => 1, idleMs = 0, afterWarmup }: RoundOptions<T> = {}): Promise<Samples> {
  const samples: Samples = new Map(contenders.map((t) => [t, []]));
  const failures = new Map<T, number>();
  let live = [...contenders];
  let i = 0;
  const started = performance.now();
  for (let round = -warmup; round < n && !interrupted; round++) {
    if (round === 0) await afterWarmup?.();
    // A fresh random order each round spreads the machine's noise evenly over
    // everyone, and so do after-effects of whoever ran just before: a plain
    // rotation would keep the same predecessor for each contender, and e.g. a
    // cgroup attach right after another one skips the RCU grace period the
    // first one waited for.
    for (const tool of shuffled(live)) {
      if (round % every(tool) !== 0) continue;
      let t: number | undefined;
      if (idleMs) await sleep(idleMs);
      try {
        t = await once(tool, i++);
      } catch (err) {
        const f = (failures.get(tool) ?? 0) + 1;
        failures.set(tool, f);
        console.error(`${label} ${tool}: ${(err as Error).message}`);
        if (f >= 3) {
          skipped.set(`${label}:${tool}`, `failed 3 times, last: ${(err as Error).message.slice(0, 400)}`);
          live = live.filter((x) => x !== tool);
        }
      }
      if (round >= 0) samples.get(tool)![round] = t; // indexed by round, for paired ratios
    }
    if (round >= 0 && (round + 1) % 50 === 0) process.stderr.write(`${label}: ${round + 1}/${n} rounds (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
  return samples;
}

const defined = (xs: (number | undefined)[] | undefined): number[] => (xs ?? []).filter((x): x is number => x !== undefined);

/** ours[r] / tool[r] over rounds: each ratio's two samples saw the same moment's noise. Median (p25–p75). */
function pairedRatio(samples: Samples, ours: string, tool: string): string {
  const a = samples.get(ours) ?? [], b = samples.get(tool) ?? [];
  const rs: number[] = [];
  for (let r = 0; r < Math.min(a.length, b.length); r++) if (a[r] !== undefined && b[r] !== undefined) rs.push(a[r]! / b[r]!);
  if (!rs.length) return '–';
  const sorted = rs.sort((x, y) => x - y);
  return `${ratio(percentile(sorted, 0.5), 1)} (${percentile(sorted, 0.25).toFixed(2)}–${percentile(sorted, 0.75).toFixed(2)})`;
}

// ---------- run ----------

const DESCRIPTIONS: Record<string, string> = {
  ours: '`startContainer({ image: "rootfs:…", memory: "64m", cpus: 0.5, pids: 64, cmd: ["/bin/true"] })` + `wait()`',
  crun: 'tmpfs+overlay mount(2), config.json, `crun run`, umount (cgroupfs v1, /sys/fs/cgroup/unified hidden)',
  runc: 'tmpfs+overlay mount(2), config.json, `runc run`, umount (hybrid host as is)',
  bwrap: '`bwrap --unshare-all --die-with-parent --ro-bind ROOTFS /` (no writable layer, no cgroup)',
  'bwrap-ovl': 'tmpfs+overlay mount(2), `bwrap --unshare-all --bind MERGED /`, umount (no cgroup)',
  podman: '`podman run --rm --network none --memory 64m --cpus 0.5 --pids-limit 64` (cgroupfs, crun)',
  'node-spawn': 'reference, not a sandbox: `child_process.spawn("/bin/true")` until `close`, from the bench process (Node forks, then execs: the floor under every row)',
  'node-spawn@driver': 'reference: the same from a peers\' driver (the runc/bwrap one), to check that both sides pay the same for a spawn',
};

let lifecycleSamples: Samples = new Map();
let execSamples: Samples = new Map();
let idleLifecycleSamples: Samples = new Map();
let idleExecSamples: Samples = new Map();
const memory: { tool: string; sandbox?: MemoryInfo; monitorRssBytes?: number; initRssBytes?: number; note?: string }[] = [];
let problems: string[] = [];
const wallStart = performance.now();

try {
  buildRootfs(ROOTFS);
  const groups: { name: string; peers: PeerTool[]; options: Partial<DriverOptions> }[] = [
    // runc handles hybrid hosts itself: it sees the host as it is.
    { name: 'hybrid', peers: ['runc', 'bwrap', 'bwrap-ovl', 'node-spawn@driver'], options: {} },
    { name: 'crun', peers: ['crun'], options: { noUnified: true } },
    { name: 'podman', peers: ['podman'], options: { noUnified: true, privateState: true } },
  ];
  for (const g of groups) {
    const peers = g.peers.filter((p) => tools.includes(p));
    if (!peers.length) continue;
    const d = new Driver(g.name, driverOptions(g.options));
    drivers.push(d);
    await d.ready();
    for (const p of peers) driverFor.set(p, d);
  }
  if (tools.includes('crun')) driverFor.set('crun-exec', driverFor.get('crun')!);
  if (tools.includes('runc')) driverFor.set('runc-exec', driverFor.get('runc')!);

  // Set up and probe each peer once; one that cannot run here is reported, not faked.
  const lifecycleTools: Tool[] = [];
  for (const tool of tools) {
    try {
      if (tool !== 'ours' && tool !== 'node-spawn') {
        const s = await driverFor.get(tool)!.request({ op: 'setup', tool });
        if (!s.ok) throw new Error(s.error);
        if (s.info) setupInfo.set(tool, s.info);
      }
      await lifecycle(tool, 1_000_000 + lifecycleTools.length);
      lifecycleTools.push(tool);
    } catch (err) {
      skipped.set(tool, (err as Error).message.slice(0, 600));
      console.error(`skipping ${tool}: ${(err as Error).message}`);
    }
  }
  const pad = async (): Promise<void> => {
    for (const d of drivers) {
      const r = await d.request({ op: 'pad', rssBytes: process.memoryUsage.rss() });
      if (!r.ok) throw new Error(r.error);
    }
  };
  const repad = async (): Promise<void> => {
    if (PAD) await pad();
  };
  await repad();
  console.error(`lifecycle: ${lifecycleTools.join(', ')}; ${ROUNDS} rounds after ${WARMUP} warm-up rounds${lifecycleTools.includes('podman') ? `, podman every ${PODMAN_EVERY === 1 ? '' : `${PODMAN_EVERY}th `}round` : ''}`);
  lifecycleSamples = await rounds('lifecycle', lifecycleTools, ROUNDS, WARMUP, lifecycle,
    { every: (t) => (t === 'podman' ? PODMAN_EVERY : 1), afterWarmup: repad });
  // The sporadic case: one sandbox after a pause, as a test file starts one. Nothing else
  // migrates tasks between cgroups meanwhile, so a cgroup v1 attach waits a whole RCU grace period.
  const idleTools = lifecycleTools.filter((t) => t !== 'podman' && t !== 'bwrap-ovl' && t !== 'node-spawn@driver');
  if (IDLE_ROUNDS > 0) {
    console.error(`lifecycle after ${IDLE_MS} ms idle: ${idleTools.join(', ')}; ${IDLE_ROUNDS} rounds`);
    idleLifecycleSamples = await rounds('idle lifecycle', idleTools, IDLE_ROUNDS, 2, lifecycle, { idleMs: IDLE_MS });
  }
  const leftovers = benchCgroups().filter((d) => /\/(crun|runc)-\d+$/.test(d) || /\/podman\/libpod-/.test(d));
  if (leftovers.length) notes.push(`cgroups the peers left after their runs (removed by the bench): ${leftovers.join(', ')}`);

  // ---------- exec ----------
  const execTools: string[] = [];
  const running: Container[] = [];
  if (tools.includes('ours') && EXEC_ROUNDS > 0) {
    // As a test would: a sandbox without limits (it still gets cgroups, which exec joins) …
    running.push(await startContainer({ image: `rootfs:${ROOTFS}`, cmd: ['/bin/sleep', '1000'] }));
    // … and one with the lifecycle's limits, like the peers' long-running containers.
    running.push(await startContainer({ image: `rootfs:${ROOTFS}`, memory: LIMITS.memory, cpus: LIMITS.cpus, pids: LIMITS.pids, cmd: ['/bin/sleep', '1000'] }));
    execTools.push('ours', 'ours-limits');
  }
  for (const tool of ['crun', 'runc'] as ExecTool[]) {
    if (!lifecycleTools.includes(tool) || EXEC_ROUNDS <= 0) continue;
    const r = await driverFor.get(`${tool}-exec`)!.request({ op: 'exec-setup', tool });
    if (!r.ok) {
      skipped.set(`exec:${tool}`, r.error.slice(0, 600));
      continue;
    }
    setupInfo.set(`${tool}-exec`, r.info ?? '');
    execTools.push(`${tool}-exec`);
  }
  const execOnce = async (tool: string): Promise<number> => {
    if (tool === 'ours' || tool === 'ours-limits') {
      const c = running[tool === 'ours' ? 0 : 1]!;
      const t0 = performance.now();
      const r = await c.exec(['/bin/true']);
      const t = performance.now() - t0;
      noteRss(`exec:${tool}`, process.memoryUsage.rss());
      if (r.exitCode !== 0) throw new Error(`exec exited ${r.exitCode}: ${r.stderr}`);
      return t;
    }
    const peer = tool.replace(/-exec$/, '') as ExecTool;
    const r = await driverFor.get(`${peer}-exec`)!.request({ op: 'exec', tool: peer });
    if (!r.ok) throw new Error(r.error);
    noteRss(`exec:${tool}`, r.rssBytes);
    return r.ms!;
  };
  await repad();
  console.error(`exec: ${execTools.join(', ')}; ${EXEC_ROUNDS} rounds after ${WARMUP} warm-up rounds`);
  execSamples = await rounds('exec', execTools, EXEC_ROUNDS, WARMUP, execOnce, { afterWarmup: repad });
  if (IDLE_ROUNDS > 0 && execTools.length) {
    console.error(`exec after ${IDLE_MS} ms idle: ${execTools.join(', ')}; ${IDLE_ROUNDS} rounds`);
    idleExecSamples = await rounds('idle exec', execTools, IDLE_ROUNDS, 2, execOnce, { idleMs: IDLE_MS });
  }

  // ---------- memory of a sleeping sandbox (the limits one) ----------
  const rss = (pid: number): number | undefined => {
    try {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : undefined;
    } catch {
      return undefined;
    }
  };
  const ppid = (pid: number): number => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  };
  const limited = running[1];
  if (limited) {
    const s = await limited.stats();
    memory.push({
      tool: 'ours',
      sandbox: { usageBytes: s.memory.currentBytes, maxUsageBytes: s.memory.peakBytes, processes: s.pids.current + 1 },
      monitorRssBytes: rss(ppid(limited.pid)),
      initRssBytes: rss(limited.pid),
      note: 'cgroup: our pid 1 (init) + sleep + the tmpfs upper layer; monitor: the vtc-runtime process outside the sandbox',
    });
  }
  for (const tool of ['crun', 'runc'] as ExecTool[]) {
    if (!execTools.includes(`${tool}-exec`)) continue;
    const r = await driverFor.get(`${tool}-exec`)!.request({ op: 'mem', tool });
    if (r.ok) memory.push({ tool, sandbox: r.mem, note: `cgroup: sleep (as the container's pid 1); no monitor process after \`${tool} run --detach\`` });
  }
  for (const c of running) await c.stop({ timeout: 1000 });
  for (const tool of ['crun', 'runc'] as ExecTool[]) {
    if (execTools.includes(`${tool}-exec`)) await driverFor.get(`${tool}-exec`)!.request({ op: 'exec-teardown', tool });
  }
} finally {
  problems = await cleanup();
}

// ---------- report ----------

const loadAfter = loadavg();
const summaries = new Map<string, Summary>([...lifecycleSamples].map(([t, xs]) => [t, summarize(defined(xs))]));
const execSummaries = new Map<string, Summary>([...execSamples].map(([t, xs]) => [t, summarize(defined(xs))]));
const ours = summaries.get('ours');
const lines: string[] = [];
const out = (s = ''): void => void lines.push(s);
const date = new Date().toISOString().slice(0, 10);

out(`# Sandbox runtime benchmark, ${date}`);
out();
out(`Host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${versions.kernel}, ${versions.node}; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')} before, ${loadAfter.map((x) => x.toFixed(2)).join(' ')} after (other work was running).`);
out(`Versions: ${['crun', 'runc', 'bwrap', 'podman'].filter((t) => versions[t]).map((t) => `${versions[t]}`).join('; ')}.`);
out(`Rootfs: static busybox tree (${ROOTFS.replace(work, '<tmp>')}), read-only lower layer for everyone. Limits: memory 64 MiB (no swap), 0.5 CPU, 64 pids (bwrap: none).`);
out(`Method: ${ROUNDS} rounds after ${WARMUP} warm-up rounds, contenders interleaved in rounds (a fresh random order each round, seed ${SEED})${summaries.has('podman') ? `, podman in every ${PODMAN_EVERY === 1 ? '' : `${PODMAN_EVERY}th `}round` : ''}; wall time per iteration; ${((performance.now() - wallStart) / 1000).toFixed(0)} s in all.`);
out();
out('## Lifecycle: start, /bin/true, wait, tear down');
out();
const rssOf = (key: string): string => mib(summarize(spawnerRss.get(key) ?? []).p50);
out('| contender | n | p50 ms | p90 ms | mean ms | min ms | ours/it (p50) | ours/it (mean) | ours/it (paired) | spawner RSS MiB |');
out('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const [tool, s] of summaries) {
  const own = tool === 'ours';
  out(`| ${tool} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.mean)} | ${ms(s.min)} | ${own ? '' : ratio(ours?.p50 ?? NaN, s.p50)} | ${own ? '' : ratio(ours?.mean ?? NaN, s.mean)} | ${own ? '' : pairedRatio(lifecycleSamples, 'ours', tool)} | ${rssOf(tool)} |`);
}
out();
out('"paired": ours/peer from the same round, median (p25–p75) over rounds (robust to load that comes and goes). "spawner RSS": median RSS of the Node process that spawned the contender (ours: the bench process; peers: their driver), since fork() cost grows with it.');
out();
for (const [tool, what] of Object.entries(DESCRIPTIONS)) if (summaries.has(tool)) out(`- **${tool}**: ${what}${setupInfo.get(tool) ? `; ${setupInfo.get(tool)}` : ''}`);
if (execSummaries.size) {
  out();
  out('## Exec into a running sandbox: /bin/true');
  out();
  out('| contender | n | p50 ms | p90 ms | mean ms | min ms | ours-limits/it (p50) | spawner RSS MiB |');
  out('|---|---:|---:|---:|---:|---:|---:|---:|');
  const oursLimitsExec = execSummaries.get('ours-limits');
  for (const [tool, s] of execSummaries) {
    out(`| ${tool} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.mean)} | ${ms(s.min)} | ${tool.startsWith('ours') ? '' : ratio(oursLimitsExec?.p50 ?? NaN, s.p50)} | ${rssOf(`exec:${tool}`)} |`);
  }
  out();
  out('- **ours**: `c.exec(["/bin/true"])` on `startContainer({ image, cmd: ["/bin/sleep", "1000"] })` (no limits; the sandbox still has its cgroups, for stats and cleanup, and exec joins them)');
  out('- **ours-limits**: the same on a sandbox with the lifecycle\'s limits');
  for (const t of ['crun-exec', 'runc-exec']) if (setupInfo.has(t)) out(`- **${t}**: ${setupInfo.get(t)}`);
}
const idle = (samples: Samples, ours: string): void => {
  const sums = new Map([...samples].map(([t, xs]) => [t, summarize(defined(xs))] as const));
  const base = sums.get(ours);
  out(`| contender | n | p50 ms | p90 ms | mean ms | ${ours}/it (p50) | ${ours}/it (paired) |`);
  out('|---|---:|---:|---:|---:|---:|---:|');
  for (const [tool, s] of sums) {
    const own = tool === ours;
    out(`| ${tool} | ${s.n} | ${ms(s.p50)} | ${ms(s.p90)} | ${ms(s.mean)} | ${own ? '' : ratio(base?.p50 ?? NaN, s.p50)} | ${own ? '' : pairedRatio(samples, ours, tool)} |`);
  }
};
if (idleLifecycleSamples.size || idleExecSamples.size) {
  out();
  out(`## The same after ${IDLE_MS} ms of idleness (sporadic use: one sandbox now and then)`);
  out();
  out(`Each iteration waits ${IDLE_MS} ms first, so nothing else has just moved a task between cgroups; ${IDLE_ROUNDS} rounds, random order.`);
  if (idleLifecycleSamples.size) {
    out();
    out('Lifecycle:');
    out();
    idle(idleLifecycleSamples, 'ours');
  }
  if (idleExecSamples.size) {
    out();
    out('Exec:');
    out();
    idle(idleExecSamples, 'ours-limits');
  }
}
if (memory.length) {
  out();
  out('## Memory of a sleeping sandbox (/bin/sleep, limits on)');
  out();
  out('| contender | cgroup usage MiB | cgroup max usage MiB | processes in cgroup | host-side monitor RSS MiB | sandbox pid 1 RSS MiB |');
  out('|---|---:|---:|---:|---:|---:|');
  for (const m of memory) out(`| ${m.tool} | ${mib(m.sandbox?.usageBytes)} | ${mib(m.sandbox?.maxUsageBytes)} | ${m.sandbox?.processes ?? '–'} | ${mib(m.monitorRssBytes)} | ${mib(m.initRssBytes)} |`);
  out();
  for (const m of memory) if (m.note) out(`- ${m.tool}: ${m.note}`);
}
out();
out('## Targets (issue 2)');
out();
const check = (okay: boolean | undefined): string => (okay === undefined ? 'n/a' : okay ? 'met' : 'missed');
const crunP50 = summaries.get('crun')?.p50, bwrapP50 = summaries.get('bwrap')?.p50, execP50 = execSummaries.get('ours')?.p50;
const idleOurs = summarize(defined(idleLifecycleSamples.get('ours'))), idleExec = summarize(defined(idleExecSamples.get('ours')));
out(`- ours p50 ≤ 6 ms: ${ms(ours?.p50 ?? NaN)} ms, ${check(ours ? ours.p50 <= 6 : undefined)}`);
out(`- ours ≤ 0.35× crun (p50): ${ratio(ours?.p50 ?? NaN, crunP50 ?? NaN)}, ${check(ours && crunP50 ? ours.p50 / crunP50 <= 0.35 : undefined)}`);
out(`- ours ≤ 1.6× bwrap (p50): ${ratio(ours?.p50 ?? NaN, bwrapP50 ?? NaN)}, ${check(ours && bwrapP50 ? ours.p50 / bwrapP50 <= 1.6 : undefined)}`);
out(`- exec p50 ≤ 3 ms: ${ms(execP50 ?? NaN)} ms, ${check(execP50 !== undefined && Number.isFinite(execP50) ? execP50 <= 3 : undefined)}`);
if (idleOurs.n) out(`- after ${IDLE_MS} ms idle: lifecycle p50 ${ms(idleOurs.p50)} ms, exec p50 ${ms(idleExec.p50)} ms`);
if (skipped.size || notes.length || problems.length) {
  out();
  out('## Not measured, notes, leftovers');
  out();
  for (const [tool, why] of skipped) out(`- **${tool}** not measured: ${why}`);
  for (const n of notes) out(`- ${n}`);
  for (const p of problems) out(`- cleanup problem: ${p}`);
}

const report = lines.join('\n') + '\n';
process.stdout.write(`\n${report}`);
if (WRITE && !interrupted) {
  const dir = join(benchDir, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `runtime-${date}.md`);
  writeFileSync(file, report);
  console.error(`written to ${file}`);
}
if (problems.length) process.exitCode = 1;
