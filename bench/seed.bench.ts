// Seed once, fork per file (issue 14), in one run, interleaved:
//
//   1. A test file's PostgreSQL with examples/postgres's schema and rows, ready: started from the
//      seeded snapshot (seedImage, made once before the rounds) against started fresh with the same
//      migrations and fixtures applied (initdb, then psql), as suites without a snapshot do per file.
//      Ready = pg_isready answers over TCP (the examples' wait) and the data is there.
//   2. commit() of a 100 MB writable layer (100 files of 1 MiB, random) against `tar -cf` of the very
//      same directory (the sandbox's upper, through its pid 1's descriptor) into the layer cache's
//      file system. commit() is everything it does: read the layer, make the tar and its sha256, unpack
//      it into the cache, record the image.
//
//   node_modules/node/bin/node bench/seed.bench.ts [--rounds 15] [--commit-rounds 15] [--no-write]
//
// Needs root (the project's postgres image is built by rootfs/ as root). A cache of its own.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImages } from '../examples/shared/ensure-images.ts';
import { migrateAndLoad } from '../examples/postgres/migrate.ts';
import { server } from '../examples/postgres/server.ts';
import { seedImage, startContainer, type Container } from '../src/index.ts';
import { ms, ratio, summarize } from './peers/stats.ts';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const ROUNDS = Number(arg('rounds', '15'));
const COMMIT_ROUNDS = Number(arg('commit-rounds', '15'));
const WRITE = !argv.includes('--no-write');

if (process.getuid?.() !== 0) {
  console.error('seed.bench.ts needs root (the postgres image is built as root).');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'vtc-seed-bench-'));
const cache = join(work, 'cache');
process.env.VITEST_CONTAINER_CACHE = cache;
process.env.VITEST_CONTAINER_PROGRESS = '0';
ensureImages(['postgres', 'busybox']);

const pgOptions = { env: server.env, cmd: server.cmd, memory: '256m', waitFor: server.waitFor };

/** Milliseconds from nothing to a server that answers, with the example's 30 tables and ~27,000 rows. */
async function ready(start: () => Promise<Container>, load?: (c: Container) => Promise<void>): Promise<number> {
  const t0 = performance.now();
  const c = await start();
  try {
    if (load) await load(c);
    const elapsed = performance.now() - t0;
    const rows = await c.exec(['psql', '-h', '127.0.0.1', '-U', 'app', '-d', 'app', '-tAc', 'SELECT count(*) FROM order_items'], { env: { PGPASSWORD: 'secret' } });
    if (rows.stdout.trim() !== '10000') throw new Error(`the data is not there: ${rows.stdout}${rows.stderr}`);
    return elapsed;
  } finally {
    await c.stop();
  }
}

// ---------- 1. seeded Postgres per file ----------

const seedStarted = performance.now();
const seeded = await seedImage({ image: server.image, container: { env: server.env, cmd: server.cmd, waitFor: server.waitFor }, seed: migrateAndLoad, commit: { stop: true } });
const seedMs = performance.now() - seedStarted;
console.log(`seeded once in ${ms(seedMs)} ms: ${seeded.reference}`);

const fromSnapshot: number[] = [];
const perFile: number[] = [];
await ready(() => startContainer({ image: seeded.reference, ...pgOptions })); // warm-up: the image's memo, the spawner
for (let i = 0; i < ROUNDS; i++) {
  const snapshot = () => ready(() => startContainer({ image: seeded.reference, ...pgOptions }));
  const fresh = () => ready(() => startContainer({ image: server.image, ...pgOptions }), migrateAndLoad);
  // Alternating which goes first, so neither always runs on a machine the other just warmed.
  if (i % 2) { fromSnapshot.push(await snapshot()); perFile.push(await fresh()); }
  else { perFile.push(await fresh()); fromSnapshot.push(await snapshot()); }
  process.stdout.write(`\rround ${i + 1}/${ROUNDS}`);
}
process.stdout.write('\n');

// ---------- 2. commit of a 100 MB layer against tar -c ----------

