// The README's Container members and options, each asserted by its effect inside
// or outside the sandbox: streams that stream, signals that arrive, stops that
// escalate, limits the kernel enforces, waits that really wait.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer, type Container } from '../../src/runtime/index.ts';
import { busyboxRootfs, snapshot } from '../image/helpers/host.ts';
import { descendants, freePort, isRoot, pidAlive, sandboxCgroups } from '../helpers/host.ts';
import { collect, gated, startsOnlyAfterGate, until } from './helpers.ts';

// A main process that says it is up, then ignores or reports signals while it waits.
const armed = (traps: string) => ['sh', '-c', `${traps}; echo armed; while :; do sleep 0.05; done`];

let c: Container;
beforeAll(async () => {
  c = await startContainer({});
});
afterAll(async () => {
  await c?.stop();
});

describe('exec and spawn', () => {
  test('exec stdin reaches the command, text or bytes; without stdin the command reads end-of-file', async () => {
    expect(await c.exec(['cat'], { stdin: 'hello\nworld' })).toMatchObject({ exitCode: 0, stdout: 'hello\nworld' });
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => i % 256);
    expect((await c.exec(['sh', '-c', 'wc -c'], { stdin: bytes })).stdout.trim()).toBe('70000');
    expect((await c.exec(['sh', '-c', 'od -An -tu1 -N4 -j254'], { stdin: bytes })).stdout.trim().split(/\s+/)).toEqual(['254', '255', '0', '1']);
    expect(await c.exec(['cat'])).toMatchObject({ exitCode: 0, stdout: '' });
  });

  test('spawn: stdout streams while the command runs, stdin reaches it, stderr apart, exited gives the exit code', async () => {
    const p = await c.spawn(['sh', '-c', 'echo ready; read line; echo "got $line"; echo oops >&2; exit 4']);
    const out = collect(p.stdout), err = collect(p.stderr);
    // Streamed, not collected at the end: the command is still blocked on its input here.
    await until('the first line', () => out.text() === 'ready\n');
    p.stdin.end('hello\n');
    expect(await p.exited).toBe(4);
    expect(out.text()).toBe('ready\ngot hello\n');
    expect(err.text()).toBe('oops\n');
  });

  test('spawn kill(signal) reaches the command; kill() without one is SIGTERM', async () => {
    const trapped = await c.spawn(armed('trap "echo got-usr1; exit 5" USR1'));
    const out = collect(trapped.stdout);
    trapped.stderr.resume(); // (exited waits for both streams to be read: see the BUG test below)
    await until('the trap to be set', () => out.text().includes('armed'));
    trapped.kill('SIGUSR1');
    expect(await trapped.exited).toBe(5);
    expect(out.text()).toContain('got-usr1');

    const plain = await c.spawn(['sleep', '3600']);
    plain.stdout.resume();
    plain.stderr.resume();
    plain.kill();
    expect(await plain.exited).toBe(128 + 15);
  });

  // BUG (reported to the lead, fails until fixed): `exited` resolves only after the caller has read
  // stdout and stderr to their end; a caller that wants only the exit code waits forever.
  test('spawn: exited resolves when the command ends, whether or not its output was read', async () => {
    const p = await c.spawn(['sh', '-c', 'exit 3']);
    p.stdin.end();
    // A bound on "it ends" (the command exits at once), so the failure says what hangs instead of timing out.
    const outcome = await Promise.race([p.exited, sleep(10_000, 'still pending 10 s after the command exited')]);
    expect(outcome).toBe(3);
  });
});

describe('the main process', () => {
  test('logStream() gives what was written so far, then what comes, and ends with the sandbox', async () => {
    const d = await startContainer({ cmd: ['sh', '-c', 'echo first; until [ -e /tmp/go ]; do sleep 0.02; done; echo second'], waitFor: { log: 'first' } });
    const stream = d.logStream();
    const seen = collect(stream);
    const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
    await until('the earlier output', () => seen.text() === 'first\n');
    await d.writeFile('/tmp/go', '');
    await ended; // the main process exited, and the stream with it
    expect(seen.text()).toBe('first\nsecond\n');
    expect(d.logStream().read()?.toString()).toBe('first\nsecond\n'); // a stream opened afterwards: all of it, already ended
  });

  test('kill(signal) reaches the main process; SIGKILL ends the whole sandbox, its other processes too', async () => {
    const d = await startContainer({ cmd: armed('trap "echo got-usr1" USR1'), waitFor: { log: 'armed' } });
    await d.exec(['sh', '-c', 'sleep 3600 >/dev/null 2>&1 &']);
    const inside = descendants(d.pid);
    expect(inside.length).toBeGreaterThan(1); // the main process and the background sleep
    d.kill('SIGUSR1');
    await until('the trap to run', () => d.logs().includes('got-usr1'));
    expect(d.running).toBe(true); // the trap handled it
    d.kill('SIGKILL');
    expect(await d.wait()).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
    expect(inside.filter(pidAlive)).toEqual([]);
  });

  test('stop() sends SIGTERM, then SIGKILL after its timeout to a process that ignores it', async () => {
    const d = await startContainer({ cmd: armed('trap "echo got-term" TERM'), waitFor: { log: 'armed' } });
    const t0 = performance.now();
    const exit = await d.stop({ timeout: 500 });
    expect(exit).toMatchObject({ exitCode: 137, signal: 'SIGKILL' });
    expect(d.logs()).toContain('got-term'); // SIGTERM came first
    // It waited the timeout before escalating: a timer never fires early, so this lower bound holds under any load.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(490);
  });

  test('stopTimeout: the SIGKILL comes that long after SIGTERM, not after the 2000 ms default', async () => {
    const d = await startContainer({ stopTimeout: 5000, cmd: armed('trap "echo got-term" TERM'), waitFor: { log: 'armed' } });
    const t0 = performance.now();
    const exit = await d.stop();
    const ms = performance.now() - t0;
    expect(exit.signal).toBe('SIGKILL');
    expect(d.logs()).toContain('got-term');
    expect(ms).toBeGreaterThanOrEqual(4990); // not before the timeout (the default would have killed at 2000)
    // ...and it ends: a generous bound on the escalation happening at all (the process would run forever),
    // not a measure of its speed.
    expect(ms).toBeLessThan(35_000);
  });

  test('await using stops the sandbox when the block ends: its processes, and its cgroup when it has one', async () => {
    let d: Container | undefined;
    let pids: number[] = [];
    {
      await using started = await startContainer(isRoot ? { memory: '64m' } : {});
      d = started;
      pids = [started.pid, ...descendants(started.pid)];
      expect(pids.every(pidAlive)).toBe(true);
      if (isRoot) expect(sandboxCgroups().filter((p) => p.endsWith(`/${started.id}`)).length).toBeGreaterThan(0);
    }
    expect(d.running).toBe(false);
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(sandboxCgroups().filter((p) => p.endsWith(`/${d.id}`))).toEqual([]);
  });
});

