// Forwarded ports against a direct loopback connection: the same small Node
// TCP server runs once on host loopback and once inside a sandbox (image 'host',
// `ports: [7000]`, reached at container.endpoint(7000)), and the same client in this
// process measures, interleaved:
//   (a) throughput of a one-way stream (default 1 GiB) into a sink, MB/s
//   (b) connection setup + 1-byte round trip + close, p50/p99 over N connections
//   (c) 1-byte request/response on one persistent connection, p50/p99 over N round trips
// and the CPU time the sandbox's pid 1 (the relay, native/forward.c) spends.
//
//   node_modules/node/bin/node bench/ports.bench.ts [--gib 1] [--stream-rounds 5]
//       [--connections 2000] [--round-trips 20000] [--no-write]
//
// All traffic stays on 127.0.0.1. Needs root (or working rootless sandboxes) and
// native/build/vtc-runtime (npm run build:native).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startContainer, type Container } from '../src/runtime/index.ts';

const benchDir = dirname(fileURLToPath(import.meta.url));

const argv = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
}
const STREAM_BYTES = Math.round(Number(arg('gib', '1')) * 1024 ** 3);
const STREAM_ROUNDS = Number(arg('stream-rounds', '5'));
const CONNECTIONS = Number(arg('connections', '2000'));
const ROUND_TRIPS = Number(arg('round-trips', '20000'));
const BLOCK = 100; // connections / round trips per interleaved block
const WRITE = !argv.includes('--no-write');
const CONTAINER_PORT = 7000;

// ---------- the server (same code direct and in the sandbox) ----------

// First byte of a connection picks the mode: 'S' sink (count bytes until EOF, answer the
// count as 8 bytes), anything else echo.
const SERVER = `
const net = require('node:net');
const server = net.createServer({ noDelay: true }, (s) => {
  let mode, count = 0;
  s.on('data', (d) => {
    if (mode === undefined) { mode = d[0]; d = d.subarray(1); }
    if (mode === 83) count += d.length;
    else if (d.length) s.write(d);
  });
  s.on('end', () => {
    if (mode === 83) { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(count)); s.end(b); }
    else s.end();
  });
  s.on('error', () => {});
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening ' + server.address().port));
process.on('SIGTERM', () => process.exit(0));
`;

interface Target { name: 'direct' | 'forwarded'; host: string; port: number; relayPid?: number }

async function startDirect(): Promise<{ target: Target; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ['-e', SERVER], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`direct server exited with ${code}`)));
  });
  return { target: { name: 'direct', host: '127.0.0.1', port }, proc };
}

const cgroupParent = `/vtc-bench-ports-${process.pid}`;
async function startForwarded(): Promise<{ target: Target; box: Container }> {
  const box = await startContainer({
    image: 'host',
    cmd: [process.execPath, '-e', SERVER],
    env: { PORT: String(CONTAINER_PORT) },
    ports: [CONTAINER_PORT],
    waitFor: { log: 'listening' },
    cgroupParent,
    timeout: 30_000,
  });
  const { host, port } = box.endpoint(CONTAINER_PORT);
  return { target: { name: 'forwarded', host, port, relayPid: box.pid }, box };
}

// ---------- helpers ----------

function open(t: Target): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: t.host, port: t.port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
interface Lat { n: number; p50: number; p90: number; p99: number; mean: number; max: number }
function lat(xs: number[]): Lat {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / (s.length || 1), max: s[s.length - 1] ?? NaN };
}
const us = (ms: number): string => (ms * 1000).toFixed(0);

// ---------- (a) throughput ----------

const CHUNK = Buffer.alloc(1024 * 1024, 0x61);

async function stream(t: Target, bytes: number): Promise<{ mbps: number; seconds: number; relayCpu: number }> {
  const s = await open(t);
  const cpu0 = cpuSeconds(t.relayPid);
  const reply: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    s.on('data', (c: Buffer) => reply.push(c));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  const start = performance.now();
  s.write('S');
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(CHUNK.length, bytes - sent);
    sent += n;
    if (!s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  await done;
  const seconds = (performance.now() - start) / 1000;
  const got = Buffer.concat(reply);
  if (got.length !== 8 || Number(got.readBigUInt64BE()) !== bytes) throw new Error(`${t.name}: the sink counted ${got.length === 8 ? got.readBigUInt64BE() : `(${got.length}-byte reply)`}, sent ${bytes}`);
  s.destroy();
  return { mbps: bytes / seconds / 1e6, seconds, relayCpu: cpuSeconds(t.relayPid) - cpu0 };
}

// ---------- (b) connect + 1-byte round trip ----------

async function connectRoundTrip(t: Target): Promise<number> {
  const start = performance.now();
  const s = connect({ host: t.host, port: t.port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => s.write('Ex'));
    s.once('data', () => resolve());
    s.once('error', reject);
    s.once('end', () => reject(new Error(`${t.name}: closed before the reply`)));
  });
  const ms = performance.now() - start;
  s.destroy();
  return ms;
}

