// One test file's sandbox, for every runner (Vitest's environment, Jest's, and the
// environment inside a pool worker): started from the file's options before its first
// test, checked (OOM, early exit) after its last, and released with what the file's
// tests started and forgot when the runner is done with the file (release.ts says when
// a released sandbox actually stops).
import { relative } from 'node:path';
import { ContainerError, ContainerExitedError, OutOfMemoryError } from '../errors.ts';
import type { FileSandboxHandle } from '../current.ts';
import { liveContainers, type Container } from '../runtime/container.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { startContainer } from '../runtime/start.ts';
import { normalizeOptions } from '../runtime/options.ts';
import { waitUntilReady } from '../runtime/wait.ts';
import { logger } from '../log.ts';
import { namedNetworks } from '../net/network.ts';
import { releaseSandboxes } from './release.ts';

const log = logger('session');

/** What a test file's sandbox used, as the reporters show it (recorded after the file's last test). */
export interface FileResources {
  peakMemoryBytes: number;
  /** the sandbox's memory limit, when it has one */
  memoryLimitBytes?: number;
  cpuSeconds: number;
  oomKills: number;
  /** the sandbox's processes when the file ended (its pid 1 not counted) */
  pids?: number;
  /** forks refused at its pids limit */
  rejectedForks?: number;
  image: string;
}

