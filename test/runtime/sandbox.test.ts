// What a test file sees inside its sandbox: its own pid 1, hostname, network,
// ipc, cgroup root and a throwaway writable layer. Runs as root and, from
// rootless.test.ts, as an unprivileged user.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync, existsSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostInfo, startContainer, withContainer, type Container } from '../../src/runtime/index.ts';
import { descendants, isRoot, isSpawner, sandboxCgroups } from '../helpers/host.ts';

let c: Container;
beforeAll(async () => {
  c = await startContainer({ hostname: 'sandbox-under-test' });
});
afterAll(async () => {
  await c?.stop();
});

describe('namespaces', () => {
  test('the sandbox has its own pid 1 and sees only its own processes', async () => {
    const r = await c.exec(['sh', '-c', 'echo $$; tr "\\0" " " < /proc/1/cmdline; echo; ls /proc | grep -c "^[0-9]"']);
    const [shellPid, init, count] = r.stdout.trim().split('\n');
    expect(Number(shellPid)).toBeLessThan(10);
    expect(init).toContain('vtc-runtime');
    // pid 1, the main process, this shell, ls and grep: nothing of the host's
    expect(Number(count)).toBeLessThanOrEqual(6);
    expect(c.pid).toBeGreaterThan(1);
  });

  test('own hostname', async () => {
    expect((await c.exec(['hostname'])).stdout.trim()).toBe('sandbox-under-test');
  });

  test('network: only lo, and it is up', async () => {
    const r = await c.exec(['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/operstate; cat /sys/class/net/lo/flags']);
    const [ifaces, , flags] = [r.stdout.trim().split('\n').slice(0, -2), null, r.stdout.trim().split('\n').at(-1)];
    expect(ifaces).toEqual(['lo']);
    expect(Number(flags) & 1).toBe(1); // IFF_UP
  });

  test('own ipc, uts, net, pid, mount and cgroup namespaces', async () => {
    for (const ns of ['ipc', 'uts', 'net', 'pid', 'mnt', 'cgroup']) {
      const inside = (await c.exec(['readlink', `/proc/self/ns/${ns}`])).stdout.trim();
      expect(inside, ns).toMatch(new RegExp(`^${ns}:\\[\\d+\\]$`));
      expect(inside, ns).not.toBe(readlinkSync(`/proc/self/ns/${ns}`));
    }
  });

  test('/proc/self/cgroup is / in every hierarchy', async () => {
    const lines = (await c.exec(['cat', '/proc/self/cgroup'])).stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).toMatch(/:\/$/);
  });
});

