import { afterAll, beforeAll, expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { connect } from './client.ts';

let redis: Awaited<ReturnType<typeof connect>>;
beforeAll(async () => { redis = await connect(); });
afterAll(async () => { await redis.close(); });

test('the database starts empty: no keys from other files', async () => {
  expect(await redis.dbSize()).toBe(0);
});

test('FLUSHALL here cannot hurt the other files', async () => {
  await redis.rPush('jobs', ['a', 'b', 'c']);
  expect(await redis.lPop('jobs')).toBe('a');
  await redis.set('owner', 'queue.test.ts');
  await redis.flushAll(); // on a shared server this would wipe the other files' keys mid-test
  expect(await redis.dbSize()).toBe(0);
});

test('the server runs as the image\'s user, within this file\'s limits', async () => {
  expect((await container.exec(['id', '-un'])).stdout.trim()).toBe('redis');
  const stats = await container.stats();
  expect(stats.memory.limitBytes).toBe(128 * 1024 * 1024);
  expect(stats.memory.currentBytes).toBeGreaterThan(0);
});
