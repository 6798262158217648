// Private networks: members reach each other by alias, nothing outside
// reaches in, nothing inside reaches out. Also runs in the rootless lane.
import { expect, test } from 'vitest';
import { createNetwork, startContainer, withContainer } from '../../src/index.ts';
import { namedNetworks } from '../../src/net/network.ts';

const server = (port: number) => ['python3', '-m', 'http.server', String(port), '--directory', '/etc'];
const fetchIn = (url: string) => ['python3', '-c', `import urllib.request,sys\ntry:\n print(urllib.request.urlopen('${url}', timeout=2).status)\nexcept Exception as e:\n print('unreachable', type(e).__name__)`];
/** Binds and listens on port inside a sandbox: 'listening', or the errno's name. */
const listenOn = (port: number) => ['python3', '-c', `import socket, errno\ns = socket.socket()\ntry:\n s.bind(('0.0.0.0', ${port})); s.listen(); print('listening')\nexcept OSError as e:\n print(errno.errorcode[e.errno])`];

test('two sandboxes on one network talk by alias; a third sandbox cannot reach them; the test reaches a forwarded port', async () => {
  await using net = await createNetwork();
  await using db = await startContainer({ network: net, alias: 'db', cmd: server(7000), ports: [7000], waitFor: { port: 7000 } });
  await using app = await startContainer({ network: net, alias: 'app' });
  await using outsider = await startContainer({});

  expect((await app.exec(fetchIn('http://db:7000/hostname'))).stdout.trim()).toBe('200');
  expect((await db.exec(['getent', 'hosts', 'app'])).exitCode).toBe(0); // names are known to every member, late joiners too
  expect((await outsider.exec(['getent', 'hosts', 'db'])).exitCode).not.toBe(0);
  expect((await outsider.exec(fetchIn('http://127.0.0.1:7000/hostname'))).stdout).toMatch(/unreachable/);
  // The network is still reachable from the test through a forwarded port of a member.
  expect((await fetch(`${db.url(7000)}/hostname`)).status).toBe(200);
});

test('members share one loopback: two members cannot listen on the same port, sandboxes apart can', async () => {
  await using net = await createNetwork();
  await using first = await startContainer({ network: net, cmd: server(7000), waitFor: { port: 7000 } });
  await using second = await startContainer({ network: net });
  expect((await second.exec(listenOn(7000))).stdout.trim()).toBe('EADDRINUSE');
  expect((await second.exec(listenOn(7001))).stdout.trim()).toBe('listening');
  await withContainer({}, async (apart) => {
    expect((await apart.exec(listenOn(7000))).stdout.trim()).toBe('listening'); // its own network namespace
  });
  expect(first.running).toBe(true);
});

test('network: "name" creates the network on first use and shares it by name', async () => {
  const name = `first-use-${process.pid}`;
  expect(namedNetworks().has(name)).toBe(false); // nothing made it beforehand
  try {
    await using db = await startContainer({ network: name, alias: 'db', cmd: server(7000), waitFor: { port: 7000 } });
    await using app = await startContainer({ network: name });
    expect(namedNetworks().has(name)).toBe(true);
    expect((await app.exec(fetchIn('http://db:7000/hostname'))).stdout.trim()).toBe('200');
    expect(db.running).toBe(true);
  } finally {
    await namedNetworks().get(name)?.remove();
  }
});

test('no egress: a network has no route out, and asking for internet access is a clear error', async () => {
  await using net = await createNetwork();
  await withContainer({ network: net }, async (c) => {
    const r = await c.exec(['sh', '-c', 'ls /sys/class/net; cat /proc/net/route | wc -l']);
    expect(r.stdout.split('\n')[0]).toBe('lo');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1'); // only the header: no routes
  });
  await expect(startContainer({ internet: true })).rejects.toMatchObject({ code: 'INTERNET_UNAVAILABLE' });
});

test('a network member waited for over HTTP on its forwarded port', async () => {
  await using net = await createNetwork();
  await using web = await startContainer({ network: net, alias: 'web', cmd: server(8000), ports: [8000], waitFor: { http: '/hostname', port: 8000 } });
  expect((await fetch(`${web.url(8000)}/hostname`)).status).toBe(200);
});
