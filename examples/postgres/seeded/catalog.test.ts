import type pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { connect, tables } from '../db.ts';

let db: pg.Client;
beforeAll(async () => { db = await connect(); });
afterAll(async () => { await db.end(); });

async function count(table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`);
  return Number(rows[0]!.n);
}

test('the server started on the seeded data directory: no initdb, no recovery', () => {
  expect(container.logs()).not.toContain('entrypoint: initialized');
  expect(container.logs()).toMatch(/database system was shut down at/);
  expect(container.logs()).not.toMatch(/automatic recovery in progress/);
});

test('every table of the migrations, with exactly the fixtures\' rows', async () => {
  expect(await tables(db)).toHaveLength(31); // 30 tables and a view
  const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_versions ORDER BY version');
  expect(rows.map((r) => r.version)).toEqual([1, 2, 3, 4]);
  expect({ customers: await count('customers'), products: await count('products'), stock: await count('stock'), tickets: await count('tickets') })
    .toEqual({ customers: 2000, products: 500, stock: 1500, tickets: 300 });
});

test('this file changes its copy of the catalog; orders.test.ts does not see it', async () => {
  await db.query('DELETE FROM stock WHERE warehouse_id = 3');
  await db.query("UPDATE products SET price = 0 WHERE sku = 'SKU-00001'");
  expect(await count('stock')).toBe(1000);
});