describe('waits', () => {
  test('waitFor {log} resolves only once the line is logged, string or RegExp', async () => {
    for (const log of ['ready to serve', /ready to s.rve/]) {
      const d = await startsOnlyAfterGate(gated('echo "ready to serve"'), { waitFor: { log } });
      expect(d.logs()).toContain('ready to serve');
      await d.stop({ timeout: 0 });
    }
  });
});

describe('options', () => {
  test('tmpfsSize caps the writable layer: writing past it is ENOSPC inside', async () => {
    await withContainer({ tmpfsSize: '8m' }, async (d) => {
      const r = await d.exec(['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M count=32; stat -c %s /fill']);
      expect(r.stderr).toMatch(/No space left on device/);
      const written = Number(r.stdout.trim().split('\n').at(-1));
      expect(written).toBeLessThanOrEqual(8 << 20);
      expect(written).toBeGreaterThan(6 << 20); // it did fill up to the cap
    });
    await withContainer({}, async (d) => { // the same write without the cap fits
      expect((await d.exec(['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M count=32 2>/dev/null; stat -c %s /fill'])).stdout.trim()).toBe(String(32 << 20));
    });
  });

  test('ports {port, hostPort}: the service is reached at the host port asked for', async () => {
    const hostPort = await freePort();
    await withContainer({ cmd: ['python3', '-m', 'http.server', '7000', '--directory', '/etc'], ports: [{ port: 7000, hostPort }], waitFor: { port: 7000 } }, async (d) => {
      expect(d.endpoint(7000)).toEqual({ host: '127.0.0.1', port: hostPort });
      expect(await httpGet(hostPort, '/hostname')).toMatch(/^HTTP\/1\.0 200 /);
    });
  });

  test('url(port, scheme): the forwarded address with the scheme asked for (http by default)', async () => {
    await withContainer({ cmd: ['python3', '-m', 'http.server', '7000', '--directory', '/etc'], ports: [7000], waitFor: { port: 7000 } }, async (d) => {
      expect((await fetch(`${d.url(7000)}/hostname`)).status).toBe(200);
      const url = new URL(d.url(7000, 'redis'));
      expect(url.protocol).toBe('redis:');
      expect(await httpGet(Number(url.port), '/hostname', url.hostname)).toMatch(/^HTTP\/1\.0 200 /); // the same service
    });
  });

  test("image 'rootfs:/dir': an unpacked tree as the read-only root, under a throwaway layer", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtc-rootfs-image-'));
    try {
      busyboxRootfs(dir);
      writeFileSync(join(dir, 'etc', 'marker'), 'from the tree\n');
      const before = snapshot(dir);
      await withContainer({ image: `rootfs:${dir}`, cmd: ['sh', '-c', 'cat /etc/marker; echo changed > /etc/marker; cat /etc/marker; ls /'] }, async (d) => {
        await d.wait();
        const [first, second, ...root] = d.logs().trim().split('\n');
        expect([first, second]).toEqual(['from the tree', 'changed']);
        expect(root.join(' ')).toMatch(/\bbin\b.*\betc\b/); // the tree's root, not the host's
        expect(root).not.toContain('usr');
      });
      expect(snapshot(dir)).toEqual(before); // the write stayed in the sandbox
      await expect(startContainer({ image: 'rootfs:relative/dir' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
      await expect(startContainer({ image: `rootfs:${dir}/missing` })).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A raw HTTP/1.0 GET: the status line (and the rest) as the server sent it. */
function httpGet(port: number, path: string, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => socket.end(`GET ${path} HTTP/1.0\r\n\r\n`));
    const got = collect(socket);
    socket.on('error', reject).on('close', () => resolve(got.text()));
  });
}
