// Pull benchmark: the project's postgres image from a docker-registry on
// loopback, cold cache, in one run, interleaved round by round:
//   ours         resolveImage(ref, { pull: 'always' }) in this process: download, verify, unpack into the layer cache
//   ours (CLI)   `node dist/cli/main.js pull REF` as a fresh process (Node's start included)
//   podman pull  into a fresh containers-storage (overlay), in a private mount namespace
//   skopeo copy  docker://REF -> oci:DIR (downloads and verifies; does not decompress or unpack)
// Then: a warm cache with pull: 'always' (one manifest request) and 'missing'
// (no request), and ours with 1 vs 3 (default) vs 6 layers at a time on an
// image of several similar layers, straight and through a proxy that limits
// each connection to a fixed rate (as a remote registry's CDN does).
//
//   npx node bench/pull.bench.ts [--runs 5] [--warm 200] [--no-write] [--delete-between]
//
// Every pull gets a new empty directory, and none is removed before the end. This VM's root is
// ext4 without a journal, where allocating an inode skips every inode freed in the last 60-360 s
// (recently_deleted(), a buffer lookup each): emptying the last round's directory (~2,800 files)
// right before a pull made creating files cost up to 2.5-4 s of sys time instead of ~0.3 s, for
// whichever contender creates files (ours, podman). --delete-between does that again, as the runs
// before 2026-12-03's last one did.
//
// Needs root (podman), docker-registry, skopeo, podman; builds postgres with rootfs/ when missing.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { ensureImage, setQuiet } from '../rootfs/index.ts';
import { resolveImage } from '../src/image/index.ts';
import { launchRegistry } from '../test/helpers/registry-process.ts';

const bench = dirname(fileURLToPath(import.meta.url));
const repo = dirname(bench);
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const RUNS = Number(arg('runs', '5'));
const WARM = Number(arg('warm', '200'));
const WRITE = !process.argv.includes('--no-write');
const DELETE_BETWEEN = process.argv.includes('--delete-between');

if (process.getuid?.() !== 0) {
  console.error('pull.bench.ts needs root (podman pull into a private storage, in a private mount namespace).');
  process.exit(2);
}
for (const tool of ['docker-registry', 'skopeo', 'podman', 'unshare']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`pull.bench.ts needs ${tool}: apt-get install -y docker-registry skopeo podman`);
    process.exit(2);
  }
}

