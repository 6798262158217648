// One Vitest worker process, run inside its own sandbox: our worker entry
// (worker-entry.ts, on Vitest's public worker API) started as the sandbox's main
// process, talking to Vitest over a Node IPC channel that the runtime passes through.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import type { PoolOptions, PoolWorker, WorkerRequest } from 'vitest/node';
import { OutOfMemoryError, SandboxError } from '../errors.ts';
import { logger } from '../log.ts';
import { defaultCacheDir } from '../image/index.ts';
import { cgroupDriver } from '../runtime/cgroups/index.ts';
import type { Container } from '../runtime/container.ts';
import type { ContainerOptions, MountOption } from '../runtime/options.ts';
import { CGROUP_PARENT_ENV, normalizeOptions } from '../runtime/options.ts';
import { pidNamespaceOf, reapNamespace } from '../runtime/reaper.ts';
import { POOL_WORKER_ENV, startSandbox } from '../runtime/start.ts';
import { hostInfo, RUN_ROOT_ENV } from '../runtime/host.ts';
import { packageRoot } from '../path.ts';
import { VITEST_DIST_ENV } from '../vitest/version.ts';
import { isHostWriteRequest, performHostWrite } from './host-writes.ts';

const log = logger('pool');

/** What each worker sandbox gets: limits and extra mounts. The image is always the host's file tree. */
export type PoolSandboxOptions = Pick<ContainerOptions, 'memory' | 'cpus' | 'pids' | 'cpuset' | 'mounts' | 'tmpfsSize' | 'cgroupParent'>;

export const POOL_NAME = 'container';

// The worker's entry: next to this module in the repository (.ts); its own entry of the bundle once built.
const workerEntry = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./worker-entry.ts', import.meta.url)) : join(packageRoot(), 'dist', 'pool', 'worker-entry.js');

function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${+(n / 2 ** 30).toFixed(2)} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

export class ContainerPoolWorker implements PoolWorker {
  readonly name = POOL_NAME;
  // Code travels over IPC: the worker's /tmp is its own, so Vitest's on-disk transform cache would not be seen.
  readonly cacheFs = false;
  readonly #options: PoolOptions;
  readonly #sandboxOptions: PoolSandboxOptions;
  readonly #errors = new EventEmitter();
  readonly #wrappedListeners = new Map<(...args: unknown[]) => void, (...args: unknown[]) => void>();
  #container: Container | undefined;
  #files: string[] = [];
  #pidNamespace = '0';
  readonly #stdout: Writable;
  readonly #stderr: Writable;

  constructor(options: PoolOptions, sandbox: PoolSandboxOptions) {
    this.#options = options;
    this.#sandboxOptions = sandbox;
    this.#stdout = options.project.vitest.logger.outputStream as Writable;
    this.#stderr = options.project.vitest.logger.errorStream as Writable;
  }

  get #cgroupParent(): string {
    return normalizeOptions(this.#sandboxOptions).cgroupParent;
  }

  get #sandbox(): Container {
    if (!this.#container) throw new SandboxError('POOL_WORKER_NOT_STARTED', 'the pool worker sandbox is not running');
    return this.#container;
  }

