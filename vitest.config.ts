import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Sandboxes are real and cgroup limits are measured: two files at a time on a 2-core machine.
    maxWorkers: 2,
  },
});
