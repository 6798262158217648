import { afterAll, beforeAll, expect, test } from 'vitest';
import { container } from 'vitest-environment-container';
import { connect } from './client.ts';

let redis: Awaited<ReturnType<typeof connect>>;
beforeAll(async () => { redis = await connect(); });
afterAll(async () => { await redis.close(); });

test('the database starts empty: no keys from other files', async () => {
  expect(await redis.dbSize()).toBe(0);
});

test('the same key names as the other files, with this file\'s values', async () => {
  await redis.set('owner', 'sessions.test.ts');
  await redis.hSet('session:1', { user: 'ada', role: 'admin' });
  await redis.expire('session:1', 60);
  expect(await redis.get('owner')).toBe('sessions.test.ts');
  expect(await redis.hGetAll('session:1')).toEqual({ user: 'ada', role: 'admin' });
  expect(await redis.ttl('session:1')).toBeGreaterThan(0);
  expect(await redis.dbSize()).toBe(2);
});

test('redis-cli inside the sandbox sees the same server', async () => {
  const { exitCode, stdout } = await container.exec(['redis-cli', 'get', 'owner']);
  expect(exitCode).toBe(0);
  expect(stdout.trim()).toBe('sessions.test.ts');
});
