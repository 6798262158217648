// A peers' driver: runs crun, runc, bwrap and podman for the bench, one
// request at a time, and times each lifecycle itself (same clock, same Node
// child_process.spawn as our runtime's own monitor spawn).
//
// Started by the bench as
//   unshare --mount --propagation private --kill-child node driver.ts OPTIONS_JSON
// so every mount it makes (the per-iteration tmpfs + overlay, the tmpfs over
// /sys/fs/cgroup/unified for crun, podman's storage) lives only in its own
// mount namespace and dies with it. It exits when its stdin closes.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseSpec, peerSpec, type Limits } from './oci.ts';
import type { DriverOptions, ExecTool, MemoryInfo, PeerTool, Reply, Request } from './protocol.ts';
import { becomeSubreaper, mount, MS_NODEV, MS_NOSUID, umount } from './sys.ts';

const options = JSON.parse(process.argv[2] ?? '{}') as DriverOptions;
const { work, rootfs } = options;
const limits: Limits = { memoryBytes: options.memoryBytes, cpus: options.cpus, pids: options.pids };
const CGROUP = '/vtc-bench';
const PODMAN_IMAGE = 'localhost/vtc-bench-busybox:latest';

interface Done { code: number | null; signal: NodeJS.Signals | null; output: string }

/** spawn + wait for 'close' (exit and stdio drained), as our runtime waits for its monitor. */
function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, detached = false): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: detached ? 'ignore' : ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    const out: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, output: Buffer.concat(out).toString('utf8').trim() }));
  });
}

async function ok(cmd: string, args: string[], env?: NodeJS.ProcessEnv, detached = false): Promise<void> {
  const r = await run(cmd, args, env, detached);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} → exit ${r.code ?? r.signal}: ${r.output.slice(-1500)}`);
}

/** A fresh writable layer: a tmpfs holding upper+work, and the overlay of the shared rootfs on target. */
function mountLayer(layer: string, target: string): void {
  mount('vtcb-layer', layer, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0700');
  mkdirSync(join(layer, 'upper'));
  mkdirSync(join(layer, 'work'));
  mount('overlay', target, 'overlay', 0, `lowerdir=${rootfs},upperdir=${layer}/upper,workdir=${layer}/work`);
}

function unmountLayer(layer: string, target: string): void {
  umount(target);
  umount(layer);
}

// ---------- the namespace's own setup ----------

function prepareNamespace(): void {
  becomeSubreaper();
  if (options.noUnified) {
    // crun 1.8 refuses hybrid hosts; with the cgroup2 mount gone it runs as on a pure v1 host.
    // It also writes <cgroupsPath>/cgroup.procs below every directory of /sys/fs/cgroup, so
    // the directory left behind gets a throwaway tmpfs instead of the host's own tmpfs.
    umount('/sys/fs/cgroup/unified');
    mount('vtcb-nounified', '/sys/fs/cgroup/unified', 'tmpfs', MS_NOSUID | MS_NODEV, 'size=1m,mode=0755');
  }
  if (options.privateState) {
    // podman keeps state in /run/containers, /run/libpod, /run/crun, and a blob cache in
    // /var/lib/containers even with --root/--runroot: here they are a fresh tmpfs.
    for (const dir of ['/run', '/var/lib/containers']) {
      mkdirSync(dir, { recursive: true });
      mount('vtcb-state', dir, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0755');
    }
  }
}

// ---------- lifecycle contenders ----------

interface Contender { setup(): Promise<string>; run(i: number): Promise<void>; teardown(): Promise<void> }

function ociRuntime(tool: 'crun' | 'runc'): Contender {
  const dir = join(work, tool);
  const bundle = join(dir, 'bundle'), layer = join(dir, 'layer'), state = join(dir, 'state');
  let base: Record<string, unknown> = {};
  return {
    async setup() {
      for (const d of [join(bundle, 'rootfs'), layer, state]) mkdirSync(d, { recursive: true });
      const b = baseSpec(['crun', 'runc']);
      base = b.spec;
      return `config from \`${b.from}\``;
    },
    async run(i) {
      mountLayer(layer, join(bundle, 'rootfs'));
      try {
        writeFileSync(join(bundle, 'config.json'), JSON.stringify(peerSpec(base, ['/bin/true'], `${CGROUP}/${tool}-${i}`, limits)));
        await ok(tool, ['--root', state, 'run', '--bundle', bundle, `vtcb-${tool}-${i}`]);
      } finally {
        unmountLayer(layer, join(bundle, 'rootfs'));
      }
    },
    async teardown() {},
  };
}

