// Bad input is refused before anything exists, and a full cache is a typed error that loses nothing.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { InvalidOptionsError, startContainer, type ContainerOptions } from '../../src/index.ts';
import { pruneCache, resolveImage } from '../../src/image/index.ts';
import { layersDir } from '../../src/image/cache-layout.ts';
import { hostInfo } from '../../src/runtime/host.ts';
import { descendants, isRoot, sandboxCgroups } from '../helpers/host.ts';
import { tarArchive } from '../image/helpers/tar-builder.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';

/** What this process has made: bundles in the run root, sandbox cgroups, runtime processes. */
function madeByUs(): string[] {
  const runRoot = hostInfo().runRoot;
  const bundles = existsSync(runRoot) ? readdirSync(runRoot).filter((n) => n.startsWith(`c${process.pid}-`) && !n.endsWith('.sock') && !n.endsWith('.lock')) : [];
  const processes = descendants().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vtc-runtime\0run');
    } catch {
      return false;
    }
  });
  return [...bundles, ...sandboxCgroups('vitest-container', true), ...processes.map(String)];
}

describe('bad options are refused before anything exists', () => {
  const cases: [string, ContainerOptions, RegExp][] = [
    ['memory 2 ** 64', { memory: 2 ** 64 }, /memory: .* more than the largest size/],
    ['memory 16777216t (2^64 bytes)', { memory: '16777216t' }, /memory: .* more than the largest size/],
    ['memory 1e30', { memory: 1e30 }, /memory: .* more than the largest size/],
    ['pids past the kernel\'s limit', { pids: 5_000_000 }, /pids: 5000000 must be a whole number from 1 to 4194304/],
    ['tmpfsSize below a MiB', { tmpfsSize: '1k' }, /tmpfsSize: 1k is below the 1 MiB/],
    ['NUL in an env value', { env: { A: 'x\0y' } }, /env\.A contains a NUL character/],
    ['NUL in cmd', { cmd: ['sh', '-c', 'true\0; reboot'] }, /cmd\[2\] contains a NUL character/],
    ['NUL in a mount target', { mounts: [{ source: '/tmp', target: '/x\0y' }] }, /mounts\[\]\.target contains a NUL character/],
    ['an empty command', { image: 'host', cmd: [], entrypoint: [] }, /no command: cmd and entrypoint are empty/],
    ['two ports asking for one host port', { ports: [{ port: 80, hostPort: 18080 }, { port: 81, hostPort: 18080 }] }, /host port 18080 is asked for twice/],
    ['a seccomp profile that is not one', { seccomp: { defaultAction: 'SCMP_ACT_MAYBE' } as never }, /seccomp: defaultAction "SCMP_ACT_MAYBE"/],
  ];
  test.each(cases)('%s', async (_name, options, message) => {
    const before = madeByUs();
    const err = await startContainer(options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidOptionsError);
    expect((err as InvalidOptionsError).message).toMatch(message);
    expect(madeByUs()).toEqual(before);
  });
});

describe.runIf(isRoot)('a full cache', () => {
  let dir: string;
  let cache: string;
  let mounted = false;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vtc-cache-full-'));
    cache = join(dir, 'cache');
    mkdirSync(cache);
    // A cache file system of our own with room for 2 MiB, for an image whose one layer holds 4 MiB.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'vtc-test-full', cache]);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [cache]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('ENOSPC while unpacking is IMAGE_CACHE_FULL naming the cache and the fix; nothing is left of the attempt', async () => {
    const image = join(dir, 'big');
    writeImage(image, [tarArchive([{ name: 'big', data: randomBytes(4 * 1024 * 1024) }])]);
    const err = await resolveImage(image, { cacheDir: cache, progress: false }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ImageError', code: 'IMAGE_CACHE_FULL' });
    expect((err as Error).message).toContain(cache);
    expect((err as Error).message).toMatch(/ENOSPC/);
    expect((err as { fix: string }).fix).toMatch(/images prune|VITEST_CONTAINER_CACHE/);
    for (const sub of ['tmp', 'images']) {
      const path = join(cache, sub);
      expect(existsSync(path) ? readdirSync(path) : []).toEqual([]);
    }
    expect(existsSync(layersDir(cache)) ? readdirSync(layersDir(cache)) : []).toEqual([]);
  });

  test('images prune removes a stale half-written memo', async () => {
    mkdirSync(join(cache, 'images'), { recursive: true });
    const stale = join(cache, 'images', 'abc.json.123.x1.tmp');
    writeFileSync(stale, '');
    const old = new Date(Date.now() - 2 * 3600_000);
    utimesSync(stale, old, old);
    await pruneCache({ cacheDir: cache });
    expect(existsSync(stale)).toBe(false);
  });
});

describe.runIf(isRoot && existsSync('/sys/fs/cgroup/cpuset/cgroup.procs'))('a limit the kernel still rejects (cgroup v1)', () => {
  test('CGROUP_LIMIT_REJECTED, and every cgroup level made for it is gone again', async () => {
    // A parent of ours that may use CPU 0 only; the sandbox asks for CPU 1, which the kernel refuses under it.
    const name = `vtc-test-reject-${process.pid}`;
    const own = `/sys/fs/cgroup/cpuset/${name}`;
    mkdirSync(own);
    try {
      writeFileSync(`${own}/cpuset.cpus`, '0');
      writeFileSync(`${own}/cpuset.mems`, readFileSync('/sys/fs/cgroup/cpuset/cpuset.mems', 'utf8').trim());
      const err = await startContainer({ cgroupParent: `/${name}`, cpuset: '1', cmd: ['true'] }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'HostCapabilityError', code: 'CGROUP_LIMIT_REJECTED' });
      expect(readdirSync(own, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)).toEqual([]); // no sandbox level under our parent
      for (const c of ['memory', 'cpu', 'cpuacct', 'pids']) expect(existsSync(`/sys/fs/cgroup/${c}/${name}`), c).toBe(false);
    } finally {
      rmdirSync(own);
    }
  });
});
