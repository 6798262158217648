// A test worker's connection to the run's sandbox service (server.ts): found by the run's
// main process, started by the first worker that finds none. Loaded for every test file,
// so it imports little.
import { spawn } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandboxError } from '../errors.ts';
import { fileIdentity, packageRoot } from '../path.ts';
import { processId } from '../runtime/reaper.ts';
import { ensureRunRoot } from '../runtime/bundle.ts';
import { onJsonLines } from '../runtime/events.ts';
import { deserializeError, type SerializedError } from './protocol.ts';

// Next to this module in the repository (.ts, which Node runs as it is); its own entry of the bundle once built.
const serviceEntry = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./main.ts', import.meta.url)) : join(packageRoot(), 'dist', 'service', 'main.js');

type Push = Record<string, unknown>;

export class ServiceClient {
  readonly #socket: Socket;
  #nextId = 1;
  readonly #waiting = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  readonly #followers = new Map<string, (push: Push) => void>();
  #closed = false;
  /** The service's working directory: relative paths in options resolve against it. */
  readonly hello: Promise<{ cwd: string }>;

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.unref(); // a test worker never waits for the service to let it end
    let greeted!: (h: { cwd: string }) => void;
    let gone!: (err: Error) => void;
    this.hello = new Promise((resolve, reject) => {
      greeted = resolve;
      gone = reject;
    });
    this.hello.catch(() => {}); // seen by whoever awaits it
    onJsonLines<Record<string, unknown>>(socket, (m) => {
      if (m.hello) greeted(m.hello as { cwd: string });
      else if (typeof m.push === 'string') this.#followers.get(m.sandbox as string)?.(m);
      else this.#answer(m);
    });
    const close = () => {
      this.#closed = true;
      gone(new SandboxError('SANDBOX_SERVICE_GONE', "the test run's sandbox service closed the connection"));
      for (const w of this.#waiting.values()) w.reject(new SandboxError('SANDBOX_SERVICE_GONE', "the test run's sandbox service ended before it answered"));
      this.#waiting.clear();
    };
    socket.on('error', close).on('close', close);
  }

  #answer(m: Record<string, unknown>): void {
    const w = this.#waiting.get(m.re as number);
    if (!w) return;
    this.#waiting.delete(m.re as number);
    if (!m.error) return w.resolve(m.value);
    const err = deserializeError(m.error as SerializedError) as Error & { resources?: unknown };
    if (m.value !== undefined) err.resources = m.value;
    w.reject(err);
  }

  /** Sends a request; resolves with the answer, or rejects with the error the service threw (as its own class). */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new SandboxError('SANDBOX_SERVICE_GONE', "the test run's sandbox service has ended"));
    const id = this.#nextId++;
    const answer = new Promise<T>((resolve, reject) => this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject }));
    this.#socket.write(`${JSON.stringify({ id, op, ...args })}\n`);
    return answer;
  }

  close(): void {
    this.#socket.destroy();
  }

  /** Receives what the service pushes about one sandbox (see Session's attach). */
  follow(sandbox: string, receive: (push: Push) => void): void {
    this.#followers.set(sandbox, receive);
  }
}

function connectOnce(path: string): Promise<ServiceClient> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(new ServiceClient(socket));
    });
  });
}

/** Connects, waiting up to 5 s for a service that is still starting. */
async function connect(path: string): Promise<ServiceClient> {
  for (let waited = 0; ; waited += 10) {
    try {
      return await connectOnce(path);
    } catch (err) {
      if (waited >= 5000) throw err;
      await sleep(10);
    }
  }
}

/**
 * Starts a service for the run at path, unless another worker is starting one (the first to
 * create path.starting does); resolves once one should listen there.
 */
async function startService(path: string, owner: number): Promise<void> {
  try {
    closeSync(openSync(`${path}.starting`, 'wx', 0o600));
  } catch {
    // Another worker starts it: wait for its socket (connect() below tries for a while).
    return;
  }
  await spawnService(path, owner);
}

function spawnService(path: string, owner: number): Promise<void> {
  return new Promise((resolve) => {
    // Its stderr must not be this worker's: Vitest waits for a worker's pipes to close. With DEBUG, a
    // file next to its socket (the next run's reaper removes it).
    const stderr = process.env.DEBUG ? openSync(`${path}.log`, 'a', 0o600) : 'ignore';
    // Its own session: Vitest ending this worker does not end it; the run's end does.
    const child = spawn(process.execPath, [serviceEntry, '--listen', path, '--owner', String(owner)], {
      detached: true, stdio: ['ignore', 'pipe', stderr],
    });
    if (typeof stderr === 'number') closeSync(stderr);
    child.unref();
    let said = false;
    const done = () => {
      child.stdout!.destroy();
      // It failed to start: the next worker may try again rather than wait for it.
      if (!said) rmSync(`${path}.starting`, { force: true });
      resolve();
    };
    child.stdout!.once('data', () => {
      said = true;
      done();
    });
    child.once('error', done);
    child.once('exit', done);
  });
}

/**
 * The service of the test run whose main process is `owner`, started if none serves yet;
 * undefined when there is none to be had (the caller then starts sandboxes itself).
 */
export async function serviceFor(runRoot: string, owner: number): Promise<ServiceClient | undefined> {
  const ownerId = processId(owner);
  if (!ownerId) return undefined;
  try {
    ensureRunRoot(runRoot);
    // Named for its owner, like the run's shared spawner: the reaper removes it once the run is gone.
    const path = join(runRoot, `${ownerId}.svc${fileIdentity(serviceEntry)}.sock`);
    let client: ServiceClient;
    try {
      client = await connectOnce(path);
    } catch {
      await startService(path, owner);
      client = await connect(path);
    }
    // Relative paths in options (an image directory, files to copy in) resolve against the working
    // directory: a worker elsewhere than the service (whose is the first worker's) starts its own.
    if ((await client.hello).cwd === process.cwd()) return client;
    client.close();
    return undefined;
  } catch {
    return undefined;
  }
}
