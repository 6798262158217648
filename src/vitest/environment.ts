// `environment: 'container'`: Vitest loads this package's default export.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageAbove, packageRoot } from '../path.ts';
import type { Environment } from 'vitest/runtime';
import { FILE_SANDBOX } from '../current.ts';
import type { ContainerOptions } from '../runtime/options.ts';
import { logger } from '../log.ts';
import { FileSandbox } from './file-sandbox.ts';
import { prewarmRuntime } from '../runtime/launch.ts';
import { hostInfo } from '../runtime/host.ts';
import { onWorkerState } from './worker-state.ts';

const log = logger('vitest');

// The setup file: next to this module in the repository (.ts); its own entry of the bundle once built.
const setupFile = import.meta.url.endsWith('.ts') ? fileURLToPath(new URL('./file-setup.ts', import.meta.url)) : join(packageRoot(), 'dist', 'vitest', 'file-setup.js');

function vitestMajor(): number {
  // A worker runs Vitest's own entry file (process.argv[1]): its package.json is a few directories
  // up. Reading it is much cheaper than resolving 'vitest' (1-2 ms in every fresh worker).
  let version = packageAbove(dirname(process.argv[1] ?? '/'), 'vitest')?.json.version;
  try {
    version ??= (createRequire(import.meta.url)('vitest/package.json') as { version: string }).version;
  } catch {
    // no Vitest to be found: not one this package knows
  }
  return Number(version?.split('.')[0] ?? 0);
}

function containerOptions(options: Record<string, unknown> | undefined): ContainerOptions {
  return (options?.container ?? {}) as ContainerOptions;
}

class EnvironmentSandbox extends FileSandbox {
  fileOptions: ContainerOptions = {};
  configOptions: ContainerOptions = {};
  /** The config's options with the file's docblock options over them (Vitest itself would replace them). */
  optionsFor(_file: string): ContainerOptions {
    const merged = { ...this.configOptions, ...this.fileOptions };
    // env is the one option people extend per file rather than replace
    if (this.configOptions.env && this.fileOptions.env) merged.env = { ...this.configOptions.env, ...this.fileOptions.env };
    return merged;
  }
}

const environment: Environment = {
  name: 'container',
  viteEnvironment: 'ssr',
  async setup(global, options) {
    // The spawner's own start (one fork of this worker) overlaps Vitest's loading of the test file.
    prewarmRuntime(hostInfo().runRoot, { testWorker: true });
    const sandbox = new EnvironmentSandbox();
    sandbox.fileOptions = containerOptions(options);
    sandbox.configOptions = sandbox.fileOptions;
    global[FILE_SANDBOX] = sandbox;
    let stopWatching = () => {};
    if (vitestMajor() === 5) {
      // Most files have no options of their own, so the options given here are usually the
      // final ones: start now, and let start() below adopt it (or replace it) once they are known.
      sandbox.startEarly(sandbox.fileOptions);
      stopWatching = onWorkerState((state) => {
        sandbox.configOptions = containerOptions(state.config.environmentOptions);
        sandbox.setRoot(state.config.root);
        if (!state.config.setupFiles.includes(setupFile)) state.config.setupFiles = [setupFile, ...state.config.setupFiles];
        // Start now, while Vitest loads the test file; the setup file waits for it.
        const file = state.filepath ?? state.ctx?.files?.[0]?.filepath;
        if (file) void sandbox.start(sandbox.optionsFor(file), file).catch(() => {});
      });
    } else {
      // Not a Vitest this package knows: no merging, but a working sandbox.
      log('unsupported Vitest major version; docblock options replace config options');
      await sandbox.start(sandbox.fileOptions);
    }
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
