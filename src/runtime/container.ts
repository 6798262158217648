// A running sandbox, as test code sees it.
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { constants as os } from 'node:os';
import { SandboxError, type ContainerError } from '../errors.ts';
import { logger } from '../log.ts';
import type { SandboxCgroup, CgroupStats } from './cgroups/index.ts';
import { commandNotFound, runtimeError, warnNotIdmapped } from './errors-map.ts';
import { removeBundle } from './bundle.ts';
import { pidNamespaceOf } from './reaper.ts';
import { onEvents, type RuntimeEvent } from './events.ts';
import { threadState } from '../thread-state.ts';
import type { RuntimeImage } from './image.ts';
import { consumed, launchRuntime, type RuntimeProcess } from './launch.ts';
import type { NormalizedOptions } from './options.ts';
import type { ProcessSpec, RuntimeSpec } from './spec.ts';
import { commitSandbox, type CommitOptions, type CommitTarget } from './commit.ts';
import { copyFromSandbox, copyToSandbox, type CopySource, type CopyTarget, type CopyToOptions } from './copy.ts';

const log = logger('runtime');

/** Every sandbox this process started and has not torn down yet: test-runner adapters stop leftovers at file end. */
// One set per thread, whichever copy of this module (a test's realm, the environment's) started them.
export const liveContainers: Set<Container> = threadState('live', () => {
  // A process that exits without stopping its sandboxes (process.exit() on Ctrl-C, as Vitest does)
  // still takes them down with it: their monitors see their control socket close and kill them, and
  // this removes their cgroups and bundles, which only we can do. (SIGKILL leaves them to the reaper.)
  // Registered by the first copy loaded: a test runner's environment, on the real process.
  const live = new Set<Container>();
  process.on('exit', () => {
    for (const c of live) c.destroyNow();
  });
  return live;
});
const MAX_LOG_BYTES = 16 * 1024 * 1024;

export interface ExitInfo {
  /** Shell-style: the main process's exit code, or 128 + signal number when a signal ended it. */
  exitCode: number;
  signal: NodeJS.Signals | undefined;
  /** The kernel's OOM killer ended a process of this sandbox (it hit its memory limit). */
  oomKilled: boolean;
}

export interface ExecOptions {
  env?: Record<string, string>;
  workdir?: string;
  user?: string;
  /** Written to the command's standard input, which is then closed. */
  stdin?: string | Uint8Array;
}

export interface ExecResult { exitCode: number; stdout: string; stderr: string }

export interface ExecProcess {
  stdout: Readable;
  stderr: Readable;
  stdin: Writable;
  /** Sends a signal to the command. */
  kill(signal?: NodeJS.Signals): void;
  /** Exit code (shell-style) once the command is done. */
  exited: Promise<number>;
}

export interface ContainerStats {
  memory: { currentBytes: number; peakBytes: number; limitBytes: number | undefined };
  cpu: { usageSeconds: number };
  /** current: the sandbox's processes (its pid 1 not counted); rejectedForks: forks refused at the pids limit. */
  pids: { current: number; rejectedForks: number };
  oomKills: number;
}

export interface ContainerInit {
  id: string;
  hostname: string;
  image: RuntimeImage;
  options: NormalizedOptions;
  spec: RuntimeSpec;
  runDir: string;
  cgroup: SandboxCgroup | undefined;
  rootless: boolean;
  resolveUser: (user: string) => Promise<ProcessSpec['user']>;
  /** The sandbox's monitor, already started (see launch.ts), or a relay of it (see remote). */
  monitor: RuntimeProcess;
  runRoot: string;
  /**
   * Set when another process owns the sandbox (the run's sandbox service, src/service/) and this
   * is its mirror in a test worker: the monitor is a relay, the owner stops it and removes its
   * cgroup and bundle, and this process only uses it (exec, files, ports, logs, stats).
   */
  remote?: RemoteOwner;
  /** A mirror's start: the monitor's events and the sandbox's log until then, as its owner saw them. */
  replay?: { events: RuntimeEvent[]; log: Buffer };
}

