import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { connect } from '../db.ts';

let db: pg.Client;
beforeAll(async () => { db = await connect(); });
afterAll(async () => { await db.end(); });

test('the fixtures\' orders, items and totals', async () => {
  const { rows: [orders] } = await db.query<{ n: string; shipped: string }>("SELECT count(*) AS n, count(*) FILTER (WHERE status = 'shipped') AS shipped FROM orders");
  expect(orders).toEqual({ n: '5000', shipped: '1250' });
  const { rows: [total] } = await db.query<{ sum: string }>('SELECT sum(total) FROM order_totals');
  expect(total!.sum).toBe('149850.00'); // 5,000 orders of 1 + 2 items at 9.99
});

test('the catalog as seeded, whatever catalog.test.ts changes in its own copy', async () => {
  const { rows } = await db.query<{ n: string; price: string }>("SELECT (SELECT count(*) FROM stock) AS n, (SELECT price FROM products WHERE sku = 'SKU-00001') AS price");
  expect(rows[0]).toEqual({ n: '1500', price: '1.99' });
  await db.query('TRUNCATE orders CASCADE');
});
