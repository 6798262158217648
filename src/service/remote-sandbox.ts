// A test file's sandbox started by the run's sandbox service (server.ts) on behalf of this
// worker: the same steps as a FileSandbox (early start, start, finish, teardown), each one
// request. Options that cannot cross a socket unchanged (a RegExp in waitFor, file contents
// as bytes) or that name a network (networks are per process) are served by a FileSandbox
// in this process instead, as is everything when there is no service.
import { basename, dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Container } from '../runtime/container.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import type { FileResources, FileSandbox } from '../session/file-sandbox.ts';
import { ContainerError } from '../errors.ts';
import { packageRoot } from '../path.ts';
import { seededImage } from '../seed/provide.ts';
import { peekThreadState } from '../thread-state.ts';
import type { ServiceClient } from './client.ts';
import { isPlainData, type SandboxDescription } from './protocol.ts';
import type { Mirror } from './mirror.ts';

/**
 * The rest of the runtime (local-runtime.ts), loaded on first need by require(): the `container`
 * proxy's properties are read synchronously, and an environment's teardown cannot import() (Vitest
 * may load the environment through its module runner, whose imports ask Vitest's main process,
 * which no longer answers then). Node (22.12+) require()s an ES module, sharing its instances with
 * import(). Next to this module in the repository; an entry of the bundle once built.
 */
export function loadLocalRuntime(): typeof import('./local-runtime.ts') {
  if (localRuntime) return localRuntime;
  const file = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./local-runtime.ts', import.meta.url)) : join(packageRoot(), 'dist', 'service', 'local-runtime.js');
  localRuntime = createRequire(import.meta.url)(file) as typeof import('./local-runtime.ts');
  // What the worker launches itself (execs, file copies, its tests' sandboxes) goes through the
  // run's shared spawner, as the environment's own launches always have: no fork of this worker.
  localRuntime.prewarmRuntime(localRuntime.hostInfo().runRoot, { testWorker: true });
  return localRuntime;
}

let localRuntime: typeof import('./local-runtime.ts') | undefined;

/** What the Vitest environment drives: a FileSandbox here, or this. */
export interface FileSandboxBackend {
  container: Container | undefined;
  ready: Promise<Container>;
  startEarly(options: ContainerOptions): void;
  /** Resolves once the sandbox is ready (not with it: a worker whose tests never use it never makes its mirror). */
  start(options: ContainerOptions, file?: string): Promise<unknown>;
  finish(file: string, record?: (resources: FileResources) => void): Promise<FileResources | undefined>;
  teardown(): Promise<void>;
  setRoot(root: string): void;
}

function servable(options: ContainerOptions): boolean {
  return options.network === undefined && isPlainData(options);
}

/**
 * `image: 'seeded:NAME'` as this worker knows it: the reference the run's globalSetup handed
 * this process (which, in watch mode, changes between reruns; the service's own is older).
 */
function seededFor(options: ContainerOptions): Record<string, string> | undefined {
  const name = typeof options.image === 'string' && options.image.startsWith('seeded:') ? options.image.slice('seeded:'.length) : undefined;
  try {
    return name === undefined ? undefined : { [name]: seededImage(name) };
  } catch {
    return undefined; // not handed over: the service says so, with the fix
  }
}

interface RemoteStart {
  key: string;
  options: ContainerOptions;
  /** undefined: this start went to the local FileSandbox. */
  description: Promise<SandboxDescription | undefined>;
  /** The description, once the service has answered. */
  started?: SandboxDescription;
  mirror?: Mirror;
}

export class RemoteFileSandbox implements FileSandboxBackend {
  readonly #service: Promise<ServiceClient | undefined>;
  #client: ServiceClient | undefined;
  /** For what the service cannot serve; made (and the runtime loaded) on first need. */
  #local: FileSandbox | undefined;
  #current: RemoteStart | undefined;
  #root = process.cwd();

