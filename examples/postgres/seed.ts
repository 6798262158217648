// globalSetup of the seeded config: the migrations and fixtures are applied once, in one
// sandbox, which is then committed; every test file's PostgreSQL starts from that snapshot.
// Reused across runs (and by watch mode's reruns) for as long as migrations/ and fixtures/
// hold the same files; change one and the next run seeds again.
import type { TestProject } from 'vitest/node';
import { provideSeededImage } from 'vitest-environment-container';
import { ensureImages } from '../shared/ensure-images.ts';
import { FIXTURES, MIGRATIONS, migrateAndLoad } from './migrate.ts';
import { server } from './server.ts';

declare module 'vitest' {
  interface ProvidedContext { postgres: string }
}

export default async function setup(project: TestProject): Promise<void> {
  ensureImages(['postgres']); // this repository's image; not needed with an image of your own
  await provideSeededImage(project, 'postgres', {
    image: server.image,
    container: { env: server.env, cmd: server.cmd, waitFor: server.waitFor },
    inputs: [MIGRATIONS, FIXTURES],
    seed: migrateAndLoad,
    // Stopped cleanly first (the image's stop signal, SIGINT: a fast shutdown with a checkpoint), so every
    // file's server starts on a consistent data directory with no recovery to run.
    commit: { stop: true },
  });
}
