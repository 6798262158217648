// Sandboxes started ahead by the run's sandbox service. Most test files of a run ask for a
// sandbox from the same options (the config's), so when one file's sandbox is started, the
// service starts the next one too, while that file's tests run: the next file that asks with
// the same options takes it at once, instead of waiting for its own start. A spare is a
// sandbox nobody has used: the same image, options and working directory as a fresh one,
// only started earlier. What is never taken goes when the service ends (the run), as every
// sandbox of the process does (container.ts's exit hook), or once no test worker has been
// connected for a moment (server.ts: watch mode waiting for a change holds no spare).
import type { Container } from '../runtime/container.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { startContainer } from '../runtime/start.ts';
import { seededImages } from '../seed/provide.ts';
import { logger } from '../log.ts';

const log = logger('service');

/** Option sets with a spare at once: a run whose files take turns between a few keeps each warm; more than that, the oldest goes. */
const MAX_KINDS = 2;

interface Spare {
  container: Promise<Container>;
  /** Settled: the container if it started, undefined if it failed. */
  settled?: Container | undefined;
  failed?: boolean;
}

/**
 * Whether a sandbox started now is the one a later file would get. Not when it copies host files
 * or directories in (`files` with a `source`, `directories`): those are read at the start, and the
 * file before may still change them.
 */
function spareable(options: ContainerOptions): boolean {
  return !options.directories?.length && !options.files?.some((f) => f.source !== undefined);
}

/** Sandboxes with the same key are interchangeable: the options (without waits) and the seeded images they may name. */
function keyOf(options: ContainerOptions): string {
  const seeded = typeof options.image === 'string' && options.image.startsWith('seeded:') ? seededImages() : {};
  return JSON.stringify([options, seeded]);
}

export class Spares {
  /** By key, in order of last use (a Map keeps insertion order: re-inserted on use). */
  readonly #spares = new Map<string, Spare>();
  readonly #start: (options: ContainerOptions) => Promise<Container>;

  constructor(start: (options: ContainerOptions) => Promise<Container> = startContainer) {
    this.#start = start;
  }

  /**
   * A sandbox for `options` (no waitFor: the caller waits): a spare if one was started for the same
   * options and is still usable, else a new one; either way another spare is started for the next file.
   */
  start(options: ContainerOptions): Promise<Container> {
    const key = keyOf(options);
    const spare = this.#spares.get(key);
    this.#spares.delete(key);
    const usable = spare && !spare.failed && (spare.settled === undefined || spare.settled.running);
    if (spare && !usable) void spare.container.then((c) => c.stop(), () => {});
    const container = usable ? spare.container : this.#start(options);
    log('%s a sandbox for %o', usable ? 'a spare is' : 'no spare:', options);
    // The next spare starts once this one is up: never two starts of the same options at once,
    // and none at all after a start that failed (it would only fail again).
    if (spareable(options)) void container.then(() => this.#prepare(key, options), () => {});
    return container;
  }

  /** Stops every spare (no test worker has been connected for a while: watch mode waiting for a change). */
  clear(): void {
    for (const spare of this.#spares.values()) void spare.container.then((c) => c.stop(), () => {});
    this.#spares.clear();
  }

  #prepare(key: string, options: ContainerOptions): void {
    if (this.#spares.has(key)) return;
    const spare: Spare = { container: this.#start(options) };
    spare.container.then((c) => { spare.settled = c; }, (err: unknown) => {
      spare.failed = true;
      log('a spare failed to start: %o', err);
    });
    this.#spares.set(key, spare);
    for (const [oldest, old] of this.#spares) {
      if (this.#spares.size <= MAX_KINDS) break;
      this.#spares.delete(oldest);
      void old.container.then((c) => c.stop(), () => {});
    }
  }
}