const work = mkdtempSync(join(tmpdir(), 'vtc-pull-bench-'));
let made = 0;
/** An empty directory: a new one each time (see the top), or with --delete-between the same one emptied. */
const fresh = (name: string): string => {
  const dir = join(work, DELETE_BETWEEN ? name : `${name}-${made++}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
async function time(fn: () => Promise<unknown>): Promise<number> {
  // wall-clock ms
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

setQuiet(true);
const postgres = await ensureImage('postgres');
mkdirSync(join(work, 'registry'));
const registry = await launchRegistry(join(work, 'registry'));
const lines: string[] = [];
const say = (line = ''): void => {
  console.log(line);
  lines.push(line);
};

try {
  const ref = `${registry.host}/bench/postgres:15`;
  await execa('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${postgres.layout}:${postgres.tag}`, `docker://${ref}`]);
  const manifest = JSON.parse(readFileSync(join(postgres.layout, 'blobs/sha256', postgres.manifestDigest.slice(7)), 'utf8')) as { layers: { size: number }[] };
  const compressed = manifest.layers.reduce((a, l) => a + l.size, 0);

  const podmanArgs = (dir: string): string[] => ['--root', `${dir}/storage`, '--runroot', `${dir}/run`, '--tmpdir', `${dir}/tmp`,
    '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  /** CPU ms: user + sys, and sys alone (the kernel's part: creating files, copying data into the page cache). */
  type Cpu = { total: number; sys: number };
  /** A child's CPU time (its own children included) through GNU time. */
  const timed = async (cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<Cpu> => {
    const out = join(work, 'cpu-time');
    await execa('/usr/bin/time', ['-f', '%U %S', '-o', out, cmd, ...args], { env });
    const [user = 0, sys = 0] = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { total: (user + sys) * 1000, sys: sys * 1000 };
  };
  const contenders: Record<string, () => Promise<Cpu>> = {
    ours: async () => {
      const before = process.cpuUsage(); // the whole process: the thread pool's inflating included
      await resolveImage(ref, { cacheDir: fresh('ours'), pull: 'always', progress: false });
      const used = process.cpuUsage(before);
      return { total: (used.user + used.system) / 1000, sys: used.system / 1000 };
    },
    'ours (CLI process)': () => timed(process.execPath, [join(repo, 'dist/cli/main.js'), 'pull', '-q', ref, '--cache-dir', fresh('ours-cli')]),
    // Its overlay driver mounts in its storage: a private mount namespace drops whatever it mounts.
    'podman pull': () => {
      const dir = fresh('podman');
      return timed('unshare', ['-m', '--propagation', 'private', 'podman', ...podmanArgs(dir), 'pull', '-q', '--tls-verify=false', ref],
        { ...process.env, TMPDIR: dir });
    },
    'skopeo copy (no unpack)': () => timed('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${fresh('skopeo')}:15`]),
  };
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  const sys: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  await contenders.ours!(); // the registry's files into the page cache, our modules loaded
  const loadAtStart = loadavg();
  for (let round = 0; round < RUNS; round++) {
    for (const [name, fn] of Object.entries(contenders)) {
      let used: Cpu = { total: 0, sys: 0 };
      samples[name]!.push(await time(async () => {
        used = await fn();
      }));
      cpu[name]!.push(used.total);
      sys[name]!.push(used.sys);
    }
  }
  const ours = median(samples.ours!);
  say(`pull of rootfs/ postgres (${manifest.layers.length} layers, ${(compressed / 1e6).toFixed(1)} MB compressed) from docker-registry ${registry.host}, cold cache; ${RUNS} rounds, interleaved; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}); node ${process.version}`);
  say();
  const oursCpu = median(cpu.ours!);
  const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(' ');
  say(`load average (1, 5, 15 min) at the start: ${load(loadAtStart)}, at the end: ${load(loadavg())} (other work on the machine)`);
  say();
  say(DELETE_BETWEEN
    ? 'each contender\'s directory emptied right before its pull (--delete-between)'
    : 'every pull into a new directory, nothing removed until the end (see the top of pull.bench.ts)');
  say();
  say('| contender | median ms | min ms | max ms | ours ÷ it (wall) | CPU ms (user+sys), median | of which sys | ours ÷ it (CPU) |');
  say('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [name, xs] of Object.entries(samples)) {
    const c = median(cpu[name]!);
    say(`| ${name} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} | ${(ours / median(xs)).toFixed(2)}x | ${c.toFixed(0)} | ${median(sys[name]!).toFixed(0)} | ${(oursCpu / c).toFixed(2)}x |`);
  }

  // Warm cache: what every test file pays.
  const warmCache = fresh('warm');
  await resolveImage(ref, { cacheDir: warmCache, progress: false });
  const warm: Record<string, number[]> = { "pull: 'always' (one manifest request)": [], "pull: 'missing' (no request)": [] };
  for (let i = 0; i < WARM; i++) {
    warm["pull: 'always' (one manifest request)"]!.push(await time(() => resolveImage(ref, { cacheDir: warmCache, pull: 'always', progress: false })));
    warm["pull: 'missing' (no request)"]!.push(await time(() => resolveImage(ref, { cacheDir: warmCache, progress: false })));
  }
  say();
  say(`warm cache, ${WARM} calls each, in one process:`);
  say();
  say('| call | p50 ms | p90 ms | max ms |');
  say('|---|---:|---:|---:|');
  for (const [name, xs] of Object.entries(warm)) say(`| ${name} | ${median(xs).toFixed(2)} | ${pct(xs, 0.9).toFixed(2)} | ${Math.max(...xs).toFixed(2)} |`);

  // Several similar layers: does fetching them side by side matter?
  const multiRef = `${registry.host}/bench/six:1`;
  const layers = await pushSixLayers(multiRef);
  const limited = await rateLimitedProxy(registry.host, 20 * 1024 * 1024);
  const parallel: Record<string, number[]> = {};
  for (let round = 0; round < RUNS; round++) {
    for (const n of [1, 3, 6]) {
      for (const [via, host] of [['loopback', registry.host], ['20 MiB/s per connection', limited.host]] as const) {
        const key = `${via}, ${n} at a time`;
        (parallel[key] ??= []).push(await time(() => resolveImage(`${host}/bench/six:1`, { cacheDir: fresh('par'), pull: 'always', progress: false, parallel: n })));
      }
    }
  }
  limited.close();
  say();
  say(`${layers.count} layers of ${(layers.bytes / layers.count / 1e6).toFixed(1)} MB compressed each (${multiRef}), cold cache, ${RUNS} rounds:`);
  say();
  say('| layers at once | median ms | vs 1 at a time |');
  say('|---|---:|---:|');
  for (const via of ['loopback', '20 MiB/s per connection']) {
    const one = median(parallel[`${via}, 1 at a time`]!);
    for (const n of [1, 3, 6]) {
      const m = median(parallel[`${via}, ${n} at a time`]!);
      say(`| ${via}, ${n}${n === 3 ? ' (default)' : ''} | ${m.toFixed(0)} | ${(one / m).toFixed(2)}x faster |`);
    }
  }

  if (WRITE) {
    const date = new Date().toISOString().slice(0, 10);
    mkdirSync(join(bench, 'results'), { recursive: true });
    writeFileSync(join(bench, 'results', `pull-${date}.md`), `# pull.bench.ts, ${date}\n\n${lines.join('\n')}\n`);
    console.log(`\nwritten to bench/results/pull-${date}.md`);
  }
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}

/** Six layers of ~7 MB compressed each. */
async function pushSixLayers(ref: string): Promise<{ count: number; bytes: number }> {
  const dir = fresh('six-layout');
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (data: Buffer, mediaType: string): { mediaType: string; digest: string; size: number } => {
    const hex = createHash('sha256').update(data).digest('hex');
    writeFileSync(join(dir, 'blobs/sha256', hex), data);
    return { mediaType, digest: `sha256:${hex}`, size: data.length };
  };
  const descriptors = [];
  const diffIds = [];
  let bytes = 0;
  for (let i = 0; i < 6; i++) {
    // Hex text: compresses about 2:1, like binaries and data files do; different in every layer.
    const text = randomBytes(6 << 20).toString('hex');
    const src = fresh(`six-src-${i}`);
    writeFileSync(join(src, `data-${i}.txt`), text);
    const tar = spawnSync('tar', ['-C', src, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 }).stdout;
    const gz = gzipSync(tar, { level: 6 });
    bytes += gz.length;
    descriptors.push(put(gz, 'application/vnd.oci.image.layer.v1.tar+gzip'));
    diffIds.push(`sha256:${createHash('sha256').update(tar).digest('hex')}`);
  }
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: diffIds } })), 'application/vnd.oci.image.config.v1+json');
  const manifest = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: descriptors })), 'application/vnd.oci.image.manifest.v1+json');
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': '1' } }] }));
  await execa('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${dir}:1`, `docker://${ref}`]);
  return { count: 6, bytes };
}

/** Forwards to the registry; every response body is paced to `rate` bytes per second per connection. */
async function rateLimitedProxy(target: string, rate: number): Promise<{ host: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const up = http.request(`http://${target}${req.url}`, { method: req.method, headers: { ...req.headers, host: target } }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      const started = Date.now();
      let sent = 0;
      answer.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        res.write(chunk);
        const ahead = (sent / rate) * 1000 - (Date.now() - started);
        if (ahead > 5) {
          answer.pause();
          setTimeout(() => answer.resume(), ahead);
        }
      });
      answer.on('end', () => res.end());
    });
    req.pipe(up);
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => { server.closeAllConnections(); server.close(); } };
}
