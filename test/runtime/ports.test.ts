// Forwarded ports, with a real TCP client from the test: bytes arrive intact
// both ways, half-close passes through, a closed port looks closed, and
// nothing else on the host can reach the sandbox's network.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startContainer, type Container } from '../../src/index.ts';

// An echo server that also reports, after the client's EOF, how many bytes it got.
const echo = `
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 7000)); s.listen(64)
def serve(a):
    n = 0
    while True:
        d = a.recv(65536)
        if not d: break
        n += len(d); a.sendall(d)
    a.sendall(b'|got %d' % n); a.close()
while True:
    a, _ = s.accept(); threading.Thread(target=serve, args=(a,), daemon=True).start()
`;

let c: Container;
beforeAll(async () => {
  c = await startContainer({ cmd: ['python3', '-c', echo], ports: [7000, 7001], waitFor: { port: 7000 } });
});
afterAll(async () => {
  await c?.stop();
});

function roundTrip(socket: Socket, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.end(payload); // half-close: the server sees EOF, then answers and closes
  });
}

test('16 MiB through the forwarded port arrive intact, and half-close reaches the server', async () => {
  const payload = Buffer.alloc(16 << 20);
  for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  const reply = await roundTrip(connect(c.endpoint(7000)), payload);
  expect(reply.subarray(0, payload.length).equals(payload)).toBe(true);
  expect(reply.subarray(payload.length).toString()).toBe(`|got ${payload.length}`);
});

test('many concurrent connections each get their own stream', async () => {
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => roundTrip(connect(c.endpoint(7000)), Buffer.from(`conn-${i}`))));
  replies.forEach((r, i) => expect(r.toString()).toBe(`conn-${i}|got ${`conn-${i}`.length}`));
});

test('a forwarded port nothing listens on inside is closed on the client (a reset or an empty close), not hung', async () => {
  const outcome = await roundTrip(connect(c.endpoint(7001)), Buffer.from('anyone?')).catch((e: NodeJS.ErrnoException) => e);
  if (outcome instanceof Error) expect(outcome.code).toBe('ECONNRESET');
  else expect(outcome.length).toBe(0);
});

/** Local addresses of the host's listening TCP sockets on port (the kernel's table, IPv4 and IPv6). */
function listeningAddresses(port: number): string[] {
  return ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((file) => readFileSync(file, 'utf8').trim().split('\n').slice(1).flatMap((line) => {
    const [, local = '', , state] = line.trim().split(/\s+/);
    const [addr = '', hexPort = ''] = local.split(':');
    if (state !== '0A' || parseInt(hexPort, 16) !== port) return []; // 0A: LISTEN
    return [addr.length === 8 ? addr.match(/../g)!.reverse().map((b) => parseInt(b, 16)).join('.') : `ipv6:${addr}`];
  }));
}

test('the forwarded port listens on loopback only', async () => {
  const { host, port } = c.endpoint(7000);
  expect(host).toBe('127.0.0.1');
  expect(listeningAddresses(port)).toEqual(['127.0.0.1']); // bound to 127.0.0.1 itself, not the wildcard
  // So even another loopback address of this host is refused (a wildcard socket would accept it).
  const other = await new Promise<string>((resolve) => connect(port, '127.0.0.2').on('connect', function (this: Socket) { this.destroy(); resolve('connected'); })
    .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message)));
  expect(other).toBe('ECONNREFUSED');
  expect(() => c.endpoint(9999)).toThrow(/not forwarded/);
});
