// The run's sandbox service: one warm Node process per test run that starts, checks and
// stops the test files' sandboxes for Vitest's workers. A worker is a fresh process for
// every test file, so everything it runs is cold: loading and running the runtime there
// cost 60-90 ms of CPU per file, against a few ms here (bench/README-runner.md). A worker
// connects, asks for its file's sandbox, and is sent what it needs to use it itself
// (mirror.ts); the sandbox is this process's, and goes when the worker is done with it,
// or when the worker ends, whichever comes first.
import { createServer, type Server, type Socket } from 'node:net';
import { renameSync, rmSync, statSync } from 'node:fs';
import type { Container } from '../runtime/container.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { FileSandbox, type FileResources } from '../session/file-sandbox.ts';
import { prewarmRuntime, runEnded } from '../runtime/launch.ts';
import { hostInfo } from '../runtime/host.ts';
import { logger } from '../log.ts';
import { handSeededImage } from '../seed/provide.ts';
import { onJsonLines } from '../runtime/events.ts';
import { serializeError, type SandboxDescription } from './protocol.ts';
import { Spares } from './spares.ts';

const log = logger('service');

/** One test worker's connection: its file's sandbox, and what it keeps until the worker ends. */
class Session {
  readonly #socket: Socket;
  readonly #sandbox: FileSandbox;
  /** Sandboxes released while a client was still connected to them: stopped when the worker ends. */
  readonly #kept = new Set<Container>();
  readonly #relays = new Set<() => void>();
  readonly #spares: Spares | undefined;
  /** Between this worker's first start request and its teardown: a file is running (spares.ts keeps spares only then). */
  #running = false;

  constructor(socket: Socket, spares: Spares | undefined) {
    this.#socket = socket;
    this.#spares = spares;
    this.#sandbox = new FileSandbox({ onlyOwn: true, keep: (c) => this.#kept.add(c), ...(spares ? { start: (o, how) => spares.start(o, how), adopted: (o, c) => spares.adopted(o, c) } : {}) });
    socket.on('error', () => {});
    onJsonLines<Record<string, unknown>>(socket, (m) => void this.#handle(m));
    socket.once('close', () => void this.#close());
    this.#send({ hello: { cwd: process.cwd() } });
  }

  #send(message: unknown): void {
    if (!this.#socket.destroyed) this.#socket.write(`${JSON.stringify(message)}\n`);
  }

  async #handle(m: Record<string, unknown>): Promise<void> {
    // What the file's sandbox used, also when finishing it failed (the reporters show both).
    let resources: FileResources | undefined;
    try {
      const value = await this.#run(m, (r) => { resources = r; });
      this.#send({ re: m.id, value });
    } catch (err) {
      this.#send({ re: m.id, error: serializeError(err), ...(resources ? { value: resources } : {}) });
    }
  }

  #engaged(running: boolean): void {
    if (running === this.#running) return;
    this.#running = running;
    if (running) this.#spares?.fileStarted();
    else this.#spares?.fileEnded();
  }

  async #run(m: Record<string, unknown>, record: (r: FileResources) => void): Promise<unknown> {
    const sandbox = this.#sandbox;
    // Seeded images as the worker knows them: handed to the whole run by its globalSetup, renewed on a watch-mode rerun.
    for (const [name, reference] of Object.entries((m.seeded ?? {}) as Record<string, string>)) handSeededImage(name, reference);
    switch (m.op) {
      case 'early':
        this.#engaged(true);
        sandbox.startEarly(m.options as ContainerOptions);
        return undefined;
      case 'start': {
        this.#engaged(true);
        sandbox.setRoot(m.root as string);
        return describe(await sandbox.start(m.options as ContainerOptions, m.file as string));
      }
      case 'finish':
        return sandbox.finish(m.file as string, record);
      case 'teardown':
        this.#engaged(false);
        await sandbox.teardown();
        // What a client of the worker is still connected to is kept (here, or when an earlier file of
        // the worker was done): the worker ends it when it ends itself.
        return { kept: [...this.#kept].filter((c) => c.running).map((c) => c.cgroupPath).filter(Boolean) };
      case 'attach':
        this.#attach(this.#container(m.sandbox), m.seen as { events: number; logTotal: number });
        return undefined;
      case 'signal':
        this.#container(m.sandbox).kill(m.signal as number);
        return undefined;
      case 'stop':
        await this.#container(m.sandbox).stop({ timeout: m.timeout as number });
        return undefined;
      case 'resolveUser':
        return this.#container(m.sandbox).image.resolveUser(m.user as string);
      default:
        throw new Error(`unknown request ${String(m.op)}`);
    }
  }

  #container(id: unknown): Container {
    const c = this.#sandbox.container;
    if (!c || c.id !== id) throw new Error(`sandbox ${String(id)} is not this worker's`);
    return c;
  }

  /** Sends the worker what the sandbox's monitor says from now on (after what it has seen). */
  #attach(c: Container, seen: { events: number; logTotal: number }): void {
    const sandbox = c.id;
    this.#relays.add(c.relay({
      event: (e) => this.#send({ push: 'event', sandbox, e }),
      log: (chunk) => this.#send({ push: 'log', sandbox, data: chunk.toString('base64') }),
      closed: (stats) => this.#send({ push: 'closed', sandbox, stats }),
    }, seen));
  }

  /** The worker is gone: whatever it left is stopped now. */
  async #close(): Promise<void> {
    for (const stop of this.#relays) stop();
    this.#engaged(false);
    await this.#sandbox.teardown().catch((err: unknown) => log('teardown after the worker ended: %o', err));
    await Promise.all([...this.#kept].map((c) => c.stop().catch(() => {})));
  }
}

function describe(c: Container): SandboxDescription {
  const { resolveUser: _, ...image } = c.image;
  return { id: c.id, hostname: c.hostname, image, ...c.mirrorable() };
}

/**
 * Serves at `path` until the process `owner` (the test run's main process) ends. The socket is
 * bound under another name and renamed into place, so a client never finds a half-made one.
 */
export function serve(path: string, owner: number): Promise<Server> {
  prewarmRuntime(hostInfo().runRoot); // the first sandbox need not wait for this process's spawner
  // VITEST_CONTAINER_SPARES=0: no sandbox started ahead (each idle spare holds its memory until taken or the run ends).
  const spares = process.env.VITEST_CONTAINER_SPARES === '0' ? undefined : new Spares();
  const server = createServer((socket) => new Session(socket, spares));
  const staging = `${path}.${process.pid}`;
  rmSync(staging, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(staging, () => {
      renameSync(staging, path);
      const ours = statSync(path).ino;
      process.once('exit', () => {
        // Only if it is still ours: another service of the run may have replaced it.
        if (statSync(path, { throwIfNoEntry: false })?.ino !== ours) return;
        rmSync(path, { force: true });
        rmSync(`${path}.starting`, { force: true }); // the mark of the worker that started it (client.ts)
      });
      // The server keeps the process alive; the run's end ends it, and the exit hooks stop every
      // sandbox (a spare still starting is waited for first: until it has started, no hook knows it).
      void runEnded(hostInfo().runRoot, owner).then(async () => {
        await spares?.settled();
        process.exit(0);
      });
      resolve(server);
    });
  });
}