  /**
   * Host paths the worker must write for real: the image cache (sandboxes it starts unpack into
   * it) and, with --coverage on Vitest 5, the directory where workers write their raw coverage
   * (Vitest 4.1 sends it over the channel instead). Everything else it writes is throwaway.
   */
  #writableMounts(): MountOption[] {
    const mounts: MountOption[] = [];
    const cache = defaultCacheDir();
    if (existsSync(cache)) mounts.push({ source: cache, target: cache });
    const coverage = this.#options.project.serializedConfig.coverage as { enabled?: boolean; coverageFilesDirectory?: string };
    if (coverage.enabled && coverage.coverageFilesDirectory && existsSync(coverage.coverageFilesDirectory)) {
      mounts.push({ source: coverage.coverageFilesDirectory, target: coverage.coverageFilesDirectory });
    }
    return mounts;
  }

  async start(): Promise<void> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#options.env)) if (v !== undefined) env[k] = v;
    Object.assign(env, {
      NODE_CHANNEL_FD: '5',
      NODE_CHANNEL_SERIALIZATION_MODE: 'advanced',
      // '1': this worker runs one file, and the sandboxes it starts share its localhost. 'shared'
      // (isolate: false): it runs file after file, and a finished file's sandbox may still be
      // running (see session/release.ts), so each gets a network of its own.
      [POOL_WORKER_ENV]: this.#options.project.config.isolate === false ? 'shared' : '1',
      // The worker's sandbox has a tmpfs of its own at this path for the sandboxes it starts.
      [RUN_ROOT_ENV]: hostInfo().runRoot,
      // The sandboxes the file starts go under the pool's parent: stop() reaps them there.
      [CGROUP_PARENT_ENV]: this.#cgroupParent,
      [VITEST_DIST_ENV]: this.#options.distPath,
      HOME: env.HOME ?? homedir(),
    });
    const options: ContainerOptions = {
      ...this.#sandboxOptions,
      image: 'host',
      cmd: [process.execPath, ...this.#options.execArgv, workerEntry],
      env,
      workdir: this.#options.project.config.root,
      mounts: [...this.#writableMounts(), ...(this.#sandboxOptions.mounts ?? [])],
      // Vitest stops workers itself; a test file may legitimately run for long.
      stopTimeout: 0,
    };
    this.#container = await startSandbox(options, { ipc: true, privileged: true });
    this.#pidNamespace = pidNamespaceOf(this.#container.pid);
    log('worker sandbox %s started (pid %d)', this.#container.id, this.#container.pid);
    const logs = this.#container.logStream();
    logs.pipe(this.#stdout, { end: false });
    this.#container.channel.on('error', (err) => this.#errors.emit('error', err));
    // The worker's snapshot writes (see host-writes.ts).
    const channel = this.#container.channel;
    const root = this.#options.project.config.root;
    channel.on('message', (message: unknown) => {
      if (isHostWriteRequest(message) && channel.connected) channel.send(performHostWrite(root, message));
    });
  }

  on(event: string, callback: (...args: any[]) => void): void {
    if (event === 'error') return void this.#errors.on('error', callback);
    if (event === 'message') {
      // Vitest sees its own messages only.
      const filtered = (message: unknown) => {
        if (!isHostWriteRequest(message)) callback(message);
      };
      this.#wrappedListeners.set(callback, filtered as (...args: unknown[]) => void);
      return void this.#sandbox.channel.on(event, filtered);
    }
    if (event !== 'exit') return void this.#sandbox.channel.on(event, callback);
    // One clear error instead of "worker exited unexpectedly" when the kernel killed it for memory.
    const wrapped = (code: number | null, signal: NodeJS.Signals | null) => {
      void this.#explainExit().then((error) => {
        if (error && this.#errors.listenerCount('error')) this.#errors.emit('error', error);
        else callback(code, signal);
      });
    };
    this.#wrappedListeners.set(callback, wrapped as (...args: unknown[]) => void);
    this.#sandbox.channel.on('exit', wrapped);
  }

  off(event: string, callback: (...args: any[]) => void): void {
    if (event === 'error') return void this.#errors.off('error', callback);
    const wrapped = this.#wrappedListeners.get(callback);
    this.#wrappedListeners.delete(callback);
    this.#container?.channel.off(event, (wrapped ?? callback) as (...args: any[]) => void);
  }

  async #explainExit(): Promise<Error | undefined> {
    const c = this.#container;
    if (!c || c.stopRequested) return undefined;
    const exit = await c.wait();
    if (!exit.oomKilled) return undefined;
    const limit = c.options.memoryBytes;
    return new OutOfMemoryError('OOM_KILLED',
      `killed: exceeded memory limit ${limit ? formatBytes(limit) : '(none set)'} while running ${this.#files.map((f) => f.replace(`${this.#options.project.config.root}/`, '')).join(', ')}`,
      { fix: 'raise `memory` in containerPool({ memory }), or find what grows in this file' });
  }

  send(message: WorkerRequest): void {
    if (message.type === 'run' || message.type === 'collect') this.#files = message.context.files.map((f) => f.filepath);
    this.#sandbox.channel.send(message);
  }

  deserialize(data: unknown): unknown {
    return data;
  }

  async stop(): Promise<void> {
    const c = this.#container;
    if (!c) return;
    await c.stop({ timeout: 0 });
    // Sandboxes the file started from inside died with the worker; their cgroups are ours to remove.
    await reapNamespace(cgroupDriver(), this.#cgroupParent, this.#pidNamespace);
  }
}
