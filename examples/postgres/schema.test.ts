import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { connect, tables } from './db.ts';

let db: pg.Client;
beforeAll(async () => { db = await connect(); });
afterAll(async () => { await db.end(); });

test('the database starts without tables', async () => {
  expect(await tables(db)).toEqual([]);
});

test('a schema created here, with data', async () => {
  await db.query('CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL)');
  await db.query('CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users, total numeric NOT NULL)');
  const { rows: [ada] } = await db.query<{ id: number }>("INSERT INTO users (email) VALUES ('ada@example.com') RETURNING id");
  await db.query('INSERT INTO orders (user_id, total) VALUES ($1, 12.5), ($1, 7.5)', [ada!.id]);
  const { rows } = await db.query<{ sum: string }>('SELECT sum(total) FROM orders WHERE user_id = $1', [ada!.id]);
  expect(rows[0]!.sum).toBe('20.0');
  expect(await tables(db)).toEqual(['orders', 'users']);
});
