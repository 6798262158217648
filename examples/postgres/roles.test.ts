import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { connect } from './db.ts';

let db: pg.Client;
beforeAll(async () => { db = await connect(); });
afterAll(async () => { await db.end(); });

test('cluster-wide objects (roles, databases) are this file\'s alone', async () => {
  // On a shared server, two files creating the same role or database fail with "already exists".
  await db.query("CREATE ROLE reporting LOGIN PASSWORD 'r'");
  await db.query('CREATE DATABASE analytics OWNER reporting');
  const { rows } = await db.query<{ datname: string }>('SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY datname');
  expect(rows.map((r) => r.datname)).toEqual(['analytics', 'app', 'postgres']);
});

test('the server runs as the postgres user, inside this file\'s memory limit', async () => {
  const { stdout } = await container.exec(['sh', '-c', 'ps -o user,comm | grep -m1 "postgres$"']);
  expect(stdout.trim().split(/\s+/)[0]).toBe('postgres');
  const stats = await container.stats();
  expect(stats.memory.limitBytes).toBe(256 * 1024 * 1024);
  expect(stats.memory.peakBytes).toBeLessThan(stats.memory.limitBytes!);
});