  constructor(service: Promise<ServiceClient | undefined>) {
    this.#service = service.then((client) => (this.#client = client));
  }

  #localSandbox(): FileSandbox {
    this.#local ??= new (loadLocalRuntime().FileSandbox)();
    this.#local.setRoot(this.#root);
    return this.#local;
  }

  setRoot(root: string): void {
    this.#root = root;
    this.#local?.setRoot(root);
  }

  startEarly(options: ContainerOptions): void {
    if (!servable(options)) return;
    void this.#service.then((service) => {
      if (service) return service.request('early', { options, seeded: seededFor(options) });
      this.#localSandbox().startEarly(options);
    }).catch(() => {});
  }

  start(options: ContainerOptions, file?: string): Promise<unknown> {
    const key = JSON.stringify([options, file]);
    if (this.#current?.key !== key) {
      const current: RemoteStart = { key, options, description: Promise.resolve(undefined) };
      current.description = (async () => {
        const service = servable(options) ? await this.#service : undefined;
        if (!service) {
          await this.#localSandbox().start(options, file);
          return undefined;
        }
        // A sandbox of an earlier file in this worker (isolate: false) that was started here is done with.
        if (this.#local) await this.#local.teardown();
        return (current.started = await service.request<SandboxDescription>('start', { options, file, root: this.#root, seeded: seededFor(options) }));
      })();
      current.description.catch(() => {}); // surfaced through ready
      this.#current = current;
    }
    return this.#current.description;
  }

  /** The file's container: made here, from what the service sent, the first time test code asks for it. */
  get container(): Container | undefined {
    const current = this.#current;
    if (!current?.started || !this.#client) return this.#local?.container;
    current.mirror ??= loadLocalRuntime().mirrorContainer(current.started, current.options, this.#client);
    return current.mirror.container;
  }

  get ready(): Promise<Container> {
    const current = this.#current;
    if (!current) return Promise.reject(new ContainerError('CONTAINER_NOT_STARTED', "the test file's container was not started"));
    return current.description.then((remote) => (remote ? this.container! : this.#localSandbox().ready));
  }

  async finish(file: string, record?: (resources: FileResources) => void): Promise<FileResources | undefined> {
    const current = this.#current;
    if (!current || !(await current.description.catch(() => undefined))) return this.#local?.finish(file, record);
    try {
      const resources = await this.#client!.request<FileResources | undefined>('finish', { file });
      if (resources) record?.(resources);
      return resources;
    } catch (err) {
      const resources = (err as { resources?: FileResources }).resources;
      if (resources) record?.(resources);
      throw err;
    }
  }

  async teardown(): Promise<void> {
    this.#current = undefined;
    const service = await this.#service;
    await Promise.all([
      // The service releases what it started for this worker (an early start included)...
      service?.request<{ kept: string[] }>('teardown').then(({ kept }) => killKeptAtExit(kept), () => {}),
      // What this worker started itself: the tests' own sandboxes and networks, or everything, when local.
      this.#local || peekThreadState<Set<unknown>>('live')?.size ? this.#localSandbox().teardown() : undefined,
    ]);
  }
}

const killedAtExit = new Set<string>();

/**
 * ...except the sandboxes a client of this worker is still connected to (release.ts): the
 * service keeps them, and this worker kills them (by their cgroups) the moment it ends, as it
 * would its own, so that none outlives the run's last worker.
 */
function killKeptAtExit(cgroupPaths: string[]): void {
  if (!cgroupPaths.length) return;
  const { killAtExit, cgroupDriver } = loadLocalRuntime();
  const driver = cgroupDriver();
  if (!driver) return;
  for (const path of cgroupPaths) {
    if (killedAtExit.has(path)) continue;
    killedAtExit.add(path);
    const cgroup = driver.open(dirname(path), basename(path));
    killAtExit({
      destroyNow: () => {
        try {
          cgroup.removeNow();
        } catch {
          // gone already
        }
      },
    });
  }
}
