// Each test file's worker runs in its own sandbox: its own localhost, /tmp, process
// table and memory limit. No image needed: the sandbox is a throwaway layer over
// this machine's own file tree, so Node and your code are there as they are here.
import { defineConfig } from 'vitest/config';
import { containerPool } from 'vitest-environment-container/pool';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.ts'],
    pool: containerPool({ memory: '512m', cpus: 1, pids: 256 }),
    maxWorkers: 2, // files run side by side
  },
});
