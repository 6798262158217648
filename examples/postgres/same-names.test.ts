import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { connect, tables } from './db.ts';

let db: pg.Client;
beforeAll(async () => { db = await connect(); });
afterAll(async () => { await db.end(); });

test('the tables schema.test.ts creates are absent here', async () => {
  expect(await tables(db)).toEqual([]);
  const { rows } = await db.query("SELECT to_regclass('public.users') AS users");
  expect(rows[0].users).toBeNull();
});

test('a table with the same name and another shape: no collision', async () => {
  await db.query('CREATE TABLE users (name text PRIMARY KEY, admin boolean NOT NULL DEFAULT false)');
  await db.query("INSERT INTO users (name, admin) VALUES ('grace', true)");
  const { rows } = await db.query('SELECT name, admin FROM users');
  expect(rows).toEqual([{ name: 'grace', admin: true }]);
});

test('psql inside the sandbox sees the same server', async () => {
  const { exitCode, stdout } = await container.exec(['psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'app', '-tAc', 'SELECT name FROM users'],
    { env: { PGPASSWORD: 'secret' } });
  expect(exitCode).toBe(0);
  expect(stdout.trim()).toBe('grace');
});