// ---------- (c) round trips on one connection ----------

async function persistent(t: Target): Promise<{ socket: Socket; rtt: () => Promise<number> }> {
  const s = await open(t);
  let waiting: (() => void) | undefined;
  s.on('data', () => { const w = waiting; waiting = undefined; w?.(); });
  s.write('E');
  const byte = Buffer.from('x');
  return {
    socket: s,
    rtt: () => new Promise<number>((resolve) => {
      const start = performance.now();
      waiting = () => resolve(performance.now() - start);
      s.write(byte);
    }),
  };
}

// ---------- main ----------

const date = new Date().toISOString().slice(0, 10);
const load0 = loadavg();
console.log(`ports bench: ${STREAM_ROUNDS} × ${(STREAM_BYTES / 1024 ** 3).toFixed(2)} GiB per side, ${CONNECTIONS} connections, ${ROUND_TRIPS} round trips per side`);
console.log(`host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, Node ${process.version}, load ${load0.map((l) => l.toFixed(2)).join(' ')}`);

const direct = await startDirect();
let forwarded: Awaited<ReturnType<typeof startForwarded>> | undefined;
const results = {
  stream: { direct: [] as { mbps: number; seconds: number; relayCpu: number }[], forwarded: [] as { mbps: number; seconds: number; relayCpu: number }[] },
  connect: { direct: [] as number[], forwarded: [] as number[] },
  rtt: { direct: [] as number[], forwarded: [] as number[] },
};
try {
  forwarded = await startForwarded();
  const targets = [direct.target, forwarded.target];
  console.log(`direct 127.0.0.1:${direct.target.port}, forwarded 127.0.0.1:${forwarded.target.port} → sandbox :${CONTAINER_PORT} (pid 1 = host pid ${forwarded.box.pid})`);

  // Warm up both paths (JIT, page cache, TCP).
  for (const t of targets) {
    await stream(t, 64 * 1024 * 1024);
    for (let i = 0; i < 50; i++) await connectRoundTrip(t);
  }

  // (a) alternate which side goes first each round
  for (let r = 0; r < STREAM_ROUNDS; r++) {
    for (const t of r % 2 ? [...targets].reverse() : targets) {
      const res = await stream(t, STREAM_BYTES);
      results.stream[t.name].push(res);
      console.log(`stream round ${r + 1}/${STREAM_ROUNDS} ${t.name}: ${res.mbps.toFixed(0)} MB/s (${res.seconds.toFixed(2)} s${t.relayPid ? `, relay CPU ${res.relayCpu.toFixed(2)} s` : ''})`);
    }
  }

  // (b) blocks of BLOCK connections, alternating
  for (let done = 0, b = 0; done < CONNECTIONS; done += BLOCK, b++) {
    const n = Math.min(BLOCK, CONNECTIONS - done);
    for (const t of b % 2 ? [...targets].reverse() : targets) for (let i = 0; i < n; i++) results.connect[t.name].push(await connectRoundTrip(t));
  }
  console.log(`connect+rtt: direct p50 ${us(lat(results.connect.direct).p50)} µs, forwarded p50 ${us(lat(results.connect.forwarded).p50)} µs`);

  // (c) two persistent connections, blocks of BLOCK round trips, alternating
  const conns = { direct: await persistent(direct.target), forwarded: await persistent(forwarded.target) };
  for (let i = 0; i < 200; i++) { await conns.direct.rtt(); await conns.forwarded.rtt(); }
  const cpu0 = cpuSeconds(forwarded.target.relayPid);
  for (let done = 0, b = 0; done < ROUND_TRIPS; done += BLOCK, b++) {
    const n = Math.min(BLOCK, ROUND_TRIPS - done);
    for (const name of b % 2 ? (['forwarded', 'direct'] as const) : (['direct', 'forwarded'] as const)) {
      for (let i = 0; i < n; i++) results.rtt[name].push(await conns[name].rtt());
    }
  }
  const rttRelayCpu = cpuSeconds(forwarded.target.relayPid) - cpu0;
  console.log(`round trip: direct p50 ${us(lat(results.rtt.direct).p50)} µs, forwarded p50 ${us(lat(results.rtt.forwarded).p50)} µs (relay CPU ${(rttRelayCpu * 1e6 / ROUND_TRIPS).toFixed(1)} µs per round trip)`);
  conns.direct.socket.destroy();
  conns.forwarded.socket.destroy();

  // ---------- report ----------
  const load1 = loadavg();
  const med = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);
  const sd = results.stream.direct.map((r) => r.mbps), sf = results.stream.forwarded.map((r) => r.mbps);
  const cd = lat(results.connect.direct), cf = lat(results.connect.forwarded);
  const rd = lat(results.rtt.direct), rf = lat(results.rtt.forwarded);
  const relayCpuPerGiB = med(results.stream.forwarded.map((r) => r.relayCpu)) / (STREAM_BYTES / 1024 ** 3);
  const out: string[] = [];
  out.push(`# Forwarded port benchmark — ${date}`, '',
    `The same Node TCP server (sink / echo, in its own process) on host loopback ("direct") and inside a sandbox`,
    `(image 'host', \`ports: [${CONTAINER_PORT}]\`, reached at \`container.endpoint(${CONTAINER_PORT})\`: the sandbox's pid 1 relays`,
    `127.0.0.1:<hostPort> → the sandbox's own 127.0.0.1:${CONTAINER_PORT}, native/forward.c). Client: this Node process, TCP_NODELAY.`,
    `Direct and forwarded interleaved (alternating rounds / blocks of ${BLOCK}). Host: ${cpus().length} × ${cpus()[0]?.model ?? '?'},`,
    `Linux ${release()}, Node ${process.version}; load average ${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end (shared machine).`, '',
    `## (a) One-way stream, ${(STREAM_BYTES / 1024 ** 3).toFixed(2)} GiB × ${STREAM_ROUNDS} per side (1 MiB writes)`, '',
    '| path | median MB/s | min | max | all rounds |', '|---|---:|---:|---:|---|',
    `| direct | ${med(sd).toFixed(0)} | ${Math.min(...sd).toFixed(0)} | ${Math.max(...sd).toFixed(0)} | ${sd.map((x) => x.toFixed(0)).join(', ')} |`,
    `| forwarded | ${med(sf).toFixed(0)} | ${Math.min(...sf).toFixed(0)} | ${Math.max(...sf).toFixed(0)} | ${sf.map((x) => x.toFixed(0)).join(', ')} |`,
    '', `forwarded / direct throughput: **${(med(sf) / med(sd)).toFixed(2)}** (medians). Relay (pid 1) CPU: ${relayCpuPerGiB.toFixed(2)} s per GiB.`, '',
    `## (b) Connect + 1-byte round trip + close, ${CONNECTIONS} connections per side (sequential)`, '',
    '| path | p50 µs | p90 µs | p99 µs | mean µs | max µs |', '|---|---:|---:|---:|---:|---:|',
    `| direct | ${us(cd.p50)} | ${us(cd.p90)} | ${us(cd.p99)} | ${us(cd.mean)} | ${us(cd.max)} |`,
    `| forwarded | ${us(cf.p50)} | ${us(cf.p90)} | ${us(cf.p99)} | ${us(cf.mean)} | ${us(cf.max)} |`,
    '', `forwarded / direct: p50 **${(cf.p50 / cd.p50).toFixed(2)}**, p99 **${(cf.p99 / cd.p99).toFixed(2)}**; added p50 ${us(cf.p50 - cd.p50)} µs.`, '',
    `## (c) 1-byte request/response on one persistent connection, ${ROUND_TRIPS} round trips per side`, '',
    '| path | p50 µs | p90 µs | p99 µs | mean µs | max µs |', '|---|---:|---:|---:|---:|---:|',
    `| direct | ${us(rd.p50)} | ${us(rd.p90)} | ${us(rd.p99)} | ${us(rd.mean)} | ${us(rd.max)} |`,
    `| forwarded | ${us(rf.p50)} | ${us(rf.p90)} | ${us(rf.p99)} | ${us(rf.mean)} | ${us(rf.max)} |`,
    '', `forwarded / direct: p50 **${(rf.p50 / rd.p50).toFixed(2)}**, p99 **${(rf.p99 / rd.p99).toFixed(2)}**; added p50 ${us(rf.p50 - rd.p50)} µs. Relay CPU ${(rttRelayCpu * 1e6 / ROUND_TRIPS).toFixed(1)} µs per round trip.`, '');
  const text = out.join('\n');
  console.log(`\n${text}`);
  if (WRITE) {
    mkdirSync(join(benchDir, 'results'), { recursive: true });
    const file = join(benchDir, 'results', `ports-${date}.md`);
    writeFileSync(file, text);
    writeFileSync(join(benchDir, 'results', `ports-${date}.json`), JSON.stringify({ date, streamBytes: STREAM_BYTES, load: [load0, load1], stream: results.stream, connect: { direct: cd, forwarded: cf }, rtt: { direct: rd, forwarded: rf }, rttRelayCpuSeconds: rttRelayCpu }, null, 1));
    console.log(`\nwritten: ${file}`);
  }
} finally {
  direct.proc.kill('SIGTERM');
  if (forwarded) await forwarded.box.stop({ timeout: 2000 });
  // The per-run cgroup parent, once empty.
  for (const root of ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'].map((c) => `/sys/fs/cgroup/${c}`).concat('/sys/fs/cgroup')) {
    const dir = join(root, cgroupParent);
    if (!existsSync(dir)) continue;
    if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) console.error(`cgroups left under ${dir}`);
    else try { rmdirSync(dir); } catch { /* v2 parents go once empty */ }
  }
}
