// The seeded variant: every test file gets its own PostgreSQL, started from a snapshot in which the
// migrations and fixtures were applied once (seed.ts), instead of applying them again per file.
//   npx vitest run --root examples/postgres --config vitest.seeded.config.ts
import { defineConfig } from 'vitest/config';
import { server } from './server.ts';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['seeded/*.test.ts'],
    globalSetup: ['./seed.ts'],
    environment: 'container',
    environmentOptions: {
      container: {
        // The image seed.ts provided: its env and cmd are the seeding sandbox's (committed with it).
        image: 'seeded:postgres',
        memory: '256m',
        cpus: 1,
        waitFor: server.waitFor,
      },
    },
  },
});
