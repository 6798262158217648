// `environment: 'container'`: Vitest loads this package's default export. A thin adapter:
// the file's sandbox and its teardown order live in src/session/.
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Environment } from 'vitest/runtime';
import { packageRoot } from '../path.ts';
import { assertSupportedNode } from '../node-version.ts';
import { FILE_SANDBOX, type FileSandboxHandle } from '../current.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import type { FileResources } from '../session/file-sandbox.ts';
import { mergeOptions } from '../session/merge-options.ts';
import type { Container } from '../runtime/container.ts';
import { testRunOwner } from '../runtime/run-owner.ts';
import { loadLocalRuntime, RemoteFileSandbox, type FileSandboxBackend } from '../service/remote-sandbox.ts';
import { serviceFor } from '../service/client.ts';
import { hostRunRoot } from '../runtime/host.ts';
import { assertSupportedVitest, runningVitest } from './version.ts';
import { currentWorkerState, onWorkerState } from './worker-state.ts';
import { setupStub } from './setup-stub.ts';

// The setup file: next to this module in the repository (.ts); its own entry of the bundle once built.
const packagedSetupFile = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./file-setup.ts', import.meta.url)) : join(packageRoot(), 'dist', 'vitest', 'file-setup.js');

declare module 'vitest' {
  interface TaskMeta {
    container?: FileResources;
  }
}

function containerOptions(options: Record<string, unknown> | undefined): ContainerOptions {
  return (options?.container ?? {}) as ContainerOptions;
}

function importsThisPackage(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').includes('vitest-environment-container');
  } catch {
    return false;
  }
}

/**
 * Where the file's sandbox is started. A forked test worker has the run's sandbox service start
 * it (src/service/): a warm process does in a few ms what costs a fresh worker 60-90 ms of CPU,
 * and the worker then loads none of the runtime unless its tests use it. Anywhere else (worker
 * threads; VITEST_CONTAINER_SERVICE=0) the worker starts it itself.
 */
function fileSandboxBackend(runRoot: string): FileSandboxBackend {
  const owner = testRunOwner();
  if (owner !== undefined && process.env.VITEST_CONTAINER_SERVICE !== '0') return new RemoteFileSandbox(serviceFor(runRoot, owner));
  // Its spawner's start (the run's shared one) overlaps Vitest's loading of the test file (see loadLocalRuntime).
  return new (loadLocalRuntime().FileSandbox)();
}

/** The file's sandbox as Vitest's environment drives it, and what it needs to know of Vitest's config to merge a file's options over it. */
export class VitestFileSandbox implements FileSandboxHandle {
  fileOptions: ContainerOptions = {};
  configOptions: ContainerOptions = {};
  readonly backend: FileSandboxBackend;

  constructor(backend: FileSandboxBackend) {
    this.backend = backend;
  }

  get container(): Container | undefined {
    return this.backend.container;
  }

  get ready(): Promise<Container> {
    return this.backend.ready;
  }

  optionsFor(_file: string): ContainerOptions {
    return mergeOptions(this.configOptions, this.fileOptions);
  }

  /**
   * Runs in each test file's context before the file itself (the setup file calls it): the
   * file's container is started from the merged options first, and checked (OOM, early exit)
   * after the file's last test.
   */
  async fileSetup(): Promise<void> {
    const file = currentWorkerState()?.filepath;
    if (!file) return;
    await this.backend.start(this.optionsFor(file), file);
    // A file that imports this package uses its container: have it ready before the file's first
    // test rather than on the test's clock (it loads the runtime). Files that never do, never load it.
    if (importsThisPackage(file)) void this.backend.container;
    // Imported here, not at the top: this module is also the package's main entry, which Jest
    // projects import without Vitest installed. Vitest has it loaded by now.
    const { afterAll } = await import('vitest');
    afterAll(async ({}, suite) => {
      await this.backend.finish(file, (resources) => { suite.meta.container = resources; });
    });
  }
}

const environment: Environment = {
  name: 'container',
  viteEnvironment: 'ssr',
  async setup(global, options) {
    assertSupportedNode();
    assertSupportedVitest(runningVitest(), "environment: 'container'");
    const sandbox = new VitestFileSandbox(fileSandboxBackend(hostRunRoot()));
    sandbox.fileOptions = containerOptions(options);
    sandbox.configOptions = sandbox.fileOptions;
    global[FILE_SANDBOX] = sandbox;
    // Most files have no options of their own, so the options given here are usually the
    // final ones: start now, and let start() below adopt it (or replace it) once they are known.
    sandbox.backend.startEarly(sandbox.fileOptions);
    // setup() gets only the file's options (a docblock's replace the config's) and not the file:
    // Vitest's worker state, provided right after setup(), has both.
    const stopWatching = onWorkerState((state) => {
      sandbox.configOptions = containerOptions(state.config.environmentOptions);
      sandbox.backend.setRoot(state.config.root);
      // One file per worker: the packaged setup file. Several: one that Vitest runs again for each (setup-stub.ts).
      const setupFile = state.config.isolate === false ? setupStub() : packagedSetupFile;
      if (!state.config.setupFiles.includes(setupFile)) state.config.setupFiles = [setupFile, ...state.config.setupFiles];
      // Start now, while Vitest loads the test file; the setup file waits for it.
      const file = state.filepath ?? state.ctx?.files?.[0]?.filepath;
      if (file) void sandbox.backend.start(sandbox.optionsFor(file), file).catch(() => {});
    });
    return {
      async teardown(g) {
        stopWatching();
        await sandbox.backend.teardown();
        delete g[FILE_SANDBOX];
      },
    };
  },
};

export default environment;