function bwrap(overlay: boolean): Contender {
  const dir = join(work, overlay ? 'bwrap-ovl' : 'bwrap');
  const merged = join(dir, 'merged'), layer = join(dir, 'layer');
  const args = (root: string): string[] => [
    '--unshare-all', '--die-with-parent', overlay ? '--bind' : '--ro-bind', root, '/',
    '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '/bin/true',
  ];
  return {
    async setup() {
      mkdirSync(merged, { recursive: true });
      mkdirSync(layer, { recursive: true });
      return overlay ? 'tmpfs+overlay mounted by the bench, --bind as /' : '--ro-bind of the rootfs as /';
    },
    async run() {
      if (!overlay) return ok('bwrap', args(rootfs));
      mountLayer(layer, merged);
      try {
        await ok('bwrap', args(merged));
      } finally {
        unmountLayer(layer, merged);
      }
    },
    async teardown() {},
  };
}

function podman(): Contender {
  const dir = join(work, 'podman');
  const env = { ...process.env, TMPDIR: join(dir, 'tmp') };
  let ulimits: string[] = [];
  const global = [
    '--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'libpod-tmp'),
    '--network-config-dir', join(dir, 'networks'), '--storage-driver', 'overlay',
    '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
  ];
  return {
    async setup() {
      for (const d of ['tmp', 'networks']) mkdirSync(join(dir, d), { recursive: true });
      // As root, podman raises RLIMIT_NOFILE and RLIMIT_NPROC to the kernel's maximum (1048576,
      // 4194304). Root on this host lacks CAP_SYS_RESOURCE, so crun's setrlimit fails with EPERM;
      // neither --ulimit host nor the host's own hard limits get through (tried), lower ones do:
      // 1024 open files (what `crun spec` sets) and 1024 processes (the sandbox runs one).
      ulimits = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
      const tar = join(dir, 'rootfs.tar');
      await ok('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.']);
      await ok('podman', [...global, 'import', '--quiet', tar, PODMAN_IMAGE], env);
      const info = await run('podman', [...global, 'info', '--format', '{{.Host.OCIRuntime.Name}} {{.Host.CgroupsVersion}} {{.Host.CgroupManager}}'], env);
      const [runtime = '?', cg = '?', mgr = '?'] = info.output.split(/\s+/);
      return `image imported from a tar of the rootfs; OCI runtime ${runtime}, cgroups ${cg} (${mgr})`;
    },
    async run() {
      await ok('podman', [...global, 'run', '--rm', '--network', 'none', '--memory', String(limits.memoryBytes), '--cpus', String(limits.cpus),
        '--pids-limit', String(limits.pids), ...ulimits, '--cgroup-parent', `${CGROUP}/podman`, PODMAN_IMAGE, '/bin/true'], env);
    },
    async teardown() {
      await run('podman', [...global, 'rm', '--all', '--force'], env);
      await run('podman', [...global, 'rmi', '--all', '--force'], env);
    },
  };
}

const contenders: Partial<Record<PeerTool, Contender>> = {};
const nodeSpawn: Contender = {
  async setup() { return 'the driver\'s own `child_process.spawn("/bin/true")` until `close`'; },
  async run() { await ok('/bin/true', []); },
  async teardown() {},
};

function contender(tool: PeerTool): Contender {
  return (contenders[tool] ??= tool === 'crun' || tool === 'runc' ? ociRuntime(tool) : tool === 'podman' ? podman()
    : tool === 'node-spawn@driver' ? nodeSpawn : bwrap(tool === 'bwrap-ovl'));
}

// ---------- exec contenders ----------

interface ExecContender { setup(): Promise<string>; exec(): Promise<void>; mem(): MemoryInfo; teardown(): Promise<void> }

function readNumber(file: string): number {
  return Number(readFileSync(file, 'utf8').trim());
}

