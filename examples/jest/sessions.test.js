const { connect } = require('./client.js');

let redis;
beforeAll(async () => { redis = await connect(); });
afterAll(async () => { await redis.close(); });

test('the database starts empty: no keys from other files', async () => {
  expect(await redis.dbSize()).toBe(0);
});

test("the same key names as the other file, with this file's values", async () => {
  await redis.set('owner', 'sessions.test.js');
  await redis.hSet('session:1', { user: 'ada', role: 'admin' });
  expect(await redis.hGetAll('session:1')).toEqual({ user: 'ada', role: 'admin' });
  expect(await redis.dbSize()).toBe(2);
});

test('redis-cli inside the sandbox sees the same server', async () => {
  const { exitCode, stdout } = await container.exec(['redis-cli', 'get', 'owner']);
  expect(exitCode).toBe(0);
  expect(stdout.trim()).toBe('sessions.test.js');
});