const busybox = join(import.meta.dirname, '..', '.cache', 'images', 'busybox');
const commitMs: number[] = [];
const tarMs: number[] = [];
for (let i = 0; i < COMMIT_ROUNDS; i++) {
  const c = await startContainer({ image: busybox, cmd: ['sleep', '100000'], tmpfsSize: '512m' });
  try {
    // 100 files of 1 MiB, random (nothing the cache holds already), written anew each round.
    await c.exec(['sh', '-c', 'mkdir /data && for i in $(seq 100); do head -c 1048576 /dev/urandom > /data/f$i; done']);
    // The last round's writes and removals on their way to disk: neither contender measures them.
    execFileSync('sync');
    // The writable layer, as commit reads it: upper/ on the scratch tmpfs pid 1 keeps open.
    const fd = readdirSync(`/proc/${c.pid}/fd`).find((n) => existsSync(`/proc/${c.pid}/fd/${n}/upper`));
    const upper = `/proc/${c.pid}/fd/${fd}/upper`;
    const tarFile = join(cache, 'tmp', `bench-${i}.tar`);
    const tar = () => {
      const t0 = performance.now();
      execFileSync('tar', ['-cf', tarFile, '-C', upper, '.']);
      tarMs.push(performance.now() - t0);
      rmSync(tarFile);
    };
    const commit = async () => {
      const t0 = performance.now();
      const ref = await c.commit();
      commitMs.push(performance.now() - t0);
      return ref;
    };
    let ref: string;
    if (i % 2) { tar(); ref = await commit(); } else { ref = await commit(); tar(); }
    // The next round's commit must not find this layer in the cache already.
    execFileSync(process.execPath, [join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'images', 'prune', '--all', '--cache-dir', cache], { stdio: 'ignore' });
    void ref;
  } finally {
    await c.stop();
  }
  process.stdout.write(`\rcommit round ${i + 1}/${COMMIT_ROUNDS}`);
}
process.stdout.write('\n');

// ---------- report ----------

const snap = summarize(fromSnapshot), fresh = summarize(perFile), com = summarize(commitMs), tarc = summarize(tarMs);
const lines = [
  `# Seed once, fork per file — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `Host: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Linux ${release()}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end; Node ${process.version}.`,
  `Image: examples/postgres (30 tables, ~27,000 rows: migrations/ and fixtures/), seeded once in ${ms(seedMs)} ms.`,
  '',
  `## A test file's PostgreSQL, ready with the example's schema and rows (${ROUNDS} rounds, interleaved)`,
  '',
  '| | p50 ms | p90 ms | min | max |',
  '|---|---|---|---|---|',
  `| from the seeded snapshot | ${ms(snap.p50)} | ${ms(snap.p90)} | ${ms(snap.min)} | ${ms(snap.max)} |`,
  `| fresh + the same migrations and fixtures | ${ms(fresh.p50)} | ${ms(fresh.p90)} | ${ms(fresh.min)} | ${ms(fresh.max)} |`,
  '',
  `Seeded per file: **${ms(snap.p50)} ms p50** (target ≤ 300 ms), **${(fresh.p50 / snap.p50).toFixed(1)}× faster** than applying the migrations and fixtures per file (target ≥ 10×).`,
  '',
  `## commit() of a 100 MB writable layer against \`tar -cf\` of the same directory (${COMMIT_ROUNDS} rounds, interleaved)`,
  '',
  '| | p50 ms | p90 ms | min | max |',
  '|---|---|---|---|---|',
  `| commit() (read, tar + sha256, unpack into the cache, record) | ${ms(com.p50)} | ${ms(com.p90)} | ${ms(com.min)} | ${ms(com.max)} |`,
  `| tar -cf (into the cache's file system) | ${ms(tarc.p50)} | ${ms(tarc.p90)} | ${ms(tarc.min)} | ${ms(tarc.max)} |`,
  '',
  `commit() p50 / tar -cf p50: **${ratio(com.p50, tarc.p50)}** (target ≤ 1.0×).`,
  '',
];
console.log(`\n${lines.join('\n')}`);
if (WRITE) {
  const file = join(import.meta.dirname, 'results', `seed-${new Date().toISOString().slice(0, 10)}.md`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  console.log(`written to ${file}`);
}
rmSync(work, { recursive: true, force: true });
