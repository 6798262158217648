// A real redis client connected to this test file's own redis-server.
const { createClient } = require('redis');

exports.connect = async function connect() {
  const { host, port } = container.endpoint(6379); // `container` is this file's sandbox, on Jest's global
  const client = createClient({ socket: { host, port } });
  await client.connect();
  return client;
};
