// What both api-*.test.ts files do: the things that collide between test files
// on a shared machine. Each call claims port 3000, a /tmp file and a background
// process, and deliberately leaves them behind for the next file to trip over.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';

export const PORT = 3000;
export const LOCK = '/tmp/example-isolation.lock';

export async function startService(name: string): Promise<Server> {
  // 'wx': fails with EEXIST if any other file already made it (and nobody removes it).
  writeFileSync(LOCK, `${name} ${process.pid}\n`, { flag: 'wx' });
  // A daemon that outlives the test, as real services' helpers do.
  spawn('sleep', ['600'], { detached: true, stdio: 'ignore' }).unref();
  const server = createServer((_req, res) => res.end(name));
  // Fails with EADDRINUSE if any other file listens on 3000.
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(PORT, '127.0.0.1', resolve));
  return server;
}
