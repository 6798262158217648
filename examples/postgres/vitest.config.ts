// Every test file gets its own PostgreSQL 15 server, initialised empty, in its own sandbox.
import { defineConfig } from 'vitest/config';
import { imagePath } from '../shared/ensure-images.ts';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['*.test.ts'],
    globalSetup: ['./global-setup.ts'],
    environment: 'container',
    environmentOptions: {
      container: {
        // An OCI image layout directory. In your project: resolve(import.meta.dirname, 'images/postgres').
        image: imagePath('postgres'),
        env: { POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'app' },
        // Nothing here outlives the file, so durability is wasted time.
        cmd: ['postgres', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
        memory: '256m',
        cpus: 1,
        // 5432 is in the image's ExposedPorts, so it is forwarded to a free port on 127.0.0.1.
        // Ready when the server answers over TCP (initdb runs first, without a TCP listener).
        waitFor: { command: ['pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'app', '-d', 'app'] },
        timeout: 60_000,
      },
    },
  },
});