/** What a mirror asks of the process that owns its sandbox. */
export interface RemoteOwner {
  /** The owner's stop(): resolves once it asked (the exit arrives through the relay). */
  stop(timeoutMs: number): Promise<void>;
  /** The stats the owner read when the sandbox ended. */
  finalStats(): ContainerStats | undefined;
}

/** Receives, in order, what a sandbox's monitor says: see Container.relay(). */
export interface RelaySink {
  event(e: RuntimeEvent): void;
  log(chunk: Buffer): void;
  closed(stats: ContainerStats | undefined): void;
}

function signalName(n: number | undefined): NodeJS.Signals | undefined {
  if (!n) return undefined;
  return (Object.entries(os.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined);
}

function toStats(s: CgroupStats): ContainerStats {
  return { memory: s.memory, cpu: { usageSeconds: s.cpu.usageMicros / 1e6 }, pids: { current: Math.max(0, s.pids.current - 1), rejectedForks: s.pids.rejectedForks }, oomKills: s.oomKills };
}

export class Container implements AsyncDisposable {
  readonly id: string;
  readonly hostname: string;
  readonly image: RuntimeImage;
  readonly options: NormalizedOptions;
  /** The OCI runtime spec this sandbox was started from. */
  readonly spec: RuntimeSpec;
  /** Host pid of the sandbox's pid 1 (0 until created). */
  pid = 0;

  readonly #init: ContainerInit;
  readonly #monitor: RuntimeProcess;
  readonly #control: Writable;
  readonly #logChunks: Buffer[] = [];
  #logBytes = 0;
  /** Every byte logged so far, including those the 16 MiB cap dropped: where a relay's log starts. */
  #logTotal = 0;
  readonly #followers = new Set<PassThrough>();
  readonly #ports = new Map<number, number>();
  /** The sandbox's pid namespace: exec and file access check it, so a reused pid is never joined. */
  #pidNamespace = '0';
  #mainExit: { code: number; signal?: number } | undefined;
  /** pid 1's descriptor of the scratch tmpfs that holds the writable layer (what commit reads) */
  #scratchFd: number | undefined;
  /** @internal Resolves when pid 1 holds before the main process (started with files to copy in: see start.ts). */
  readonly held: Promise<void>;
  #onHeld!: () => void;
  #finalStats: ContainerStats | undefined;
  #exit: ExitInfo | undefined;
  #stopRequested = false;
  readonly #exited: Promise<ExitInfo>;
  readonly started: Promise<void>;
  /** Every event of the monitor so far and who else follows them (see relay()). */
  readonly #events: RuntimeEvent[] = [];
  readonly #relays = new Set<RelaySink>();

  constructor(init: ContainerInit) {
    this.#init = init;
    if (!init.remote) liveContainers.add(this);
    this.id = init.id;
    this.hostname = init.hostname;
    this.image = init.image;
    this.options = init.options;
    this.spec = init.spec;
    this.#monitor = init.monitor;
    this.#control = this.#monitor.control;
    this.#control.on('error', () => {}); // the monitor may already be gone
    for (const stream of [this.#monitor.stdout, this.#monitor.stderr]) {
      stream.on('data', (c: Buffer) => this.#log(c));
      stream.on('error', () => {});
    }

    let resolveStarted!: () => void, rejectStarted!: (e: ContainerError) => void;
    let startSettled = false;
    this.started = new Promise((res, rej) => {
      resolveStarted = () => { startSettled = true; res(); };
      rejectStarted = (e) => { startSettled = true; rej(e); };
    });
    this.started.catch(() => {}); // observed through startContainer
    this.held = new Promise((resolve) => { this.#onHeld = resolve; });
    const onEvent = (e: RuntimeEvent) => {
      log('%s event %o', this.id, e);
      this.#events.push(e);
      for (const r of this.#relays) r.event(e);
      switch (e.type) {
        case 'created': this.pid = e.pid; this.#pidNamespace = pidNamespaceOf(e.pid); break;
        case 'port': this.#ports.set(e.port, e.hostPort); break;
        case 'rootfs': this.#scratchFd = e.scratchFd; break;
        case 'held': this.#onHeld(); break;
        case 'started': resolveStarted(); break;
        case 'exec-failed': if (!startSettled) rejectStarted(commandNotFound(e.path, e.code)); break;
        case 'error': if (!startSettled) rejectStarted(runtimeError(e, init.rootless)); break;
        case 'exit': this.#mainExit = e; break;
        case 'stopped': if (!this.#mainExit) this.#mainExit = e; break;
        case 'warning':
          log('sandbox %s: %s: %s (errno %d)', init.id, e.stage, e.message, e.errno);
          if (e.stage === 'idmap' && e.path) warnNotIdmapped(e.path, e.code);
          break;
      }
    };
    for (const e of init.replay?.events ?? []) onEvent(e);
    if (init.replay?.log.length) this.#log(init.replay.log);
    onEvents(this.#monitor.status, onEvent);
    this.#exited = this.#monitor.closed.then(() => this.#finish()).then((info) => {
      if (!startSettled) rejectStarted(new SandboxError('SANDBOX_EXITED', `the sandbox ended before its process started: ${this.logs().slice(-2000)}`));
      return info;
    });
  }

  #log(chunk: Buffer): void {
    this.#logChunks.push(chunk);
    this.#logBytes += chunk.length;
    this.#logTotal += chunk.length;
    while (this.#logBytes > MAX_LOG_BYTES && this.#logChunks.length > 1) this.#logBytes -= this.#logChunks.shift()!.length;
    for (const f of this.#followers) f.write(chunk);
    for (const r of this.#relays) r.log(chunk);
  }

  /** @internal The sandbox's cgroup (its path from each hierarchy's root), when it has one. */
  get cgroupPath(): string | undefined {
    return this.#init.cgroup?.path;
  }

  /** @internal What a mirror of this sandbox in another process needs to be made (src/service/). */
  mirrorable(): { runDir: string; runRoot: string; cgroupPath: string | undefined; rootless: boolean; events: RuntimeEvent[]; log: string; logTotal: number } {
    return {
      runDir: this.#init.runDir, runRoot: this.#init.runRoot, cgroupPath: this.cgroupPath, rootless: this.#init.rootless,
      events: [...this.#events], log: this.logs(), logTotal: this.#logTotal,
    };
  }

  /**
   * @internal Follows this sandbox for a mirror in another process (src/service/) that has seen
   * `events` of its events and `logTotal` bytes of its log (see mirrorable()): the rest of both,
   * then what comes, then its end. Returns a function that stops following.
   */
  relay(sink: RelaySink, seen: { events: number; logTotal: number }): () => void {
    for (const e of this.#events.slice(seen.events)) sink.event(e);
    const unseen = Math.min(this.#logTotal - seen.logTotal, this.#logBytes);
    if (unseen > 0) sink.log(Buffer.concat(this.#logChunks).subarray(this.#logBytes - unseen));
    if (this.#exit) sink.closed(this.#finalStats);
    else this.#relays.add(sink);
    return () => this.#relays.delete(sink);
  }

  async #finish(): Promise<ExitInfo> {
    const cgroup = this.#init.cgroup;
    let oomKills = 0;
    if (this.#init.remote) {
      this.#finalStats = this.#init.remote.finalStats();
      oomKills = this.#finalStats?.oomKills ?? 0;
    } else if (cgroup) {
      try {
        this.#finalStats = toStats(cgroup.stats());
        oomKills = this.#finalStats.oomKills;
        await cgroup.remove();
      } catch (err) {
        log('%s cgroup cleanup failed: %o', this.id, err);
      }
    }
    if (!this.#init.remote) removeBundle(this.#init.runDir);
    liveContainers.delete(this);
    for (const f of this.#followers) f.end();
    this.#followers.clear();
    // No exit event at all: the runtime itself failed (its error event says why).
    const main = this.#mainExit ?? { code: 125 };
    this.#exit = { exitCode: main.code, signal: signalName(main.signal), oomKilled: oomKills > 0 };
    log('%s finished %o', this.id, this.#exit);
    for (const r of this.#relays) r.closed(this.#finalStats);
    this.#relays.clear();
    return this.#exit;
  }

  /** Where the test reaches a port of the sandbox: 127.0.0.1 and the forwarded host port. */
  endpoint(port: number): { host: string; port: number } {
    const hostPort = this.#ports.get(port);
    if (hostPort === undefined) {
      throw new SandboxError('PORT_NOT_FORWARDED', `port ${port} of sandbox ${this.id} is not forwarded (forwarded: ${[...this.#ports.keys()].join(', ') || 'none'})`,
        { fix: `add it to the options: ports: [${port}]` });
    }
    return { host: '127.0.0.1', port: hostPort };
  }

  /** A URL for a forwarded port, e.g. url(8080) → 'http://127.0.0.1:41234'. */
  url(port: number, scheme = 'http'): string {
    const { host, port: hostPort } = this.endpoint(port);
    return `${scheme}://${host}:${hostPort}`;
  }

  /** Forwarded ports: container port → host port on 127.0.0.1. */
  get ports(): ReadonlyMap<number, number> {
    return this.#ports;
  }

  /** The Node IPC channel to the main process (only with the internal `ipc` start option). */
  get channel(): ChildProcess {
    if (!this.#monitor.child) throw new SandboxError('NO_CHANNEL', `sandbox ${this.id} was started without an IPC channel`);
    return this.#monitor.child;
  }

  /** Synchronous last resort at process exit: kill everything in the sandbox, remove its cgroup and bundle. */
  destroyNow(): void {
    // A mirror's sandbox is its owner's to end; one no longer live was finished or destroyed already.
    if (this.#init.remote || !liveContainers.has(this)) return;
    try {
      this.#init.cgroup?.removeNow();
    } catch (err) {
      log('%s cgroup removal at exit failed: %o', this.id, err);
    }
    removeBundle(this.#init.runDir);
    liveContainers.delete(this);
  }

  /**
   * The sandbox no longer keeps this process alive: it runs until stopped, or until this process
   * ends (the exit hook above and the monitor's control socket take it down then).
   */
  unref(): void {
    this.#monitor.unref();
  }

  /** True once stop() was called (so an exit is expected, not a failure). */
  get stopRequested(): boolean {
    return this.#stopRequested;
  }

  /** True until the sandbox's main process has ended and it was torn down. */
  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Resolves when the sandbox's main process has ended and its resources are released. */
  wait(): Promise<ExitInfo> {
    return this.#exited;
  }

  /** Everything the main process wrote to stdout and stderr so far (the last 16 MiB). */
  logs(): string {
    return Buffer.concat(this.#logChunks).toString('utf8');
  }

  /** A stream of the main process's output: what was written so far, then everything new until it ends. */
  logStream(): Readable {
    const stream = new PassThrough();
    for (const c of this.#logChunks) stream.write(c);
    if (this.running) this.#followers.add(stream);
    else stream.end();
    return stream;
  }

  /** Sends a signal to the main process (through the sandbox's pid 1). SIGKILL ends the whole sandbox. */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): void {
    const n = typeof signal === 'number' ? signal : os.signals[signal];
    if (!n) throw new SandboxError('INVALID_SIGNAL', `unknown signal ${String(signal)}`);
    if (this.running) this.#control.write(Buffer.from([n]));
  }

  /** Graceful stop: SIGTERM (or the image's StopSignal), then SIGKILL after stopTimeout ms. */
  async stop(options: { timeout?: number } = {}): Promise<ExitInfo> {
    this.#stopRequested = true;
    if (!this.running) return this.#exited;
    if (this.#init.remote) {
      await this.#init.remote.stop(options.timeout ?? this.options.stopTimeout);
      return this.#exited;
    }
    const stopSignal = (this.image.config.StopSignal as NodeJS.Signals | undefined) ?? 'SIGTERM';
    this.kill(os.signals[stopSignal] ? stopSignal : 'SIGTERM');
    const timeout = options.timeout ?? this.options.stopTimeout;
    // A timer that is cleared once the sandbox is gone, so it never holds the process open.
    const killer = setTimeout(() => this.kill('SIGKILL'), timeout);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(killer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** Resource use, from the sandbox's cgroup. After exit: the last values. */
  async stats(): Promise<ContainerStats> {
    if (this.#finalStats) return this.#finalStats;
    if (!this.#init.cgroup) {
      throw new SandboxError('NO_CGROUP', 'this sandbox has no cgroup (rootless without cgroup delegation), so there are no stats',
        { fix: 'run as root, or under a delegated cgroup: systemd-run --user --scope -p Delegate=yes ...' });
    }
    return toStats(this.#init.cgroup.stats());
  }

  #assertRunning(what: string): void {
    if (!this.running || !this.pid) throw new SandboxError('NOT_RUNNING', `cannot ${what}: sandbox ${this.id} is not running`);
  }

  async #processSpec(cmd: string[], options: ExecOptions): Promise<ProcessSpec> {
    const base = this.spec.process;
    const env = new Map(base.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    for (const [k, v] of Object.entries(options.env ?? {})) env.set(k, v);
    return {
      ...base,
      args: cmd,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd: options.workdir ?? base.cwd,
      user: options.user ? await this.#init.resolveUser(options.user) : base.user,
    };
  }

  /** Starts a further command inside the sandbox, with streams. */
  spawn(cmd: string[], options: ExecOptions = {}): Promise<ExecProcess> {
    return this.#spawn(cmd, options, true, false);
  }

  /**
   * withStdin false: the command's stdin is /dev/null (one connection less to make). collecting: the
   * caller reads stdout and stderr to the end (exec), so `exited` waits for them; a spawn's caller may
   * never read them, and its `exited` must not depend on that.
   */
  async #spawn(cmd: string[], options: ExecOptions, withStdin: boolean, collecting: boolean): Promise<ExecProcess> {
    this.#assertRunning('exec');
    if (!Array.isArray(cmd) || !cmd.length || cmd.some((a) => typeof a !== 'string')) {
      throw new SandboxError('INVALID_COMMAND', 'exec needs a non-empty array of strings, e.g. ["redis-cli", "ping"]');
    }
    const proc = await this.#processSpec(cmd, options);
    const args = ['exec', '--pid', String(this.pid), '--pidns', this.#pidNamespace];
    if (this.#init.cgroup) args.push('--cgroup', this.#init.cgroup.path);
    // The sandbox's filter, compiled by its monitor: an exec'd command is confined like the main process.
    if (this.#init.spec.linux.seccomp) args.push('--seccomp', join(this.#init.runDir, 'seccomp.bpf'));
    const child = await launchRuntime([...args, JSON.stringify(proc)], { runRoot: this.#init.runRoot, stdin: withStdin });
    const stdin = child.stdin ?? new PassThrough().end();
    let failure: ContainerError | undefined;
    let exitCode: number | undefined;
    onEvents(child.status, (e) => {
      if (e.type === 'error') failure = runtimeError(e, this.#init.rootless);
      if (e.type === 'exit') exitCode = e.code;
    });
    child.control.on('error', () => {});
    if (options.stdin !== undefined) stdin.end(options.stdin);
    // Done when the runtime's exec process is (its control socket closes): not when stdout closes,
    // which a background process the command started may hold open for as long as it likes.
    const exited = new Promise<number>((resolve, reject) => {
      child.control.once('close', () => {
        let cutoff: NodeJS.Timeout | undefined;
        const settle = () => {
          if (cutoff) clearTimeout(cutoff);
          if (failure) reject(failure);
          else if (exitCode === undefined) reject(new SandboxError('EXEC_FAILED', `exec in sandbox ${this.id} ended without an exit status`));
          else resolve(exitCode);
        };
        // The exit status arrives on the status stream (read by onEvents): settled once it is all read.
        if (!collecting) return void consumed(child.status).then(settle);
        // What the command wrote before it exited is already in the sockets; give it a moment to arrive.
        cutoff = setTimeout(() => child.release(), 50);
        void Promise.all([consumed(child.stdout), consumed(child.stderr)]).then(settle);
      });
    });
    exited.catch(() => {});
    return {
      stdout: child.stdout, stderr: child.stderr, stdin, exited,
      kill: (signal = 'SIGTERM') => {
        const n = os.signals[signal];
        if (n && child.control.writable) child.control.write(Buffer.from([n]));
      },
    };
  }

  /** Runs a command inside the sandbox and collects its output. A missing command gives exit code 127, as in a shell. */
  async exec(cmd: string[], options: ExecOptions = {}): Promise<ExecResult> {
    // exec() has no stdin unless given one: the command reads end-of-file (/dev/null)
    const p = await this.#spawn(cmd, options, options.stdin !== undefined, true);
    const out: Buffer[] = [], err: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.on('data', (c: Buffer) => err.push(c));
    const exitCode = await p.exited;
    return { exitCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  }

  async #file(args: string[], input?: string | Uint8Array): Promise<Buffer> {
    this.#assertRunning('access files');
    const child = await launchRuntime(['file', '--pid', String(this.pid), '--pidns', this.#pidNamespace, ...args], { runRoot: this.#init.runRoot, stdin: input !== undefined });
    let failure: string | undefined;
    let done = false;
    onEvents(child.status, (e) => {
      if (e.type === 'error') failure = `${e.message}: ${e.path}: ${e.code}`;
      if (e.type === 'exit') done = e.code === 0;
    });
    child.stdin?.end(input);
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.resume(); // the runtime says nothing there, but it must be read to its end
    await child.closed;
    if (!done) throw new SandboxError('FILE_ACCESS_FAILED', failure ?? `file access in sandbox ${this.id} failed`);
    return Buffer.concat(out);
  }

  /** What commit and the copies need of this sandbox, as it is now. */
  #target(): CommitTarget & CopyTarget {
    return {
      id: this.id, pid: this.pid, pidNamespace: this.#pidNamespace, runRoot: this.#init.runRoot, image: this.image, options: this.options,
      running: this.running, scratchFd: this.#scratchFd,
      stop: (o) => this.stop(o),
      resolveUser: (user) => this.#init.resolveUser(user),
    };
  }

  /**
   * Makes an image of the sandbox as it is now: its image with everything written, changed and deleted
   * since it started on top, as a new layer in the shared layer cache. Resolves to a reference
   * (`cache:sha256:…`) that `image` accepts in this process and any other on this machine. The layer is
   * read while the sandbox runs: have the service write out its state first (Redis `SAVE`, Postgres
   * `CHECKPOINT`), or pass `stop: true` to stop it cleanly and commit what it left.
   */
  commit(options: CommitOptions = {}): Promise<string> {
    return commitSandbox(this.#target(), options);
  }

  /**
   * Copies into the sandbox: a host directory's contents into containerPath (made when missing), a host
   * file to containerPath, bytes as the file at containerPath, or a tar stream's entries below containerPath. Paths resolve inside the
   * sandbox's root; below containerPath nothing is written through a symlink; absolute, ".." and
   * device entries are refused.
   */
  copyTo(source: CopySource, containerPath: string, options: CopyToOptions = {}): Promise<void> {
    return copyToSandbox(this.#target(), source, containerPath, options);
  }

  /**
   * What is at containerPath in the sandbox (a directory's contents, or a file) as a tar stream; with
   * hostDir, extracted there instead (files become the caller's, setuid bits and device nodes are dropped).
   * Mount points below containerPath are listed, not entered.
   */
  copyFrom(containerPath: string): Readable;
  copyFrom(containerPath: string, hostDir: string): Promise<void>;
  copyFrom(containerPath: string, hostDir?: string): Readable | Promise<void> {
    return hostDir === undefined ? copyFromSandbox(this.#target(), containerPath) : copyFromSandbox(this.#target(), containerPath, hostDir);
  }

  /** Reads a file inside the sandbox (paths resolve against the sandbox's root, symlinks included). */
  readFile(path: string): Promise<Buffer> {
    return this.#file(['--read', path]);
  }

  /** Writes (creating or replacing) a file inside the sandbox. */
  async writeFile(path: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    await this.#file(['--write', path, '--mode', (options.mode ?? 0o644).toString(8)], data);
  }
}
