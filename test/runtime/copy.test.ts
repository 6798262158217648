// copyTo / copyFrom and the files / directories options, on real sandboxes: host directories,
// files, bytes and tar streams in; tar streams and host directories out; paths resolved inside
// the sandbox's root as readFile's and writeFile's are; owners are the sandbox's ids (mapped
// through its /etc/subuid range when rootless). Hostile archives: test/security/copy-hostile.test.ts.
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer, type Container } from '../../src/index.ts';
import { TarParser } from '../../src/image/tar/parser.ts';
import { isRoot, sandboxCgroups } from '../helpers/host.ts';
import { tarArchive } from '../image/helpers/tar-builder.ts';
import { busyboxImage, sh } from '../security/helpers.ts';

const cache = mkdtempSync(join(tmpdir(), 'vtc-copy-cache-'));
const work = mkdtempSync(join(tmpdir(), 'vtc-copy-'));
const src = join(work, 'src');
let image: string;

beforeAll(() => {
  process.env.VITEST_CONTAINER_CACHE = cache;
  image = busyboxImage(join(work, 'image'));
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'a\n');
  writeFileSync(join(src, 'run.sh'), '#!/bin/sh\necho run\n');
  chmodSync(join(src, 'run.sh'), 0o750);
  writeFileSync(join(src, 'sub', 'b.txt'), 'b\n');
  symlinkSync('a.txt', join(src, 'link'));
});

