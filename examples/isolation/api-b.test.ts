// Same port, same /tmp file, same background process as api-a.test.ts, at the same time.
// Run without the pool (`vitest run --pool forks`) and one of the two fails with EADDRINUSE or EEXIST.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { LOCK, PORT, startService } from './service.ts';

const NAME = 'api-b';
let server: Awaited<ReturnType<typeof startService>>;
beforeAll(async () => { server = await startService(NAME); });
afterAll(() => { server?.close(); }); // the lock file and the daemon are left behind on purpose

test('port ' + PORT + ' on localhost answers with this file\'s service', async () => {
  await new Promise((r) => setTimeout(r, 300)); // overlap with the other file
  expect(await (await fetch(`http://127.0.0.1:${PORT}/`)).text()).toBe(NAME);
});

test('the /tmp file holds this file\'s name only', () => {
  expect(readFileSync(LOCK, 'utf8')).toBe(`${NAME} ${process.pid}\n`);
});

test('its own process table and host name', () => {
  expect(process.pid).toBeLessThan(10); // a fresh pid namespace
  expect(hostname()).toMatch(/^sbx-/);
});
