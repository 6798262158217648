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
import { isMainThread, threadId } from 'node:worker_threads';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.ts';
import { fileIdentity } from '../path.ts';
import { ensureRunRoot } from './bundle.ts';
import { runtimeBinary } from './native.ts';
import { processId, sandboxId } from './reaper.ts';
import { nextInSequence, threadState } from '../thread-state.ts';
import { testRunOwner } from './run-owner.ts';

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
  /** Its connections no longer keep this process alive (a sandbox left to end with the process). */
  unref(): void;
  /** The ChildProcess, when started by Node itself (ipc). */
  child?: ChildProcess;
}

const CONNECT_TIMEOUT_MS = 15_000;
// Tokens only pair a connection with its launch: the socket sits in a directory that only we
// can enter (see ensureRunRoot), so they need not be secret. (node:crypto would cost a test
// worker ~5 ms to load, on every file.) Numbered per thread, whichever copy of this module launches.
// The kernel's limit for one argument (MAX_ARG_STRLEN): an exec's process spec travels as one.
const MAX_ARGUMENT_BYTES = 128 * 1024;

/** The runtime binary's inode and mtime: which build a shared spawner runs. */

interface Pending { out?: Connection; err?: Connection; ctl?: Connection; in?: Connection; wantsStdin: boolean; done: (p: RuntimeProcess) => void; timer: NodeJS.Timeout }

function allClosed(...sockets: (Readable | Writable | null | undefined)[]): Promise<void> {
  return Promise.all(sockets.map((s) => new Promise<void>((resolve) => {
    if (!s || (s as Socket).closed || s.destroyed) resolve();
    else s.once('close', () => resolve());
  }))).then(() => {});
}

