// Sandboxes started ahead by the run's sandbox service. Most test files of a run ask for a
// sandbox from the same options (the config's), so when one file's sandbox is started, the
// service starts the next one too, while that file's tests run: the next file that asks with
// the same options takes it at once, instead of waiting for its own start. A spare is a
// sandbox nobody has used: the same image, options and working directory as a fresh one,
// only started earlier. What is never taken goes when the service ends (the run), as every
// sandbox of the process does (container.ts's exit hook), or once no test file has been
// running for a few seconds (watch mode waiting for a change holds no spare).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Container } from '../runtime/container.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { startContainer } from '../runtime/start.ts';
import { seededImages } from '../seed/provide.ts';
import { logger } from '../log.ts';

const log = logger('service');

/** Option sets with a spare at once: a run whose files take turns between a few keeps each warm; more than that, the oldest goes. */
const MAX_KINDS = 2;
/** How long spares outlive the last running test file: a run's next worker asks well within it, even on a loaded machine or in an emulated guest. */
const IDLE_MS = 15_000;
/** How long the end of the run waits for spares still starting. */
const SETTLE_MS = 5000;

interface Spare {
  container: Promise<Container>;
  /** Settled: the container if it started. */
  started?: Container;
  failed?: boolean;
}

/**
 * Whether a sandbox started now is the one a later file would get. Not when something it takes
 * from the host at its start may still change while the file before runs: files and directories
 * copied in, bind mounts (a file's mount pins what it was when mounted), a seccomp profile read
 * from a path, an image asked for anew each time (`pull: 'always'`). Nor with a fixed host port,
 * which the running file's sandbox holds: a spare could never get it.
 */
function spareable(options: ContainerOptions): boolean {
  return !options.directories?.length && !options.files?.some((f) => f.source !== undefined) && !options.mounts?.length
    && !(typeof options.seccomp === 'string' && options.seccomp !== 'default' && options.seccomp !== 'unconfined')
    && options.pull !== 'always' && !options.ports?.some((p) => typeof p === 'object' && !!p.hostPort);
}

/** Sandboxes with the same key are interchangeable: the options (without waits) and the seeded images they may name. */
function keyOf(options: ContainerOptions): string {
  const seeded = typeof options.image === 'string' && options.image.startsWith('seeded:') ? seededImages() : {};
  return JSON.stringify([options, seeded]);
}

function discard(spare: Spare): void {
  spare.container.then((c) => c.stop()).catch(() => {});
}

export class Spares {
  /** By key, in order of last use (a Map keeps insertion order: re-inserted on use). */
  readonly #spares = new Map<string, Spare>();
  readonly #start: (options: ContainerOptions) => Promise<Container>;
  /** Spares still starting (the run's end waits for them: until started, no exit hook knows them). */
  readonly #starting = new Set<Promise<unknown>>();
  #runningFiles = 0;
  #idle: NodeJS.Timeout | undefined;
  /** No file has been running for IDLE_MS: no spare is started until one runs again. */
  #paused = false;

  constructor(start: (options: ContainerOptions) => Promise<Container> = startContainer) {
    this.#start = start;
  }

  /**
   * A sandbox for `options` (no waitFor: the caller waits): a spare if one was started for the same
   * options and is still usable, else a new one. Then another spare is started for the next file,
   * unless `early`: a worker's first guess at its file's options (without the config's, when the file
   * has options of its own) is no file's, unless adopted() says so.
   */
  start(options: ContainerOptions, { early }: { early: boolean }): Promise<Container> {
    const key = keyOf(options);
    const spare = this.#spares.get(key);
    this.#spares.delete(key);
    const usable = spare && !spare.failed && (spare.started === undefined || spare.started.running);
    if (spare && !usable) discard(spare);
    const container = usable ? spare.container : this.#start(options);
    log('%s a sandbox for %o', usable ? 'a spare is' : 'no spare:', options);
    if (!early) this.#next(container, key, options);
    return container;
  }

  /** An early start had the file's options after all: the next file's spare starts too. */
  adopted(options: ContainerOptions, container: Promise<Container>): void {
    this.#next(container, keyOf(options), options);
  }

  /**
   * The next spare starts once this sandbox is up: never two starts of the same options at once,
   * and none at all after a start that failed (it would only fail again).
   */
  #next(current: Promise<unknown>, key: string, options: ContainerOptions): void {
    if (spareable(options)) void current.then(() => this.#prepare(key, options), () => {});
  }

  /** A test file began (its worker asked for its sandbox). */
  fileStarted(): void {
    this.#runningFiles++;
    this.#paused = false;
    clearTimeout(this.#idle);
  }

  /** A test file ended: with none running for a while, the run is over or watch mode waits for a change. */
  fileEnded(): void {
    if (--this.#runningFiles > 0) return;
    this.#idle = setTimeout(() => this.#clear(), IDLE_MS).unref();
  }

  /** Resolves once no spare is starting any more (at most SETTLE_MS). */
  async settled(): Promise<void> {
    await Promise.race([Promise.allSettled([...this.#starting]), sleep(SETTLE_MS, undefined, { ref: false })]);
  }

  #clear(): void {
    this.#paused = true;
    for (const spare of this.#spares.values()) discard(spare);
    this.#spares.clear();
  }

  #prepare(key: string, options: ContainerOptions): void {
    if (this.#paused || this.#spares.has(key)) return;
    const spare: Spare = { container: this.#start(options) };
    this.#starting.add(spare.container);
    spare.container.then((c) => { spare.started = c; }, (err: unknown) => {
      spare.failed = true;
      log('a spare failed to start: %o', err);
    }).finally(() => this.#starting.delete(spare.container));
    this.#spares.set(key, spare);
    for (const [oldest, old] of this.#spares) {
      if (this.#spares.size <= MAX_KINDS) break;
      this.#spares.delete(oldest);
      discard(old);
    }
  }
}
