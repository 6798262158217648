// Starting native runtime processes (a sandbox's monitor, an exec, a file
// copy). Node's child_process forks the whole Node process for every spawn,
// which costs 3-4 ms at 100 MiB and grows with the heap. So one small
// `vtc-runtime spawner` per process starts them with posix_spawn, and each
// started process connects back to a unix socket of ours for its stdio and its
// control/status channel. Node's own spawn is kept for what needs a Node IPC
// channel (the pool's workers).
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { SandboxError } from '../errors.ts';
import { ensureRunRoot } from './bundle.ts';
import { runtimeBinary } from './native.ts';
import { sandboxId } from './reaper.ts';

export interface RuntimeProcess {
  stdout: Readable;
  stderr: Readable;
  stdin: Writable;
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

interface Pending { io?: Connection; err?: Connection; ctl?: Connection; done: (p: RuntimeProcess) => void; fail: (e: Error) => void; timer: NodeJS.Timeout }

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

class Spawner {
  readonly #path: string;
  readonly #server: Server;
  readonly #pending = new Map<string, Pending>();
  #child: ChildProcess | undefined;
  readonly #ready: Promise<void>;

  constructor(runRoot: string) {
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
  }

  #arrived(token: string, role: string, c: Connection): void {
    const p = this.#pending.get(token);
    if (!p || (role !== 'io' && role !== 'err' && role !== 'ctl')) {
      c.socket.destroy();
      return;
    }
    p[role] = c;
    if (!p.io || !p.err || !p.ctl) return;
    this.#pending.delete(token);
    clearTimeout(p.timer);
    const { io, err, ctl } = p;
    p.done({
      stdout: io.incoming, stdin: io.socket, stderr: err.incoming, control: ctl.socket, status: ctl.incoming,
      // The sockets' 'close' can come before the last 'data' through the PassThroughs: wait for both.
      closed: Promise.all([allClosed(io.socket, err.socket, ctl.socket), consumed(io.incoming), consumed(err.incoming), consumed(ctl.incoming)]).then(() => {}),
      release: () => {
        for (const c of [io, err]) {
          c.socket.destroy();
          c.incoming.end();
        }
      },
    });
  }

  /** Starts the helper now, so the first sandbox does not wait for it. */
  warm(): void {
    this.#spawner();
  }

  #spawner(): ChildProcess {
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

  async launch(args: string[]): Promise<RuntimeProcess> {
    await this.#ready;
    const token = `${process.pid}.${++launches}`;
    const line = [args[0]!, '--connect', this.#path, '--token', token, ...args.slice(1)];
    if (line.some((a) => a.includes('\t') || a.includes('\n'))) {
      throw new SandboxError('INVALID_ARGUMENT', 'runtime arguments may not contain tabs or newlines');
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(token);
        for (const c of [p?.io, p?.err, p?.ctl]) c?.socket.destroy();
        this.#pending.delete(token);
        reject(new SandboxError('RUNTIME_DID_NOT_CONNECT', `the native runtime did not connect back within ${CONNECT_TIMEOUT_MS} ms`));
      }, CONNECT_TIMEOUT_MS);
      this.#pending.set(token, { done: resolve, fail: reject, timer });
      this.#spawner().stdin!.write(`${line.join('\t')}\n`);
    });
  }
}

const SPAWNERS = Symbol.for('vitest-environment-container.spawners');
// Shared by every copy of this module in the process (test runners load it more than once).
const spawners = ((globalThis as Record<symbol, unknown>)[SPAWNERS] ??= new Map<string, Spawner>()) as Map<string, Spawner>;

function spawnerFor(runRoot: string): Spawner {
  let spawner = spawners.get(runRoot);
  if (!spawner) {
    spawner = new Spawner(runRoot);
    spawners.set(runRoot, spawner);
  }
  return spawner;
}

/** Gets the spawner going ahead of the first sandbox (a test runner calls this while it loads test files). */
export function prewarmRuntime(runRoot: string): void {
  spawnerFor(runRoot).warm();
}

/** Starts `vtc-runtime <args>`; with ipc, through Node (the process gets a Node IPC channel as fd 5). */
export async function launchRuntime(args: string[], options: { runRoot: string; ipc?: boolean }): Promise<RuntimeProcess> {
  if (options.ipc) {
    const child = spawn(runtimeBinary(), [args[0]!, '--control-fd', '3', '--status-fd', '4', '--preserve-fd', '5', ...args.slice(1)], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const control = child.stdio[3] as Writable;
    return {
      stdout: child.stdout!, stderr: child.stderr!, stdin: control, control, status: child.stdio[4] as Readable, child,
      closed: new Promise((resolve) => child.once('close', () => resolve())),
      release: () => {
        child.stdout!.destroy();
        child.stderr!.destroy();
      },
    };
  }
  return spawnerFor(options.runRoot).launch(args);
}
