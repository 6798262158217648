// The schema's migrations (migrations/*.sql, tens of tables) and the fixtures (fixtures/*.sql,
// thousands of rows), applied with psql inside the sandbox: once, by the seeded config's
// globalSetup (seed.ts), or per file, as suites without a snapshot do (bench/seed.bench.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Container } from 'vitest-environment-container';

export const MIGRATIONS = join(import.meta.dirname, 'migrations');
export const FIXTURES = join(import.meta.dirname, 'fixtures');

const sqlFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.sql')).sort().map((f) => join(dir, f));

/** Every migration, then every fixture file, each in one transaction; throws with psql's message on the first that fails. */
export async function migrateAndLoad(c: Container): Promise<void> {
  for (const file of [...sqlFiles(MIGRATIONS), ...sqlFiles(FIXTURES)]) {
    const r = await c.exec(['psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'app', '-q', '-1', '-v', 'ON_ERROR_STOP=1'],
      { env: { PGPASSWORD: 'secret' }, stdin: readFileSync(file) });
    if (r.exitCode !== 0) throw new Error(`${file}: ${r.stderr.trim()}`);
  }
}
