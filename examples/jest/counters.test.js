const { connect } = require('./client.js');

let redis;
beforeAll(async () => { redis = await connect(); });
afterAll(async () => { await redis.close(); });

test('the database starts empty: no keys from other files', async () => {
  expect(await redis.dbSize()).toBe(0);
});

test('counters written here stay here', async () => {
  await redis.set('owner', 'counters.test.js');
  expect(await redis.incrBy('visits', 5)).toBe(5);
  expect(await redis.get('owner')).toBe('counters.test.js');
  expect(await redis.dbSize()).toBe(2);
});
