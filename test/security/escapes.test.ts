// A default sandbox at least as tight as runc's: each escape a probe of the host found on 996d51b,
// attempted again from inside, and refused. Runs as root and (through the rootless lane) unprivileged.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidOptionsError, startContainer, type Container } from '../../src/index.ts';
import { isRoot } from '../helpers/host.ts';
import { busyboxImage, capabilityBits, hasPython, probe, probeCommand, statusField } from './helpers.ts';

const CAP_KILL = 5n;

describe.skipIf(!hasPython)('escapes from a default sandbox (image host, no options)', () => {
  let c: Container;
  let open: Container; // the same with seccomp 'unconfined': what holds without the filter
  beforeAll(async () => {
    c = await startContainer({ image: 'host' });
    open = await startContainer({ image: 'host', seccomp: 'unconfined' });
  });
  afterAll(async () => {
    await c?.stop();
    await open?.stop();
  });

  test('devices: only the standard set exists, and no other can be made', async () => {
    // (find would trust readdir's file types, and a bound device node is a plain file in /dev's tmpfs: stat each.)
    const nodes = await c.exec(['sh', '-c', 'for f in /dev/* /dev/*/*; do [ ! -L "$f" ] && { [ -c "$f" ] || [ -b "$f" ]; } && echo "$f"; done']);
    expect(nodes.stdout.trim().split('\n')).toEqual(['/dev/full', '/dev/null', '/dev/random', '/dev/tty', '/dev/urandom', '/dev/zero', '/dev/pts/ptmx']);
    // A loop device (block 7:0) and /dev/kvm (char 10:232): with and without the seccomp filter, the
    // user namespace refuses the node, so no host device is read, written or driven.
    for (const sandbox of [c, open]) {
      expect(await probe(sandbox, 'mknod', ['/tmp/loop0', '7', '0'])).toMatchObject({ ok: false, errno: 'EPERM', detail: 'mknod' });
      expect(await probe(sandbox, 'mknod', ['/tmp/kvm', '10', '232', 'char'])).toMatchObject({ ok: false, errno: 'EPERM', detail: 'mknod' });
    }
  });

  test('seccomp: keyring, io_uring, userfaultfd, perf, bpf, kexec, modules, clocks, namespaces and mounts are refused', async () => {
    expect(statusField(c.pid, 'Seccomp')).toBe('2');
    const refused: [string, string[], string][] = [
      ['keyctl-read', ['user', 'anything'], 'EPERM'],
      ['session-keyring', [], 'EPERM'],
      ['io_uring_setup', [], 'EPERM'],
      ['userfaultfd', [], 'EPERM'],
      ['perf_event_open', [], 'EPERM'],
      ['bpf', [], 'EPERM'],
      ['kexec_load', [], 'EPERM'],
      ['init_module', [], 'EPERM'],
      ['clock_settime', [], 'EPERM'],
      ['unshare', ['10000000'], 'EPERM'], // CLONE_NEWUSER: no nested user namespace
      ['unshare', ['20000'], 'EPERM'], // CLONE_NEWNS
      ['mount', [], 'EPERM'],
      ['open_by_handle_at', [], 'EPERM'],
      ['clone3', [], 'ENOSYS'], // as Docker: C libraries then fall back to clone, whose flags the filter checks
    ];
    for (const [name, args, errno] of refused) {
      expect(await probe(c, name, args), name).toMatchObject({ ok: false, errno });
    }
    // The filter is what refuses the keyring: without it the same call works (on a sandbox keyring of its own).
    expect(await probe(open, 'session-keyring')).toMatchObject({ ok: true });
  });

  test('seccomp holds for the main process too, not only for exec', async () => {
    const main = await startContainer({ image: 'host', cmd: probeCommand('io_uring_setup') });
    try {
      expect((await main.wait()).exitCode).toBe(0);
      expect(JSON.parse(main.logs().trim())).toMatchObject({ ok: false, errno: 'EPERM' });
    } finally {
      await main.stop();
    }
  });

  test('keyring: a key the caller keeps is out of reach, filter or not (a session keyring of its own)', async () => {
    const description = `vtc-secret-${process.pid}`;
    // The test's own user keyring (root's when run as root), through python's ctypes on the host.
    const add = spawnSync('python3', ['-c', `
import ctypes, platform
nr = {'x86_64': 248, 'aarch64': 217}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
print(libc.syscall(nr, b'user', b'${description}', b'top-secret', 10, -4))`], { encoding: 'utf8' });
    const serial = Number(add.stdout.trim());
    expect(serial, add.stderr).toBeGreaterThan(0);
    try {
      for (const sandbox of [c, open]) {
        const read = await probe(sandbox, 'keyctl-read', ['user', description]);
        expect(read.ok).toBe(false);
        expect(JSON.stringify(read.detail ?? '')).not.toContain('top-secret');
      }
    } finally {
      spawnSync('python3', ['-c', `
import ctypes, platform
nr = {'x86_64': 250, 'aarch64': 219}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall(nr, 3, ${serial}); libc.syscall(nr, 9, ${serial}, -4)`]);
    }
  });

  test('pid 1 keeps no more than the main process: no capability but CAP_KILL, no_new_privs, the filter, not traceable', async () => {
    const status = (await probe(c, 'status')).detail as Record<string, string>;
    const main = capabilityBits(status.CapEff!);
    const init = capabilityBits(statusField(c.pid, 'CapEff'));
    expect(init & ~main).toBe(0n); // nothing the main process lacks
    expect(init).toBe(1n << CAP_KILL); // just what forwarding a signal to a main process of another uid needs
    expect(statusField(c.pid, 'NoNewPrivs')).toBe('1');
    expect(statusField(c.pid, 'Seccomp')).toBe('2');
    // Started by root, pid 1 is not dumpable: a process of the sandbox (same uid) cannot trace it or open
    // its fds. (Rootless it must stay dumpable so that the caller can reach /proc/<pid>/ns; its processes
    // are the caller's own uid then anyway.)
    if (isRoot) expect(await probe(c, 'ptrace-attach', ['1'])).toMatchObject({ ok: false, errno: 'EPERM' });
    // ... and is still the one that forwards signals: SIGTERM reaches a main process of another uid.
    const other = await startContainer({ image: 'host', user: '65534:65534', cmd: ['sleep', 'infinity'], stopTimeout: 30_000 });
    await other.stop();
    expect((await other.wait()).exitCode).toBe(128 + 15); // SIGTERM, not the SIGKILL that a 30 s stopTimeout would end in
  });

  test('writable space: the root layer and /tmp share the one tmpfsSize cap, and writes past it get ENOSPC', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtc-space-'));
    const small = await startContainer({ image: busyboxImage(dir), tmpfsSize: '16m' });
    try {
      const root = await small.exec(['sh', '-c', 'dd if=/dev/zero of=/fill bs=1M count=10 2>&1; echo rc=$?']);
      expect(root.stdout).toContain('rc=0');
      const tmp = await small.exec(['sh', '-c', 'dd if=/dev/zero of=/tmp/fill bs=1M count=10 2>&1; echo rc=$?']);
      expect(tmp.stdout).toMatch(/No space left on device[\s\S]*rc=1/);
    } finally {
      await small.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    // The default cap is documented as 1 GiB (README, options table).
    const df = await c.exec(['sh', '-c', 'df -k / /tmp | tail -2']);
    for (const line of df.stdout.trim().split('\n')) expect(Number(line.split(/\s+/)[1])).toBe(1024 * 1024);
  });

  test('a custom OCI profile from a file applies to the main process and to exec; a malformed one is refused up front', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vtc-seccomp-'));
    try {
      const profile = join(dir, 'profile.json');
      writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
      // The main process's refusal is what the start waits for.
      const custom = await startContainer({ image: 'host', seccomp: profile, cmd: ['sh', '-c', 'mkdir /tmp/a 2>&1; sleep infinity'], waitFor: { log: /Permission denied/ }, timeout: 10_000 });
      try {
        const r = await custom.exec(['sh', '-c', 'mkdir /tmp/b 2>&1; echo rc=$?']);
        expect(r.stdout).toMatch(/Permission denied[\s\S]*rc=1/);
      } finally {
        await custom.stop();
      }
      writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_SOMETIMES' }));
      await expect(startContainer({ image: 'host', seccomp: profile })).rejects.toSatisfy((e: unknown) =>
        e instanceof InvalidOptionsError && e.code === 'INVALID_SECCOMP_PROFILE' && /defaultAction/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
