// The PostgreSQL every test file gets: one place for the options the plain and the seeded
// configs share (and the seed's sandbox, and bench/seed.bench.ts).
import { imagePath } from '../shared/ensure-images.ts';

export const server = {
  // An OCI image layout directory. In your project: resolve(import.meta.dirname, 'images/postgres').
  image: imagePath('postgres'),
  env: { POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'app' },
  // Nothing here outlives the file, so durability is wasted time.
  cmd: ['postgres', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
  // Ready when the server answers over TCP (initdb runs first, without a TCP listener).
  waitFor: { command: ['pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'app', '-d', 'app'] },
};
