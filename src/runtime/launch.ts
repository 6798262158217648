// Starting native runtime processes (a sandbox's monitor, an exec, a file
// copy). Node's child_process forks the whole Node process for every spawn,
// which costs 3-5 ms in a test worker and grows with the heap. So a small
// `vtc-runtime spawner` starts them with posix_spawn, and each started process
// connects back to a unix socket of ours for its stdio and its control/status
// channel. A plain process has a spawner of its own (fed through a pipe); the
// worker processes of one test run share one (fed through a socket), so that
// only the run's first worker pays for forking itself. Node's own spawn is kept
// for what needs a Node IPC channel (the pool's workers).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { SandboxError } from '../errors.ts';
import { ensureRunRoot } from './bundle.ts';
import { runtimeBinary } from './native.ts';
import { processId, sandboxId } from './reaper.ts';

export interface RuntimeProcess {
  stdout: Readable;
  stderr: Readable;
  /** Only when asked for (launchRuntime's stdin option): its own socket, so that writing to a process that already ended never costs its unread output. */
  stdin?: Writable;
  /** Bytes in: signals to the process. Status lines out: `status`. */
  control: Writable;
  status: Readable;
  /**
   * Resolves once every stream is closed (the process and everything holding its stdio are gone)
   * and what they carried was read: stdout, stderr and status must be consumed.
   */
  closed: Promise<void>;
  /** Lets go of stdout and stderr even if something (a background process) still holds their other end. */
  release(): void;
  /** The ChildProcess, when started by Node itself (ipc). */
  child?: ChildProcess;
}

const CONNECT_TIMEOUT_MS = 15_000;
// Tokens only pair a connection with its launch: the socket sits in a directory that only we
// can enter (see ensureRunRoot), so they need not be secret. (node:crypto would cost a test
// worker ~5 ms to load, on every file.)
let launches = 0;

interface Pending { out?: Connection; err?: Connection; ctl?: Connection; in?: Connection; wantsStdin: boolean; done: (p: RuntimeProcess) => void; fail: (e: Error) => void; timer: NodeJS.Timeout }

function allClosed(...sockets: (Readable | Writable | null | undefined)[]): Promise<void> {
  return Promise.all(sockets.map((s) => new Promise<void>((resolve) => {
    if (!s || (s as Socket).closed || s.destroyed) resolve();
    else s.once('close', () => resolve());
  }))).then(() => {});
}

function consumed(stream: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded || stream.destroyed) resolve();
    else stream.once('end', () => resolve()).once('close', () => resolve());
  });
}

/** One connection back from a runtime process: the socket, and what it sends after its greeting. */
interface Connection { socket: Socket; incoming: PassThrough }

/**
 * Reads the "<token> <role>\n" greeting; everything after it goes, in order, into a PassThrough
 * handed to the consumer. A 'data' listener from the first byte on: no paused-stream subtleties,
 * nothing lost however early the process writes or closes.
 */
function greeting(socket: Socket, onLine: (token: string, role: string, c: Connection) => void): void {
  let buffered: Buffer | undefined = Buffer.alloc(0);
  const incoming = new PassThrough();
  socket.on('data', (chunk: Buffer) => {
    if (!buffered) {
      incoming.write(chunk);
      return;
    }
    buffered = Buffer.concat([buffered, chunk]);
    const nl = buffered.indexOf(10);
    if (nl < 0) return;
    const line = buffered.subarray(0, nl).toString();
    const rest = buffered.subarray(nl + 1);
    buffered = undefined;
    if (rest.length) incoming.write(rest);
    const [token = '', role = ''] = line.split(' ');
    onLine(token, role, { socket, incoming });
  });
  socket.on('end', () => incoming.end());
  socket.on('error', () => incoming.end());
}

/** Connects to a shared spawner's socket; the connection never keeps the process alive. */
function connectTo(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      socket.unref();
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Starts the run's shared spawner at path, unless another one serves it already; resolves once either is so. */
function startSharedSpawner(path: string, owner: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(runtimeBinary(), ['spawner', '--listen', path, '--owner', String(owner)], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.unref();
    const done = () => {
      child.stdout!.destroy();
      resolve();
    };
    child.stdout!.once('data', done); // "ready", or "taken"
    child.once('error', done);
    child.once('exit', done);
  });
}

class Spawner {
  readonly #path: string;
  readonly #server: Server;
  readonly #pending = new Map<string, Pending>();
  #child: ChildProcess | undefined;
  readonly #ready: Promise<void>;
  /** Shared with the other workers of a test run: the run's main process and the socket. */
  readonly #shared: { owner: number; path: string } | undefined;
  #sharedSink: Promise<Writable> | undefined;