/** Resolves once stream has ended (everything in it was read) or was destroyed. */
export function consumed(stream: Readable): Promise<void> {
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

/** The spawner ended (or refused us) before it answered a request that was written to it. */
class ChannelClosed extends Error {}

/**
 * Requests to one spawner: a line each, answered in order by "ok" or "err <errno>" (see
 * native/spawner.c), so that a process that could not be started fails its launch at once.
 */
class SpawnerChannel {
  readonly #out: Writable;
  /** Who waits for the next reply line, in order; what a line means is theirs to say. */
  readonly #waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  #closed = false;
  #onClosed!: () => void;
  /** Resolves once the spawner has closed the channel (a shared one: the test run is over). */
  readonly ended = new Promise<void>((resolve) => { this.#onClosed = resolve; });

  constructor(out: Writable, replies: Readable) {
    this.#out = out;
    let partial = '';
    replies.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        this.#waiting.shift()?.resolve(line);
      }
    });
    const close = () => {
      if (this.#closed) return;
      this.#closed = true;
      this.#onClosed();
      for (const w of this.#waiting.splice(0)) w.reject(new ChannelClosed('the spawner ended before it answered'));
    };
    for (const s of [out, replies]) s.on('error', close).on('close', close);
    replies.on('end', close);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The next line the spawner says (a shared one greets each connection first). */
  next(): Promise<string> {
    if (this.#closed) return Promise.reject(new ChannelClosed('closed'));
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  async request(line: string): Promise<void> {
    if (this.#closed) throw new ChannelClosed('not sent');
    const reply = this.next();
    this.#out.write(line);
    const answer = await reply;
    if (answer === 'ok') return;
    const errno = Number(answer.split(' ')[1]);
    const name = Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
    throw new SandboxError('RUNTIME_SPAWN_FAILED', `the native runtime could not be started: ${name}`);
  }
}

/**
 * Opens a channel to a shared spawner's socket once it has greeted us ("hello"; "full" when it
 * serves too many). The connection never keeps the process alive.
 */
async function openShared(path: string): Promise<SpawnerChannel> {
  const socket = createConnection(path);
  socket.unref();
  const channel = new SpawnerChannel(socket, socket);
  const greeting = await channel.next();
  if (greeting !== 'hello') {
    socket.destroy();
    throw new ChannelClosed(`the shared spawner said: ${greeting}`);
  }
  return channel;
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

/** The run's shared spawner; when none can be had (it cannot start, or a race is lost three times), undefined. */
async function sharedChannel(path: string, owner: number): Promise<SpawnerChannel | undefined> {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await openShared(path);
    } catch {
      // none yet, or one that is only now starting to listen
    }
    if (attempt === 0) await startSharedSpawner(path, owner);
    else await sleep(5 * attempt * attempt);
  }
  return undefined;
}

/** Where the shared spawner of the test run whose main process is owner listens; undefined once that process is gone. */
function sharedSpawnerPath(runRoot: string, owner: number): string | undefined {
  const ownerId = processId(owner);
  // Keyed by the binary too: two copies of this package in one run each get a spawner of their own.
  return ownerId === undefined ? undefined : join(runRoot, `${ownerId}.${fileIdentity(runtimeBinary())}.sock`);
}

/**
 * Resolves when the test run whose main process is owner is over: the run's shared spawner
 * (started if need be) watches that process and closes its connections the moment it ends.
 */
export async function runEnded(runRoot: string, owner: number): Promise<void> {
  const path = sharedSpawnerPath(runRoot, owner);
  const channel = path === undefined ? undefined : await sharedChannel(path, owner);
  if (channel) return channel.ended;
  // No spawner to watch with: look now and then.
  const ownerId = processId(owner);
  while (ownerId !== undefined && processId(owner) === ownerId) await sleep(500);
}

class Spawner {
  readonly #path: string;
  readonly #server: Server;
  readonly #pending = new Map<string, Pending>();
  #own: { child: ChildProcess; channel: SpawnerChannel } | undefined;
  readonly #ready: Promise<void>;
  /** Shared with the other workers of a test run: the run's main process and the socket. */
  readonly #shared: { owner: number; path: string } | undefined;
  #sharedChannel: Promise<SpawnerChannel | undefined> | undefined;

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
    const path = owner === undefined ? undefined : sharedSpawnerPath(runRoot, owner);
    this.#shared = owner === undefined || path === undefined ? undefined : { owner, path };
  }

  #arrived(token: string, role: string, c: Connection): void {
    const p = this.#pending.get(token);
    if (!p || (role !== 'out' && role !== 'err' && role !== 'ctl' && !(role === 'in' && p.wantsStdin)) || p[role]) {
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
      unref: () => {
        for (const socket of [out.socket, err.socket, ctl.socket, stdin]) socket?.unref();
      },
      release: () => {
        stdin?.destroy();
        for (const c of [out, err]) {
          c.socket.destroy();
          c.incoming.end();
        }
      },
    });
  }

  /** Starts (or connects to) the helper now, so the first sandbox does not wait for it. */
  warm(): void {
    void this.#channel();
  }

  /** Where requests go: the run's shared spawner, or one of our own. */
  async #channel(): Promise<SpawnerChannel> {
    if (this.#shared) {
      this.#sharedChannel ??= sharedChannel(this.#shared.path, this.#shared.owner);
      const shared = await this.#sharedChannel;
      if (shared && !shared.closed) return shared;
      if (shared) this.#sharedChannel = undefined; // it ended: the next launch looks again
    }
    return this.#ownChannel();
  }

  #ownChannel(): SpawnerChannel {
    if (this.#own && !this.#own.channel.closed) return this.#own.channel;
    const child = spawn(runtimeBinary(), ['spawner'], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.unref();
    child.on('error', () => {}); // seen by the channel: its pipes close
    for (const s of [child.stdin, child.stdout] as unknown as { _handle?: { unref(): void } }[]) s._handle?.unref();
    this.#own = { child, channel: new SpawnerChannel(child.stdin!, child.stdout!) };
    return this.#own.channel;
  }

  async launch(args: string[], wantsStdin: boolean): Promise<RuntimeProcess> {
    await this.#ready;
    if (args.some((a) => a.includes('\t') || a.includes('\n'))) {
      throw new SandboxError('INVALID_ARGUMENT', 'runtime arguments may not contain tabs or newlines');
    }
    if (args.some((a) => Buffer.byteLength(a) >= MAX_ARGUMENT_BYTES)) {
      throw new SandboxError('ARGUMENTS_TOO_LONG', `a command with its environment and options must fit in ${MAX_ARGUMENT_BYTES / 1024} KiB (the kernel's limit for one argument)`);
    }
    return new Promise((resolve, reject) => {
      let token = '';
      const fail = (err: Error) => {
        const p = this.#pending.get(token);
        if (!p) return;
        clearTimeout(p.timer);
        for (const c of [p.out, p.err, p.ctl, p.in]) c?.socket.destroy();
        this.#pending.delete(token);
        reject(err instanceof ChannelClosed ? new SandboxError('RUNTIME_SPAWN_FAILED', `the native runtime could not be started: ${err.message}`) : err);
      };
      const timer = setTimeout(() => fail(new SandboxError('RUNTIME_DID_NOT_CONNECT', `the native runtime did not connect back within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const attempt = async (retry: boolean): Promise<void> => {
        token = `${process.pid}.${threadId}.${nextInSequence('launch')}`;
        this.#pending.set(token, { wantsStdin, done: resolve, timer });
        const line = [args[0]!, '--connect', this.#path, '--token', token, ...(wantsStdin ? ['--stdin'] : []), ...args.slice(1)];
        try {
          await (await this.#channel()).request(`${line.join('\t')}\n`);
        } catch (err) {
          // The spawner ended before it answered (killed, or it was the run's and the run is
          // ending): once more through a fresh one, under a new token. Should the first request
          // have started a process after all, its connections find no launch and are closed,
          // which ends it.
          if (!(err instanceof ChannelClosed) || !retry || !this.#pending.has(token)) throw err;
          this.#pending.delete(token);
          return attempt(false);
        }
      };
      attempt(true).catch(fail);
    });
  }
}

// Shared by every copy of this module in the thread (test runners load it more than once).
const spawners = threadState('spawners', () => new Map<string, Spawner>());

function spawnerFor(runRoot: string, owner?: number): Spawner {
  let spawner = spawners.get(runRoot);
  if (!spawner) {
    spawner = new Spawner(runRoot, owner);
    spawners.set(runRoot, spawner);
  }
  return spawner;
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
      unref: () => {
        child.unref();
        for (const stream of child.stdio) (stream as { unref?: () => void } | null)?.unref?.();
      },
      release: () => {
        child.stdout!.destroy();
        child.stderr!.destroy();
      },
    };
  }
  return spawnerFor(options.runRoot).launch(args, options.stdin ?? false);
}
