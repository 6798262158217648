/**
 * Options for one file, merged over testEnvironmentOptions:
 * @jest-environment-options {"memory": "48m", "env": {"GREETING": "hello"}}
 */
const { connect } = require('./client.js');

let redis;
beforeAll(async () => { redis = await connect(); });
afterAll(async () => { await redis.close(); });

test('this file runs its redis with a 48 MiB limit and its own environment', async () => {
  const stats = await container.stats();
  expect(stats.memory.limitBytes).toBe(48 * 1024 * 1024);
  expect((await container.exec(['sh', '-c', 'echo $GREETING'])).stdout.trim()).toBe('hello');
  expect(await redis.dbSize()).toBe(0);
});