  constructor(runRoot: string, owner: number | undefined) {
    ensureRunRoot(runRoot);
    // Named like a sandbox (owner pid, start time): the reaper removes it once its owner is gone.
    this.#path = join(runRoot, `${sandboxId()}.sock`);
    rmSync(this.#path, { force: true });
    this.#server = createServer((socket) => greeting(socket, (token, role, c) => this.#arrived(token, role, c)));
    this.#ready = new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#path, () => resolve());
    });
    this.#server.unref(); // live sandboxes hold their own sockets; an idle spawner keeps nothing alive
    process.once('exit', () => rmSync(this.#path, { force: true }));
    const ownerId = owner === undefined ? undefined : processId(owner);
    this.#shared = owner === undefined || ownerId === undefined ? undefined : { owner, path: join(runRoot, `${ownerId}.sock`) };
  }

  #arrived(token: string, role: string, c: Connection): void {
    const p = this.#pending.get(token);
    if (!p || (role !== 'out' && role !== 'err' && role !== 'ctl' && !(role === 'in' && p.wantsStdin))) {
      c.socket.destroy();
      return;
    }
    p[role] = c;
    if (!p.out || !p.err || !p.ctl || (p.wantsStdin && !p.in)) return;
    this.#pending.delete(token);
    clearTimeout(p.timer);
    const { out, err, ctl } = p;
    const stdin = p.in?.socket;
    stdin?.on('error', () => {}); // the process may be gone before it reads
    p.done({
      stdout: out.incoming, stdin, stderr: err.incoming, control: ctl.socket, status: ctl.incoming,
      // The sockets' 'close' can come before the last 'data' through the PassThroughs: wait for both.
      closed: Promise.all([allClosed(out.socket, err.socket, ctl.socket, stdin), consumed(out.incoming), consumed(err.incoming), consumed(ctl.incoming)]).then(() => {}),
      release: () => {
        for (const c of [out, err]) {
          c.socket.destroy();
          c.incoming.end();
        }
      },
    });
  }

  /** Starts (or connects to) the helper now, so the first sandbox does not wait for it. */
  warm(): void {
    void this.#sink();
  }

  /** Where request lines go: the shared spawner's socket, or our own spawner's stdin. */
  #sink(): Writable | Promise<Writable> {
    if (!this.#shared) return this.#ownSpawner().stdin!;
    return (this.#sharedSink ??= this.#connectShared());
  }

  async #connectShared(): Promise<Writable> {
    const { owner, path } = this.#shared!;
    const connected = await connectTo(path).catch(async () => {
      await startSharedSpawner(path, owner);
      return connectTo(path);
    }).catch(() => undefined);
    if (!connected) return this.#ownSpawner().stdin!; // no shared one to be had: one of our own
    // Gone (the run ended, or it was killed): the next launch connects anew.
    connected.once('close', () => {
      this.#sharedSink = undefined;
    });
    return connected;
  }

  #ownSpawner(): ChildProcess {
    if (this.#child && this.#child.exitCode === null && !this.#child.killed) return this.#child;
    const child = spawn(runtimeBinary(), ['spawner'], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.unref();
    (child.stdin as Writable & { unref?: () => void }).on('error', () => {});
    (child.stdin as unknown as { _handle?: { unref(): void } })._handle?.unref();
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    this.#child = child;
    return child;
  }

  async launch(args: string[], wantsStdin: boolean): Promise<RuntimeProcess> {
    await this.#ready;
    const token = `${process.pid}.${++launches}`;
    const line = [args[0]!, '--connect', this.#path, '--token', token, ...(wantsStdin ? ['--stdin'] : []), ...args.slice(1)];
    if (line.some((a) => a.includes('\t') || a.includes('\n'))) {
      throw new SandboxError('INVALID_ARGUMENT', 'runtime arguments may not contain tabs or newlines');
    }
    const sink = await this.#sink();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(token);
        for (const c of [p?.out, p?.err, p?.ctl, p?.in]) c?.socket.destroy();
        this.#pending.delete(token);
        reject(new SandboxError('RUNTIME_DID_NOT_CONNECT', `the native runtime did not connect back within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      this.#pending.set(token, { wantsStdin, done: resolve, fail: reject, timer });
      sink.write(`${line.join('\t')}\n`);
    });
  }
}

const SPAWNERS = Symbol.for('vitest-environment-container.spawners');
// Shared by every copy of this module in the process (test runners load it more than once).
const spawners = ((globalThis as Record<symbol, unknown>)[SPAWNERS] ??= new Map<string, Spawner>()) as Map<string, Spawner>;

function spawnerFor(runRoot: string, owner?: number): Spawner {
  let spawner = spawners.get(runRoot);
  if (!spawner) {
    spawner = new Spawner(runRoot, owner);
    spawners.set(runRoot, spawner);
  }
  return spawner;
}

/**
 * The test run's main process, when this is one of its forked worker processes (Vitest's forks
 * pool, Jest's workers): the spawner shared by the run's workers ends with it. Worker threads
 * and the pool's sandboxed workers keep a spawner of their own.
 */
function testRunOwner(): number | undefined {
  if (!isMainThread || typeof process.send !== 'function' || process.env.VITEST_CONTAINER_POOL_WORKER === '1') return undefined;
  return process.ppid > 1 ? process.ppid : undefined;
}

/** Gets the spawner going ahead of the first sandbox (a test runner's environment calls this while it loads test files). */
export function prewarmRuntime(runRoot: string, options: { testWorker?: boolean } = {}): void {
  spawnerFor(runRoot, options.testWorker ? testRunOwner() : undefined).warm();
}

/** Starts `vtc-runtime <args>`; with ipc, through Node (the process gets a Node IPC channel as fd 5). */
export async function launchRuntime(args: string[], options: { runRoot: string; ipc?: boolean; stdin?: boolean }): Promise<RuntimeProcess> {
  if (options.ipc) {
    const child = spawn(runtimeBinary(), [args[0]!, '--control-fd', '3', '--status-fd', '4', '--preserve-fd', '5', ...args.slice(1)], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const control = child.stdio[3] as Writable;
    return {
      stdout: child.stdout!, stderr: child.stderr!, control, status: child.stdio[4] as Readable, child,
      closed: new Promise((resolve) => child.once('close', () => resolve())),
      release: () => {
        child.stdout!.destroy();
        child.stderr!.destroy();
      },
    };
  }
  return spawnerFor(options.runRoot).launch(args, options.stdin ?? false);
}
