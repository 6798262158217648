// A real `pg` client connected to this test file's own PostgreSQL server.
import pg from 'pg';
import { container } from 'vitest-environment-container';

export async function connect(): Promise<pg.Client> {
  const { host, port } = container.endpoint(5432); // 127.0.0.1 and the port forwarded for this file
  const client = new pg.Client({ host, port, user: 'app', password: 'secret', database: 'app' });
  await client.connect();
  return client;
}

/** Tables in the public schema, by name. */
export async function tables(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
  return rows.map((r) => r.table_name);
}
