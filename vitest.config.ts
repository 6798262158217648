import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const rootless = process.getuid?.() !== 0;

export default defineConfig({
  // An unprivileged user (the rootless lane) cannot write into a root-owned node_modules.
  ...(rootless ? { cacheDir: join(tmpdir(), `vitest-cache-${process.getuid?.()}`) } : {}),
  test: {
    include: ['test/**/*.test.ts'],
    // a private TMPDIR for the run, sbin on PATH, and (as root) the rootless tests' user
    globalSetup: ['test/setup/global.ts'],
    // fixtures are whole projects that the runner tests start on their own
    exclude: ['test/fixtures/**', '**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandboxes are real and cgroup limits are measured: two files at a time on a 2-core machine.
    maxWorkers: 2,
  },
});