function sameOptions(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function lastLines(text: string, n = 20): string {
  return text.trimEnd().split('\n').slice(-n).map((l) => `    ${l}`).join('\n') || '    (no output)';
}

/**
 * Where a FileSandbox runs. In the test's own process (the default) everything the process
 * started is the file's: the tests' sandboxes and networks go with it. In the run's sandbox
 * service (src/service/) only what it started itself is, and what a client still uses is kept
 * until that test worker ends.
 */
export interface SandboxScope {
  onlyOwn: boolean;
  /** A sandbox that a client is still connected to (see release.ts); the default keeps it until this process ends. */
  keep?: (c: Container) => void;
  /**
   * Starts a sandbox without waiting for its readiness; the default starts a new one. The service
   * hands out spares (spares.ts): `early`, the options may still change (see startEarly).
   */
  start?: (options: ContainerOptions, how: { early: boolean }) => Promise<Container>;
  /** An early start turned out to have the file's options (start() adopted it). */
  adopted?: (options: ContainerOptions, container: Promise<Container>) => void;
}

/** The options a sandbox is started from: its readiness is waited for separately (adopting an early start, a spare). */
function withoutWaits(options: ContainerOptions): ContainerOptions {
  const { waitFor: _waits, ...rest } = options;
  return rest;
}

export class FileSandbox implements FileSandboxHandle {
  container: Container | undefined;
  ready: Promise<Container>;
  readonly #scope: SandboxScope;
  /** What this FileSandbox started and has not released. */
  readonly #own = new Set<Container>();
  /** Options the running container was started with. */
  #startedWith: ContainerOptions | undefined;
  #file: string | undefined;
  #root = process.cwd();
  #early: { options: ContainerOptions; container: Promise<Container> } | undefined;

  constructor(scope: SandboxScope = { onlyOwn: false }) {
    this.#scope = scope;
    // replaced by start(); settled, so a teardown without a start never waits on it
    this.ready = Promise.reject(new ContainerError('CONTAINER_NOT_STARTED', "the test file's container was not started"));
    this.ready.catch(() => {});
  }

  /**
   * Starts a sandbox from options that may still change (Vitest tells the file's real options
   * only later): without its waits, so a sandbox started from the wrong options never blocks.
   * start() adopts it when the options turn out the same, and runs the waits then.
   */
  startEarly(options: ContainerOptions): void {
    const container = this.#track(this.#startUnwaited(options, true));
    container.catch(() => {}); // surfaced by start(), if adopted
    this.#early = { options, container };
  }

  /** Starts (or, when the options or the file changed, restarts) the container. */
  start(options: ContainerOptions, file?: string): Promise<Container> {
    if (this.#startedWith && sameOptions(this.#startedWith, options) && (!file || !this.#file || file === this.#file)) return this.ready;
    const previousReady = this.ready; // a start still in flight counts as the previous container too
    this.#startedWith = options;
    this.#file = file ?? this.#file;
    this.container = undefined;
    const early = this.#early;
    this.#early = undefined;
    const adoptable = early && sameOptions(early.options, options);
    this.ready = (async () => {
      const previous = await previousReady.catch(() => undefined);
      if (previous) {
        // Another file in the same worker (isolate: false): the last file's sandboxes are done with.
        const adopted = adoptable ? await early.container.catch(() => undefined) : undefined;
        await this.#release([...this.#releasable()].filter((c) => c !== adopted));
      }
      log('starting the sandbox for %s with %o', file ?? '(unknown file)', options);
      if (early && !adoptable) void early.container.then((unused) => unused.stop(), () => {});
      if (adoptable) this.#scope.adopted?.(withoutWaits(options), early.container);
      const c = await (adoptable ? early.container : this.#track(this.#startUnwaited(options, false)));
      const { waitFor, timeout } = normalizeOptions(options);
      await waitUntilReady(c, waitFor, timeout).catch(async (err: unknown) => {
        await c.stop({ timeout: 0 });
        throw err;
      });
      this.container = c;
      return c;
    })();
    this.ready.catch(() => {}); // surfaced where it is awaited
    return this.ready;
  }

  #startUnwaited(options: ContainerOptions, early: boolean): Promise<Container> {
    return this.#scope.start ? this.#scope.start(withoutWaits(options), { early }) : startContainer(withoutWaits(options));
  }

  #track(started: Promise<Container>): Promise<Container> {
    void started.then((c) => {
      this.#own.add(c);
      void c.wait().then(() => this.#own.delete(c));
    }, () => {});
    return started;
  }

  /** The sandboxes a finished file leaves that are this FileSandbox's to release. */
  #releasable(): Iterable<Container> {
    return this.#scope.onlyOwn ? this.#own : liveContainers;
  }

  #release(containers: Iterable<Container>): Promise<void> {
    return releaseSandboxes(containers, this.#scope.keep);
  }

  setRoot(root: string): void {
    this.#root = root;
  }

  /**
   * After the file's last test: what it used (handed to `record` first, so that a file that then fails
   * for memory is reported with its numbers too), and a clear failure if the kernel killed something for memory.
   */
  async finish(file: string, record?: (resources: FileResources) => void): Promise<FileResources | undefined> {
    const c = this.container;
    if (!c) return undefined;
    const stats = await c.stats().catch(() => undefined);
    const exit = c.running ? undefined : await c.wait();
    const where = relative(this.#root, file) || file;
    const limit = stats?.memory.limitBytes ?? c.options.memoryBytes;
    const resources: FileResources | undefined = stats && {
      peakMemoryBytes: stats.memory.peakBytes, ...(limit !== undefined ? { memoryLimitBytes: limit } : {}), cpuSeconds: stats.cpu.usageSeconds,
      oomKills: stats.oomKills, pids: stats.pids.current, rejectedForks: stats.pids.rejectedForks, image: c.options.image,
    };
    if (resources) record?.(resources);
    if ((stats && stats.oomKills > 0) || exit?.oomKilled) {
      const limit = c.options.memoryBytes;
      throw new OutOfMemoryError('OOM_KILLED',
        `killed: exceeded memory limit ${limit ? `${Math.round(limit / 1024 / 1024)} MiB` : '(none set)'} while running ${where}` +
        `${exit ? ` (the container's main process ended with code ${exit.exitCode})` : ''}\n  last output:\n${lastLines(c.logs())}`,
        { fix: 'raise the `memory` option for this file, or find what grows in it' });
    }
    if (exit && !c.stopRequested) {
      throw new ContainerExitedError('CONTAINER_EXITED_EARLY',
        `the container's main process exited with code ${exit.exitCode}${exit.signal ? ` (${exit.signal})` : ''} while running ${where}\n  last output:\n${lastLines(c.logs())}`,
        exit.exitCode);
    }
    return resources;
  }

  /** Releases the file's container and anything the file's tests started and left running (see release.ts). */
  async teardown(): Promise<void> {
    await this.ready.catch(() => undefined);
    const early = this.#early && await this.#early.container.catch(() => undefined);
    this.#early = undefined;
    await this.#release(new Set([...(early ? [early] : []), ...this.#releasable()]));
    // Networks named in options belong to the file that used them (the service takes no options with networks).
    if (!this.#scope.onlyOwn) await Promise.all([...namedNetworks().values()].map((n) => n.remove()));
    this.container = undefined;
    this.#startedWith = undefined;
  }
}