function ociExec(tool: ExecTool): ExecContender {
  const dir = join(work, `${tool}-exec`);
  const bundle = join(dir, 'bundle'), layer = join(dir, 'layer'), state = join(dir, 'state');
  const id = `vtcb-${tool}-exec`, cgroup = `${CGROUP}/${tool}-exec`;
  let mounted = false, started = false;
  return {
    async setup() {
      for (const d of [join(bundle, 'rootfs'), layer, state]) mkdirSync(d, { recursive: true });
      const b = baseSpec(['crun', 'runc']);
      mountLayer(layer, join(bundle, 'rootfs'));
      mounted = true;
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(peerSpec(b.spec, ['/bin/sleep', '1000'], cgroup, limits)));
      await ok(tool, ['--root', state, 'run', '--detach', '--bundle', bundle, id], undefined, true);
      started = true;
      return `\`${tool} run --detach\` of /bin/sleep 1000 (limits on), then \`${tool} exec ${id} /bin/true\``;
    },
    async exec() {
      await ok(tool, ['--root', state, 'exec', id, '/bin/true']);
    },
    mem() {
      const m = `/sys/fs/cgroup/memory${cgroup}`;
      const procs = readFileSync(`/sys/fs/cgroup/pids${cgroup}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).length;
      return { usageBytes: readNumber(`${m}/memory.usage_in_bytes`), maxUsageBytes: readNumber(`${m}/memory.max_usage_in_bytes`), processes: procs };
    },
    async teardown() {
      if (started) {
        await run(tool, ['--root', state, 'kill', id, 'KILL']);
        for (let i = 0; i < 100; i++) {
          const s = await run(tool, ['--root', state, 'state', id]);
          if (s.code !== 0 || /"status":\s*"stopped"/.test(s.output)) break;
          await sleep(20);
        }
        await run(tool, ['--root', state, 'delete', '--force', id]);
        started = false;
      }
      if (mounted) unmountLayer(layer, join(bundle, 'rootfs'));
      mounted = false;
    },
  };
}

const execContenders: Partial<Record<ExecTool, ExecContender>> = {};
const execContender = (tool: ExecTool): ExecContender => (execContenders[tool] ??= ociExec(tool));

// ---------- orphans ----------

/** Our own descendants that were re-parented to us (detached containers, podman's cleanup processes). */
function orphans(): number[] {
  const self = String(process.pid);
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (ppid === self) found.push(Number(name));
    } catch {
      // gone
    }
  }
  return found;
}

async function teardownAll(): Promise<void> {
  for (const c of Object.values(execContenders)) await c.teardown().catch((e: unknown) => process.stderr.write(`driver: ${String(e)}\n`));
  for (const c of Object.values(contenders)) await c.teardown().catch((e: unknown) => process.stderr.write(`driver: ${String(e)}\n`));
  // Let podman's asynchronous `container cleanup` processes finish, then end whatever is left (by pid).
  for (let i = 0; i < 100 && orphans().length; i++) await sleep(50);
  for (const pid of orphans()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  spawnSync('true'); // give the kernel a beat to reap what was killed
}

// ---------- request loop ----------

const ballast: Buffer[] = [];

async function handle(req: Request): Promise<Reply> {
  const t0 = performance.now();
  switch (req.op) {
    case 'pad': {
      // child_process.spawn forks this process before exec: page tables are copied, so its
      // cost grows with RSS (steeply on this VM). Touched ballast brings the driver to the
      // bench process's size, so both sides pay the same for their spawns.
      while (process.memoryUsage.rss() < req.rssBytes - (1 << 20)) ballast.push(Buffer.alloc(1 << 20, 1));
      return { id: req.id, ok: true, rssBytes: process.memoryUsage.rss() };
    }
    case 'setup': return { id: req.id, ok: true, info: await contender(req.tool).setup() };
    case 'run': {
      const c = contender(req.tool);
      const start = performance.now();
      await c.run(req.i);
      return { id: req.id, ok: true, ms: performance.now() - start, rssBytes: process.memoryUsage.rss() };
    }
    case 'exec-setup': return { id: req.id, ok: true, info: await execContender(req.tool).setup() };
    case 'exec': {
      const c = execContender(req.tool);
      const start = performance.now();
      await c.exec();
      return { id: req.id, ok: true, ms: performance.now() - start, rssBytes: process.memoryUsage.rss() };
    }
    case 'mem': return { id: req.id, ok: true, mem: execContender(req.tool).mem(), ms: performance.now() - t0 };
    case 'exec-teardown': {
      await execContender(req.tool).teardown();
      return { id: req.id, ok: true };
    }
  }
}

prepareNamespace();
const send = (r: Reply | { ready: true }): void => void process.stdout.write(`${JSON.stringify(r)}\n`);
const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  const req = JSON.parse(line) as Request;
  queue = queue.then(async () => {
    try {
      send(await handle(req));
    } catch (err) {
      send({ id: req.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  });
});
lines.on('close', () => {
  void queue.then(teardownAll).finally(() => process.exit(0));
});
send({ ready: true });
