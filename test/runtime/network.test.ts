// Private networks: members reach each other by alias, nothing outside
// reaches in, nothing inside reaches out. Also runs in the rootless lane.
import { expect, test } from 'vitest';
import { createNetwork, startContainer, withContainer } from '../../src/index.ts';

const server = (port: number) => ['python3', '-m', 'http.server', String(port), '--directory', '/etc'];
const fetchIn = (url: string) => ['python3', '-c', `import urllib.request,sys\ntry:\n print(urllib.request.urlopen('${url}', timeout=2).status)\nexcept Exception as e:\n print('unreachable', type(e).__name__)`];

test('two sandboxes on one network talk by alias; a third sandbox cannot reach them', async () => {
  await using net = await createNetwork();
  await using db = await startContainer({ network: net, alias: 'db', cmd: server(7000), waitFor: { port: 7000 } });
  await using app = await startContainer({ network: net, alias: 'app' });
  await using outsider = await startContainer({});

  expect((await app.exec(fetchIn('http://db:7000/hostname'))).stdout.trim()).toBe('200');
  expect((await db.exec(['getent', 'hosts', 'app'])).exitCode).toBe(0); // names are known to every member, late joiners too
  expect((await outsider.exec(['getent', 'hosts', 'db'])).exitCode).not.toBe(0);
  expect((await outsider.exec(fetchIn('http://127.0.0.1:7000/hostname'))).stdout).toMatch(/unreachable/);
  // The network is still reachable from the test through a forwarded port of a member.
  expect(db.running).toBe(true);
});

test('no egress: a network has no route out, and asking for internet access is a clear error', async () => {
  // A network named in options is created on first use and shared by name.
  await using named = await createNetwork('no-egress');
  await withContainer({ network: 'no-egress' }, async (c) => {
    const r = await c.exec(['sh', '-c', 'ls /sys/class/net; cat /proc/net/route | wc -l']);
    expect(r.stdout.split('\n')[0]).toBe('lo');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1'); // only the header: no routes
  });
  expect(named.removed).toBe(false);
  await expect(startContainer({ internet: true })).rejects.toMatchObject({ code: 'INTERNET_UNAVAILABLE' });
});

test('a forwarded port of a network member is reachable from the test', async () => {
  await using net = await createNetwork();
  await using web = await startContainer({ network: net, alias: 'web', cmd: server(8000), ports: [8000], waitFor: { http: '/hostname', port: 8000 } });
  expect((await fetch(`${web.url(8000)}/hostname`)).status).toBe(200);
});
