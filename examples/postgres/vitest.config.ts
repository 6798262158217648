// Every test file gets its own PostgreSQL 15 server, initialised empty, in its own sandbox.
import { defineConfig } from 'vitest/config';
import { server } from './server.ts';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.ts'],
    globalSetup: ['./global-setup.ts'],
    environment: 'container',
    environmentOptions: {
      container: {
        image: server.image,
        env: server.env,
        cmd: server.cmd,
        memory: '256m',
        cpus: 1,
        // 5432 is in the image's ExposedPorts, so it is forwarded to a free port on 127.0.0.1.
        waitFor: server.waitFor,
        timeout: 60_000,
      },
    },
  },
});
