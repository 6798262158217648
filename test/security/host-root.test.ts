// A sandbox's root is not host root: started as root it runs in a user namespace whose ids are an
// unprivileged host range, so what host root's DAC would deny an ordinary user stays denied, while
// images keep their owners and granted mounts stay usable. Read-only means all the way down.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer } from '../../src/index.ts';
import { rootSandboxIdRanges } from '../../src/id-range.ts';
import { isRoot } from '../helpers/host.ts';
import { busyboxImage, hasPython, idmappable, probe } from './helpers.ts';

let dir: string;
beforeAll(() => {
  // Not under /tmp: a sandbox of image 'host' gets a /tmp of its own, and must see these through the host's tree.
  dir = mkdtempSync('/var/tmp/vtc-host-root-');
  chmodSync(dir, 0o755);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(isRoot)('started as root', () => {
  test('the sandbox\'s ids are an unprivileged host range, and its root is uid 0 only inside', async () => {
    const { uids, gids } = rootSandboxIdRanges();
    await withContainer({ image: 'host' }, async (c) => {
      expect((await c.exec(['cat', '/proc/self/uid_map'])).stdout.trim().split(/\s+/)).toEqual(['0', String(uids.start), '65536']);
      expect((await c.exec(['cat', '/proc/self/gid_map'])).stdout.trim().split(/\s+/)).toEqual(['0', String(gids.start), '65536']);
      expect((await c.exec(['id', '-u'])).stdout.trim()).toBe('0');
      // As the host sees them: the main process and pid 1 run as the range's first uid, not as 0.
      expect(statSync(`/proc/${c.pid}`).uid).toBe(uids.start);
    });
  });

  test.skipIf(!hasPython)('what host root\'s rights would open stays shut: /etc/shadow, a 0600 file of root\'s, other sandboxes\' run directories', async () => {
    const secret = join(dir, 'secret-token');
    writeFileSync(secret, 'root-only', { mode: 0o600 });
    const other = await startContainer({ image: 'host', env: { API_TOKEN: 'do-not-leak' } });
    try {
      await withContainer({ image: 'host' }, async (c) => {
        expect(await probe(c, 'open', ['/etc/shadow'])).toMatchObject({ ok: false, errno: 'EACCES' });
        // The host's tree is all there (dir is listed), but host root's 0600 file in it is not readable.
        expect((await c.exec(['ls', dir])).stdout).toContain('secret-token');
        expect(await probe(c, 'open', [secret])).toMatchObject({ ok: false, errno: 'EACCES' });
        const runDir = join('/run/vitest-container', other.id, 'config.json');
        expect(existsSync(runDir)).toBe(true);
        expect((await probe(c, 'open', [runDir])).ok).toBe(false);
        // readFile acts as the sandbox's root too: the host's shadow file is not the test's way out either.
        await expect(c.readFile('/etc/shadow')).rejects.toThrow(/EACCES|Permission denied/);
      });
    } finally {
      await other.stop();
    }
  });

  // (A file system this kernel cannot idmap is bound as it is: its root-owned files are nobody's inside.)
  test.skipIf(!idmappable('/var/tmp'))('a granted mount is usable as given: its files are the sandbox root\'s, writes reach the host as root\'s', async () => {
    // A directory only host root can enter (mkdtemp makes 0700), as tests hand out to share files.
    const shared = mkdtempSync(join(dir, 'shared-'));
    writeFileSync(join(shared, 'input'), 'in\n', { mode: 0o600 });
    await withContainer({ image: 'host', mounts: [{ source: shared, target: '/shared' }] }, async (c) => {
      expect((await c.exec(['cat', '/shared/input'])).stdout).toBe('in\n');
      expect((await c.exec(['sh', '-c', 'echo out > /shared/output && stat -c %u:%g /shared/output'])).stdout.trim()).toBe('0:0');
    });
    expect(statSync(join(shared, 'output')).uid).toBe(0);
  });

  test('a granted mount the kernel cannot idmap (overlayfs, as / is in a Docker job) still works, and a warning names it and the fix', async () => {
    // Its layers on a tmpfs of the test's own: an overlay's upper layer cannot be on an overlay (the cgroup2 lane's /var/tmp).
    const base = mkdtempSync(join(dir, 'overlay-'));
    execFileSync('mount', ['-t', 'tmpfs', 'vtc-test', base]);
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(base, d));
    const merged = join(base, 'merged');
    execFileSync('mount', ['-t', 'overlay', '-o', `lowerdir=${base}/lower,upperdir=${base}/upper,workdir=${base}/work`, 'vtc-test', merged]);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      writeFileSync(join(merged, 'private'), 'root-only\n', { mode: 0o600 });
      writeFileSync(join(merged, 'public'), 'all\n', { mode: 0o644 });
      await withContainer({ image: 'host', mounts: [{ source: merged, target: '/shared' }] }, async (c) => {
        const owner = (await c.exec(['stat', '-c', '%u', '/shared/private'])).stdout.trim();
        expect((await c.exec(['cat', '/shared/public'])).stdout).toBe('all\n');
        await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
        const mine = warnings.filter((w) => (w as { code?: string }).code === 'VTC_MOUNT_NOT_IDMAPPED');
        if (owner === '0') {
          expect(mine).toEqual([]); // a kernel that idmaps overlayfs: nothing to say
        } else {
          expect(owner).toBe('65534');
          expect((await c.exec(['cat', '/shared/private'])).exitCode).not.toBe(0);
          expect(mine).toHaveLength(1);
          expect(mine[0]!.message).toContain(`${merged} is mounted into the sandbox as it is`);
          expect((mine[0] as { detail?: string }).detail).toMatch(/^fix: keep it on a file system the kernel can idmap/);
        }
      });
    } finally {
      process.off('warning', onWarning);
      execFileSync('umount', [merged]);
      execFileSync('umount', [base]);
    }
  });

  test('images keep their owners: ids stored shifted into the range read as the image\'s inside', async () => {
    const image = busyboxImage(join(dir, 'owners'), [
      { name: 'data/', type: 'dir', uid: 0, gid: 0, mode: 0o755 },
      { name: 'data/by-root/', type: 'dir', uid: 0, gid: 0, mode: 0o755 },
      { name: 'data/by-svc/', type: 'dir', uid: 999, gid: 999, mode: 0o755 },
      { name: 'data/by-app', data: 'app\n', uid: 1000, gid: 1000, mode: 0o600 },
      { name: 'data/by-far', data: 'far\n', uid: 70000, gid: 70000, mode: 0o644 },
    ]);
    await withContainer({ image }, async (c) => {
      const stat = await c.exec(['sh', '-c', 'stat -c "%u:%g %n" /data/by-root /data/by-svc /data/by-app /data/by-far']);
      expect(stat.stdout.trim().split('\n')).toEqual(['0:0 /data/by-root', '999:999 /data/by-svc', '1000:1000 /data/by-app', '65534:65534 /data/by-far']);
      // The owners mean something: the service user writes its own directory and not root's; app reads its 0600 file.
      expect((await c.exec(['touch', '/data/by-svc/ok'], { user: '999:999' })).exitCode).toBe(0);
      expect((await c.exec(['touch', '/data/by-root/no'], { user: '999:999' })).exitCode).not.toBe(0);
      expect((await c.exec(['cat', '/data/by-app'], { user: '1000:1000' })).stdout).toBe('app\n');
      expect((await c.exec(['cat', '/data/by-app'], { user: '999:999' })).exitCode).not.toBe(0);
      // A file written through writeFile belongs to the sandbox's root.
      await c.writeFile('/data/written', 'x');
      expect((await c.exec(['stat', '-c', '%u:%g', '/data/written'])).stdout.trim()).toBe('0:0');
    });
  });
});

