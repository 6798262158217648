// A real redis client connected to this test file's own redis-server.
import { createClient } from 'redis';
import { container } from 'vitest-environment-container';

export async function connect() {
  const { host, port } = container.endpoint(6379); // 127.0.0.1 and the port forwarded for this file
  const client = createClient({ socket: { host, port } });
  await client.connect();
  return client;
}