afterAll(() => {
  delete process.env.VITEST_CONTAINER_CACHE;
  rmSync(cache, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

async function entries(stream: AsyncIterable<Buffer>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let name = '';
  const data: Buffer[] = [];
  const parser = new TarParser({
    entry: (e) => { name = e.path.replace(/\/$/, ''); data.length = 0; out[name] = `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.linkpath ? ` -> ${e.linkpath}` : ''}`; },
    data: (c) => data.push(Buffer.from(c)),
    endEntry: () => { if (data.length) out[name] += ` "${Buffer.concat(data).toString().trim()}"`; },
  });
  for await (const chunk of stream) parser.push(chunk);
  parser.finish();
  return out;
}

describe('copyTo', () => {
  test('a host directory\'s contents into a path it makes, as the sandbox\'s root unless an owner is given', async () => {
    await withContainer({ image }, async (c) => {
      await c.copyTo(src, '/srv/app');
      expect(await sh(c, 'cd /srv/app && ls -n . sub | sed "/^total/d; s/ \\+/ /g" | cut -d" " -f1,3,4,9- && cat a.txt sub/b.txt && ./run.sh')).toBe([
        '.:', '-rw-r--r-- 0 0 a.txt', 'lrwxrwxrwx 0 0 link -> a.txt', '-rwxr-x--- 0 0 run.sh', 'drwxr-xr-x 0 0 sub', '',
        'sub:', '-rw-r--r-- 0 0 b.txt', 'a', 'b', 'run', '',
      ].join('\n'));
      // A user of the image, by name: ids it maps (rootless through its /etc/subuid range, which the lane has).
      await c.copyTo(src, '/home/app', { owner: 'app' });
      expect(await sh(c, 'stat -c %u:%g /home/app/a.txt /home/app/sub')).toBe('1000:1000\n1000:1000\n');
    });
  });

  test('a host file to a path, bytes as a file, a tar stream\'s entries with their own owners', async () => {
    await withContainer({ image }, async (c) => {
      await c.copyTo(join(src, 'run.sh'), '/usr/local/bin/run');
      await c.copyTo(Buffer.from('[app]\nmode=test\n'), '/etc/app/config.ini', { mode: 0o600 });
      const tar = tarArchive([
        { name: 'owned/', type: 'dir', mode: 0o755, uid: 999, gid: 999 },
        { name: 'owned/data', data: 'archived\n', mode: 0o640, uid: 999, gid: 999 },
        { name: 'owned/link', type: 'hardlink', linkname: 'owned/data', uid: 999, gid: 999 },
      ]);
      await c.copyTo(Readable.from([tar]), '/var/lib');
      expect(await sh(c, '/usr/local/bin/run; stat -c "%a %u" /usr/local/bin/run /etc/app/config.ini; cat /etc/app/config.ini')).toBe('run\n750 0\n600 0\n[app]\nmode=test\n');
      expect(await sh(c, 'stat -c "%a %u:%g %h" /var/lib/owned/data; cat /var/lib/owned/link')).toBe('640 999:999 2\narchived\n');
    });
  });

  test('the destination resolves inside the sandbox\'s root (an absolute symlink stays in it)', async () => {
    await withContainer({ image }, async (c) => {
      await sh(c, 'ln -s / /to-root && ln -s ../../../.. /data-up');
      await c.copyTo(Buffer.from('inside\n'), '/to-root/escaped.txt');
      await c.copyTo(src, '/data-up/tmp/dir');
      expect(await sh(c, 'cat /escaped.txt /tmp/dir/a.txt')).toBe('inside\na\n');
      expect(existsSync('/escaped.txt')).toBe(false);
    });
  });

  test('an owner the sandbox does not map is COPY_OWNER_UNMAPPED, naming the fix', async () => {
    await withContainer({ image }, async (c) => {
      const tar = tarArchive([{ name: 'far.txt', data: 'x', uid: 70_000, gid: 70_000 }]);
      await expect(c.copyTo(Readable.from([tar]), '/data')).rejects.toMatchObject({
        code: 'COPY_OWNER_UNMAPPED', name: 'CopyError', message: expect.stringMatching(/70000:70000 is not mapped[\s\S]*fix: give owner/),
      });
    });
  });
});

describe('copyFrom', () => {
  test('a directory as a tar stream of its contents; a file as one entry; mount points below are listed, not entered', async () => {
    await withContainer({ image }, async (c) => {
      await c.copyTo(src, '/srv/app');
      expect(await entries(c.copyFrom('/srv/app'))).toEqual({
        'a.txt': 'file 644 0:0 "a"', link: 'symlink 777 0:0 -> a.txt', 'run.sh': 'file 750 0:0 "#!/bin/sh\necho run"', sub: 'dir 755 0:0', 'sub/b.txt': 'file 644 0:0 "b"',
      });
      expect(await entries(c.copyFrom('/srv/app/sub/b.txt'))).toEqual({ 'b.txt': 'file 644 0:0 "b"' });
      const dev = await entries(c.copyFrom('/dev'));
      expect(dev.null).toMatch(/^char 666/);
      expect(dev.pts).toMatch(/^dir/);
      expect(Object.keys(dev).some((k) => k.startsWith('pts/'))).toBe(false);
    });
  });

  test('into a host directory: files become the caller\'s, setuid bits and device nodes are dropped, symlinks stay links', async () => {
    const out = join(work, 'out');
    await withContainer({ image }, async (c) => {
      await sh(c, 'mkdir -p /export && echo x > /export/tool && chmod 4755 /export/tool && ln -s /etc/shadow /export/shadow && ln -s /dev/null /export/null');
      await c.copyFrom('/export', out);
      await c.copyFrom('/dev', join(out, 'dev'));
    });
    expect(lstatSync(join(out, 'tool')).mode & 0o7777).toBe(0o755);
    expect(lstatSync(join(out, 'tool')).uid).toBe(process.getuid!());
    expect(lstatSync(join(out, 'shadow')).isSymbolicLink()).toBe(true);
    expect(existsSync(join(out, 'dev', 'null'))).toBe(false);
    expect(readFileSync(join(out, 'tool'), 'utf8')).toBe('x\n');
  });

  test('a path that does not exist, a relative path, a stopped sandbox: typed errors', async () => {
    const c = await startContainer({ image });
    await expect(c.copyFrom('/nope', join(work, 'none'))).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND', name: 'CopyError' });
    expect(() => c.copyFrom('relative')).toThrow(expect.objectContaining({ code: 'COPY_INVALID_PATH' }));
    await expect(c.copyTo(join(work, 'missing'), '/x')).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND' });
    await c.stop();
    await expect(c.copyTo(Buffer.from('x'), '/x')).rejects.toMatchObject({ code: 'NOT_RUNNING' });
  });
});

describe('files and directories options', () => {
  test('copied in before the main process starts', async () => {
    const c = await startContainer({
      image, cmd: ['sh', '-c', 'echo "start: $(cat /etc/app/config.ini) $(ls /srv/app | wc -l) $(stat -c %u /srv/app/a.txt)"; exec sleep 100000'],
      waitFor: { log: 'start:' },
      files: [{ content: 'configured', target: '/etc/app/config.ini' }, { source: join(src, 'run.sh'), target: '/bin/run-it', mode: 0o755 }],
      directories: [{ source: src, target: '/srv/app', owner: 'app' }],
    });
    try {
      expect(c.logs()).toContain('start: configured 4 1000');
      expect(await sh(c, 'run-it')).toBe('run\n');
    } finally {
      await c.stop();
    }
  });

  test('a missing source fails the start with COPY_SOURCE_NOT_FOUND and leaves no sandbox behind', async () => {
    await expect(startContainer({ image, directories: [{ source: join(work, 'absent'), target: '/x' }] }))
      .rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND', name: 'CopyError' });
    await expect(startContainer({ image, files: [{ target: '/x' }] as never })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    if (isRoot) expect(sandboxCgroups(undefined, true)).toEqual([]);
  });
});