describe.runIf(isRoot)('read-only all the way down', () => {
  let source: string;
  let mounted = false;
  beforeAll(() => {
    // A host directory with a tmpfs of ours mounted below it: the case a plain read-only remount misses.
    source = join(dir, 'ro-source');
    mkdirSync(join(source, 'sub'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'vtc-test-ro', join(source, 'sub')]);
    mounted = true;
    writeFileSync(join(source, 'sub', 'host-file'), 'host\n');
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [join(source, 'sub')]);
  });

  test('mounts[].readonly: the mount and the host mount below it are read-only inside', async () => {
    await withContainer({ image: 'host', mounts: [{ source, target: '/data', readonly: true }] }, async (c) => {
      expect((await c.exec(['cat', '/data/sub/host-file'])).stdout).toBe('host\n');
      for (const path of ['/data/top', '/data/sub/inner']) {
        const r = await c.exec(['sh', '-c', `echo escape > ${path}`]);
        expect(r.stderr, path).toMatch(/Read-only file system/);
      }
    });
    expect(readdirSync(join(source, 'sub'))).toEqual(['host-file']);
    expect(readdirSync(source)).toEqual(['sub']);
  });

  test('image host: the host\'s mounts are visible, and a write to one goes to the throwaway layer, never to the host', async () => {
    await withContainer({ image: 'host' }, async (c) => {
      expect((await c.exec(['cat', join(source, 'sub', 'host-file')])).stdout).toBe('host\n');
      await c.exec(['sh', '-c', `echo escape > ${join(source, 'sub', 'inner')}; echo changed > ${join(source, 'sub', 'host-file')}`]);
    });
    expect(readdirSync(join(source, 'sub'))).toEqual(['host-file']);
    expect(execFileSync('cat', [join(source, 'sub', 'host-file')], { encoding: 'utf8' })).toBe('host\n');
  });
});
