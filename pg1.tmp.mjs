import { startContainer } from '/work/wt-commit/dist/index.js';
import pg from '/work/wt-commit/node_modules/pg/lib/index.js';
const image = '/work/wt-commit/.cache/images/postgres';
const opts = { env: { POSTGRES_USER: 'app', POSTGRES_PASSWORD: 'secret', POSTGRES_DB: 'app' },
  cmd: ['postgres', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'], memory: '256m' };
let t0 = performance.now();
const c = await startContainer({ image, ...opts, waitFor: { command: ['pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'app', '-d', 'app'] } });
console.log('fresh ready', (performance.now() - t0).toFixed(0));
const { host, port } = c.endpoint(5432);
const db = new pg.Client({ host, port, user: 'app', password: 'secret', database: 'app' }); await db.connect();
t0 = performance.now();
for (let t = 0; t < 30; t++) await db.query(`CREATE TABLE t${t} (id serial PRIMARY KEY, name text NOT NULL, n int, created timestamptz DEFAULT now())`);
await db.query(`INSERT INTO t0 (name, n) SELECT 'row ' || g, g FROM generate_series(1, 5000) g`);
console.log('migrate+fixtures', (performance.now() - t0).toFixed(0));
await db.end();
t0 = performance.now();
const ref = await c.commit({ stop: true });
console.log('commit stop', (performance.now() - t0).toFixed(0), ref);
for (const w of [{ log: /database system is ready to accept connections/ }, { command: ['pg_isready', '-h', '127.0.0.1', '-p', '5432', '-U', 'app', '-d', 'app'] }]) {
  for (let i = 0; i < 3; i++) {
    t0 = performance.now();
    const f = await startContainer({ image: ref, memory: '256m', waitFor: w });
    const ready = performance.now() - t0;
    const d = new pg.Client({ ...f.endpoint(5432), user: 'app', password: 'secret', database: 'app' }); await d.connect();
    const { rows } = await d.query('SELECT count(*) FROM t0'); await d.end();
    console.log(JSON.stringify(w).slice(0, 20), 'fork ready', ready.toFixed(0), 'rows', rows[0].count, 'query at', (performance.now() - t0).toFixed(0));
    await f.stop();
  }
}
