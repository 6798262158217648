// `environment: 'container'`: Vitest loads this package's default export. A thin adapter:
// the file's sandbox and its teardown order live in src/session/.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Environment } from 'vitest/runtime';
import { assertSupportedNode } from '../node-version.ts';
import { packageRoot } from '../path.ts';
import { FILE_SANDBOX } from '../current.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { FileSandbox, mergeOptions } from '../session/file-sandbox.ts';
import { prewarmRuntime } from '../runtime/launch.ts';
import { hostInfo } from '../runtime/host.ts';
import { assertSupportedVitest, runningVitest } from './version.ts';
import { onWorkerState } from './worker-state.ts';
import { setupStub } from './setup-stub.ts';

// What the setup file runs: next to this module in the repository (.ts); its own entry of the bundle once built.
export const fileSetupModule = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./file-setup.ts', import.meta.url)) : join(packageRoot(), 'dist', 'vitest', 'file-setup.js');

function containerOptions(options: Record<string, unknown> | undefined): ContainerOptions {
  return (options?.container ?? {}) as ContainerOptions;
}

/** The file's sandbox, and what it needs to know of Vitest's config to merge a file's options over it. */
export class VitestFileSandbox extends FileSandbox {
  fileOptions: ContainerOptions = {};
  configOptions: ContainerOptions = {};
  optionsFor(_file: string): ContainerOptions {
    return mergeOptions(this.configOptions, this.fileOptions);
  }
}

const environment: Environment = {
  name: 'container',
  viteEnvironment: 'ssr',
  async setup(global, options) {
    assertSupportedNode();
    assertSupportedVitest(runningVitest(), "environment: 'container'");
    // The spawner's own start (one fork of this worker) overlaps Vitest's loading of the test file.
    prewarmRuntime(hostInfo().runRoot, { testWorker: true });
    const sandbox = new VitestFileSandbox();
    sandbox.fileOptions = containerOptions(options);
    sandbox.configOptions = sandbox.fileOptions;
    global[FILE_SANDBOX] = sandbox;
    // Most files have no options of their own, so the options given here are usually the
    // final ones: start now, and let start() below adopt it (or replace it) once they are known.
    sandbox.startEarly(sandbox.fileOptions);
    // setup() gets only the file's options (a docblock's replace the config's) and not the file:
    // Vitest's worker state, provided right after setup(), has both.
    const setupFile = setupStub(fileSetupModule);
    const stopWatching = onWorkerState((state) => {
      sandbox.configOptions = containerOptions(state.config.environmentOptions);
      sandbox.setRoot(state.config.root);
      if (!state.config.setupFiles.includes(setupFile)) state.config.setupFiles = [setupFile, ...state.config.setupFiles];
      // Start now, while Vitest loads the test file; the setup file waits for it.
      const file = state.filepath ?? state.ctx?.files?.[0]?.filepath;
      if (file) void sandbox.start(sandbox.optionsFor(file), file).catch(() => {});
    });
    return {
      async teardown(g) {
        stopWatching();
        await sandbox.teardown();
        delete g[FILE_SANDBOX];
      },
    };
  },
};

export default environment;
