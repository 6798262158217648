// Bundles src/ into dist/: one file per public entry point, shared code in dist/chunks/.
// A test worker imports this package for every test file, and Node's loader pays per module
// (resolve, read, link): ~30 modules took ~17 ms per worker, the bundle ~7 ms (bench/README-runner.md).
// Types come from tsc (--emitDeclarationOnly, see package.json), their CommonJS twins from
// scripts/types-cjs.mjs.
import { defineConfig } from 'rolldown';

/** src/ modules that index.ts loads without the runtime (see src/service/remote-sandbox.ts). */
const workerModules = /[\\/]src[\\/](path|node-version|current|errors|thread-state|log|id-range|api|runtime[\\/](run-owner|reaper|bundle|host|events)|seed[\\/]provide|service[\\/](protocol|client|remote-sandbox)|session[\\/]merge-options|vitest[\\/](environment|version|worker-state|setup-stub)|image[\\/]cache-layout)\.ts$/;

const common = {
  platform: 'node',
  // Dependencies and Node's modules stay imports; only this package's own code is bundled.
  external: (id) => !id.startsWith('.') && !id.startsWith('/'),
};

export default defineConfig([
  {
    ...common,
    input: {
      index: 'src/index.ts',
      'runtime/index': 'src/runtime/index.ts',
      'jest/environment': 'src/jest/environment.ts',
      'pool/index': 'src/pool/index.ts',
      'cli/main': 'src/cli/main.ts',
      // Added to Vitest's setupFiles by path (src/vitest/environment.ts), so it is an entry of its own.
      'vitest/file-setup': 'src/vitest/file-setup.ts',
      // The pool's worker process: started by path (src/pool/worker.ts), so an entry of its own.
      'pool/worker-entry': 'src/pool/worker-entry.ts',
      // The run's sandbox service: started by path (src/service/client.ts), and what a test worker
      // loads of the runtime by path when it needs it (src/service/remote-sandbox.ts).
      'service/main': 'src/service/main.ts',
      'service/local-runtime': 'src/service/local-runtime.ts',
      // Reporters: loaded by path by the runners.
      'vitest/reporter': 'src/vitest/reporter.ts',
      'jest/reporter': 'src/jest/reporter.ts',
      // Imported on demand by the runtime (src/runtime/image.ts). Its own entry, so that the
      // bundler never places it in another entry's chunk (the CLI's), whose top-level code would
      // then run on that import.
      'image/index': 'src/image/index.ts',
    },
    output: {
      dir: 'dist',
      cleanDir: true, // no chunk of an earlier build lingers (tsc adds the .d.ts files afterwards)
      format: 'esm',
      entryFileNames: '[name].js',
      chunkFileNames: 'chunks/[name]-[hash].js',
      sourcemap: true,
      codeSplitting: {
        // What a test worker loads for `environment: 'container'` when the run's sandbox service
        // starts its sandbox (index.ts without the runtime): one chunk, since Node's loader pays
        // per module (resolve, stat, read, link) — 16 small ones cost a fresh worker ~5 ms more.
        groups: [{ name: 'environment', test: workerModules }],
      },
    },
  },
  {
    // CommonJS, for `require()`: Jest's default tests, whose loader cannot require ES modules.
    // Only what test code and Jest load; Vitest (its environment's setup file, the pool) and
    // the CLI are ESM. State that must be one per process, whichever build made it, lives in
    // src/thread-state.ts.
    ...common,
    input: {
      index: 'src/index.ts',
      'runtime/index': 'src/runtime/index.ts',
      'jest/environment': 'src/jest/environment.ts',
      'jest/reporter': 'src/jest/reporter.ts',
      'image/index': 'src/image/index.ts',
    },
    output: {
      dir: 'dist',
      format: 'cjs',
      exports: 'named',
      entryFileNames: '[name].cjs',
      chunkFileNames: 'chunks/[name]-[hash].cjs',
      sourcemap: true,
    },
  },
]);