describe('process', () => {
  test('capabilities are the default set and no_new_privs is on', async () => {
    const status = (await c.exec(['cat', '/proc/self/status'])).stdout;
    const bnd = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(status)![1]}`);
    expect(bnd & (1n << 21n)).toBe(0n); // no CAP_SYS_ADMIN
    expect(bnd & (1n << 0n)).toBe(1n); // CAP_CHOWN kept
    expect(/NoNewPrivs:\s+1/.test(status)).toBe(true);
  });

  test('a command that does not exist is reported like a shell would: exit 127', async () => {
    const r = await c.exec(['no-such-command-xyz']);
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('no-such-command-xyz: not found');
  });

  test('startContainer with a missing command rejects with COMMAND_NOT_FOUND and leaves nothing', async () => {
    // What a failed start could leave: its monitor process, its bundle, its cgroup (with limits, as root).
    const left = () => ({
      processes: descendants().filter((pid) => !isSpawner(pid)),
      bundles: readdirSync(hostInfo().runRoot).filter((n) => n.startsWith(`c${process.pid}-`)),
      cgroups: sandboxCgroups('vitest-container', true),
    });
    const before = left();
    const added = () => {
      const now = left();
      return { processes: now.processes.filter((p) => !before.processes.includes(p)), bundles: now.bundles.filter((b) => !before.bundles.includes(b)),
        cgroups: now.cgroups.filter((g) => !before.cgroups.includes(g)) };
    };
    await expect(startContainer({ ...(isRoot ? { memory: '64m' } : {}), cmd: ['no-such-command-xyz'] })).rejects.toMatchObject({ code: 'COMMAND_NOT_FOUND', exitCode: 127 });
    // The monitor may still be exiting for a moment after the rejection; a leak stays.
    for (const deadline = performance.now() + 2000; added().processes.length && performance.now() < deadline;) await sleep(10);
    expect(added()).toEqual({ processes: [], bundles: [], cgroups: [] });
  });

  test('exec returns when its command exits, even if it left a background process holding stdout', async () => {
    // The background job holds stdout open for longer than this test may run: an exec that waited
    // for stdout to close would time the test out. It is still running after exec returned.
    const r = await c.exec(['sh', '-c', 'sleep 3600 & echo started']);
    expect(r).toMatchObject({ exitCode: 0, stdout: 'started\n' });
    expect((await c.exec(['pgrep', '-f', 'sleep 3600'])).exitCode).toBe(0);
    expect((await c.exec(['pkill', '-f', 'sleep 3600'])).exitCode).toBe(0);
  });

  test('exit code, env, workdir and user reach the process', async () => {
    const r = await c.exec(['sh', '-c', 'echo "$FOO $(pwd) $(id -u)"; exit 3'], { env: { FOO: 'bar' }, workdir: '/tmp', user: '65534' });
    expect(r).toMatchObject({ exitCode: 3, stdout: 'bar /tmp 65534\n' });
  });

  test('the main process output is in logs() and its exit code in wait()', async () => {
    const d = await startContainer({ cmd: ['sh', '-c', 'echo out; echo err >&2; exit 7'] });
    const exit = await d.wait();
    expect(exit).toMatchObject({ exitCode: 7, oomKilled: false });
    expect(d.logs()).toContain('out');
    expect(d.logs()).toContain('err');
  });

  test('pid 1 forwards SIGTERM to the main process and reaps orphans', async () => {
    // Orphans that exit at once: reparented to pid 1, they are zombies until it reaps them.
    const d = await startContainer({ cmd: ['sh', '-c', 'for i in 1 2 3 4 5; do (sleep 0.01 &); done; trap "echo got-term; exit 0" TERM; while :; do sleep 0.05; done'] });
    const orphanZombies = 'sleep 0.3; for f in /proc/[0-9]*/status; do grep -q "^State:.*Z" $f && grep -q "^PPid:[[:space:]]*1$" $f && echo zombie; done | wc -l';
    expect((await d.exec(['sh', '-c', orphanZombies])).stdout.trim()).toBe('0');
    const exit = await d.stop({ timeout: 5000 });
    expect(exit.exitCode).toBe(0);
    expect(d.logs()).toContain('got-term');
  });
});

describe('file system', () => {
  test('writes go to a throwaway layer: gone after stop, never on the host', async () => {
    // /tmp is the sandbox's own in image 'host'; elsewhere, started by root, the host's tree is read-only
    // (its files are not the sandbox's ids'), rootless it is overlaid (the caller's own files are).
    const marker = `vtc-marker-${process.pid}`;
    const elsewhere = isRoot ? `/etc/${marker}` : join(hostInfo().rootless ? process.env.HOME ?? '/tmp' : '/tmp', marker);
    await withContainer({}, async (d) => {
      expect((await d.exec(['sh', '-c', `echo hi > /tmp/${marker} && cat /tmp/${marker}`])).stdout).toBe('hi\n');
      const other = await d.exec(['sh', '-c', `echo hi > ${elsewhere}`]);
      if (isRoot) expect(other.stderr).toMatch(/Read-only file system/);
    });
    expect(existsSync(join(tmpdir(), marker))).toBe(false);
    expect(existsSync(`/tmp/${marker}`)).toBe(false);
    expect(existsSync(elsewhere)).toBe(false);
    await withContainer({}, async (d) => {
      expect((await d.exec(['cat', `/tmp/${marker}`])).exitCode).not.toBe(0);
      expect((await d.exec(['cat', elsewhere])).exitCode).not.toBe(0);
    });
  });

  test('a host bind mount is visible, and read-only when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtc-bind-'));
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, 'from-host'), 'hello');
    try {
      await withContainer({ mounts: [{ source: dir, target: '/data' }, { source: dir, target: '/ro', readonly: true }] }, async (d) => {
        expect((await d.exec(['cat', '/data/from-host'])).stdout).toBe('hello');
        expect((await d.exec(['sh', '-c', 'echo back > /data/from-sandbox'])).exitCode).toBe(0);
        const ro = await d.exec(['sh', '-c', 'echo x > /ro/nope']);
        expect(ro.exitCode).not.toBe(0);
        expect(ro.stderr).toMatch(/Read-only file system/);
      });
      expect(readFileSync(join(dir, 'from-sandbox'), 'utf8')).toBe('back\n');
      expect(existsSync(join(dir, 'nope'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('/proc paths are masked; /sys and /proc/sys are read-only mounts', async () => {
    expect((await c.exec(['sh', '-c', 'wc -c < /proc/keys'])).stdout.trim()).toBe('0');
    // Each path on its own, so that one being read-only cannot stand in for the other.
    const mountOptions = async (path: string) => {
      const line = (await c.exec(['cat', '/proc/self/mountinfo'])).stdout.split('\n').filter((l) => l.split(' ')[4] === path).at(-1);
      return line?.split(' ')[5]?.split(',') ?? [];
    };
    expect(await mountOptions('/sys')).toContain('ro');
    expect(await mountOptions('/proc/sys')).toContain('ro');
    // sysfs: creating a file is refused by the read-only mount before sysfs itself is asked.
    const sys = await c.exec(['touch', '/sys/x']);
    expect(sys.exitCode).not.toBe(0);
    expect(sys.stderr).toMatch(/Read-only file system/);
    // /proc/sys: kernel.hostname belongs to the sandbox's own uts namespace; it stays as it is.
    expect((await c.exec(['sh', '-c', 'echo changed > /proc/sys/kernel/hostname'])).exitCode).not.toBe(0);
    expect((await c.exec(['hostname'])).stdout.trim()).toBe('sandbox-under-test');
  });

  test('readFile and writeFile resolve paths inside the sandbox, symlinks included', async () => {
    await c.writeFile('/tmp/note.txt', 'written from the test');
    expect((await c.readFile('/tmp/note.txt')).toString()).toBe('written from the test');
    // A symlink to /etc/hostname inside the sandbox must resolve to the sandbox's file, not the host's.
    await c.exec(['sh', '-c', 'echo sandbox-version > /tmp/target; ln -sf /tmp/target /tmp/link']);
    expect((await c.readFile('/tmp/link')).toString()).toBe('sandbox-version\n');
    await expect(c.readFile('/does/not/exist')).rejects.toMatchObject({ code: 'FILE_ACCESS_FAILED' });
  });

  test('a file read right after its write always returns what was written (1000 round trips)', async () => {
    // A read used to lose its data about once in a thousand: the caller's end of stdin, written
    // after the runtime had exited, failed and took the unread output down with its socket.
    const wrong: string[] = [];
    for (let i = 0; i < 1000; i++) {
      await c.writeFile('/tmp/round-trip.txt', `round ${i}`);
      const got = (await c.readFile('/tmp/round-trip.txt')).toString();
      if (got !== `round ${i}`) wrong.push(`${i}: ${JSON.stringify(got)}`);
    }
    expect(wrong).toEqual([]);
  });
});

describe('waits', () => {
  test('a command wait that blocks still times out at the deadline, with a typed error', async () => {
    const t0 = performance.now();
    await expect(startContainer({ waitFor: { command: ['sleep', '3600'] }, timeout: 300 })).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT', message: expect.stringContaining('timed out after 300 ms waiting for command ["sleep","3600"]'),
    });
    // It ends: a generous bound (the blocked check would hold it for an hour), not a measure of speed.
    expect(performance.now() - t0).toBeLessThan(30_000);
  });
});

describe('bad input', () => {
  test('unknown options', async () => {
    await expect(startContainer({ memroy: '1g' } as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('"memroy"') });
  });
  test('impossible limits', async () => {
    await expect(startContainer({ memory: '1k' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('below') });
    await expect(startContainer({ cpus: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(startContainer({ cpus: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(startContainer({ cpus: 1000 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('CPUs this host has') });
    await expect(startContainer({ memory: 'lots' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(startContainer({ pids: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(startContainer({ cpuset: '0-999' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });
  test('a missing bind-mount source', async () => {
    await expect(startContainer({ mounts: [{ source: '/no/such/dir', target: '/x' }] })).rejects.toMatchObject({
      code: 'SANDBOX_SETUP_FAILED', message: expect.stringContaining('/no/such/dir'),
    });
  });
  test('a missing image', async () => {
    await expect(startContainer({ image: '/no/such/image' })).rejects.toMatchObject({
      name: 'ImageError', code: 'IMAGE_NOT_FOUND', message: expect.stringContaining('/no/such/image'), fix: expect.any(String),
    });
  });
  // (limits without cgroups as an unprivileged user: limits-rootless.test.ts, in the rootless lane)
});
