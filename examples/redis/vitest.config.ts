// Every test file gets its own redis-server, in its own sandbox, from an OCI image.
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
        // An OCI image layout directory. In your project: resolve(import.meta.dirname, 'images/redis'),
        // or any layout skopeo/umoci/buildah wrote (`skopeo copy docker://redis:7 oci:images/redis:latest`).
        image: imagePath('redis'),
        memory: '128m',
        cpus: 1,
        pids: 64,
        // The image exposes 6379, so it is forwarded to a free port on 127.0.0.1 without `ports`.
        waitFor: { healthcheck: true }, // the image's `redis-cli ping`
      },
    },
  },
});
