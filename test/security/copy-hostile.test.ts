// Hostile input to the copies and the commit: archives that try to write outside their
// destination (".." and absolute names, a symlink of their own or of the sandbox's to write
// through, hard links to what they did not make) or to make device nodes are refused with
// COPY_UNSAFE_ENTRY, and nothing lands outside the destination, in the sandbox or on the host.
// A sandbox's own symlinks are carried as symlinks by copyFrom and commit, never followed.
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer, type Container } from '../../src/index.ts';
import { tarArchive, type TarEntrySpec } from '../image/helpers/tar-builder.ts';
import { busyboxImage } from './helpers.ts';

const cache = mkdtempSync(join(tmpdir(), 'vtc-hostile-cache-'));
const work = mkdtempSync(join(tmpdir(), 'vtc-hostile-'));
let image: string;
let c: Container;

beforeAll(async () => {
  process.env.VITEST_CONTAINER_CACHE = cache;
  image = busyboxImage(join(work, 'image'));
  c = await startContainer({ image });
});

afterAll(async () => {
  await c?.stop();
  delete process.env.VITEST_CONTAINER_CACHE;
  rmSync(cache, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** Every path of the sandbox's root file system and /tmp, with its type and size: compared before and after. */
async function sandboxTree(): Promise<string> {
  return (await c.exec(['sh', '-c', 'find / /tmp -xdev | sort | while read -r p; do stat -c "%n %F %s" "$p"; done'])).stdout;
}

const HOSTILE: [string, TarEntrySpec[]][] = [
  ['a ".." name', [{ name: 'ok.txt', data: 'fine' }, { name: '../escaped.txt', data: 'x' }]],
  ['a name that climbs out after going in', [{ name: 'sub/../../escaped.txt', data: 'x' }]],
  ['an absolute name', [{ name: '/escaped.txt', data: 'x' }]],
  ['an entry through a symlink of the same archive', [{ name: 'root', type: 'symlink', linkname: '/' }, { name: 'root/escaped.txt', data: 'x' }]],
  ['an entry through a relative symlink of the same archive', [{ name: 'up', type: 'symlink', linkname: '../..' }, { name: 'up/tmp/escaped.txt', data: 'x' }]],
  ['a hard link to a file outside', [{ name: 'passwd', type: 'hardlink', linkname: '../etc/passwd' }]],
  ['a hard link to an absolute path', [{ name: 'shadow', type: 'hardlink', linkname: '/etc/passwd' }]],
  ['a hard link to something the archive did not make', [{ name: 'ghost', type: 'hardlink', linkname: 'never-made' }]],
  ['a character device', [{ name: 'mem', type: 'char', devmajor: 1, devminor: 1 }]],
  ['a block device', [{ name: 'disk', type: 'block', devmajor: 8, devminor: 0 }]],
];

describe('copyTo refuses hostile archives', () => {
  test.each(HOSTILE)('%s', async (_what, spec) => {
    await c.exec(['mkdir', '-p', '/dest']);
    const before = await sandboxTree();
    await expect(c.copyTo(Readable.from([tarArchive(spec)]), '/dest')).rejects.toMatchObject({ code: 'COPY_UNSAFE_ENTRY', name: 'CopyError' });
    const after = await sandboxTree();
    // What a refused archive had before its bad entry may be in /dest; nothing is anywhere else.
    const outside = (tree: string) => tree.split('\n').filter((line) => !line.startsWith('/dest')).join('\n');
    expect(outside(after)).toBe(outside(before));
    expect(after).not.toContain('escaped.txt');
    expect(existsSync('/escaped.txt') || existsSync('/tmp/escaped.txt')).toBe(false);
    await c.exec(['rm', '-rf', '/dest']);
  });

  test('a symlink the sandbox has below the destination is never written through', async () => {
    await c.exec(['sh', '-c', 'mkdir -p /dest2 && ln -s /etc /dest2/etc && ln -s /bin/busybox /dest2/tool']);
    const passwd = (await c.exec(['cat', '/etc/passwd'])).stdout;
    await expect(c.copyTo(Readable.from([tarArchive([{ name: 'etc/passwd', data: 'pwned\n' }])]), '/dest2'))
      .rejects.toMatchObject({ code: 'COPY_UNSAFE_ENTRY', message: expect.stringMatching(/symlink/) });
    expect((await c.exec(['cat', '/etc/passwd'])).stdout).toBe(passwd);
    // A file entry where a symlink is replaces the link; the file it pointed to is untouched.
    await c.copyTo(Readable.from([tarArchive([{ name: 'tool', data: 'replaced\n' }])]), '/dest2');
    expect((await c.exec(['cat', '/dest2/tool'])).stdout).toBe('replaced\n');
    expect((await c.exec(['busybox', 'true'])).exitCode).toBe(0);
  });
});

describe('the sandbox\'s own symlinks are carried, never followed', () => {
  test('copyFrom into a host directory keeps a link to /etc/shadow a link, and writes nothing through it', async () => {
    await c.exec(['sh', '-c', 'mkdir -p /out && ln -s /etc /out/etc && ln -s /etc/shadow /out/shadow && mkdir /out/etc2 && echo x > /out/etc2/shadow']);
    const out = join(work, 'extracted');
    await c.copyFrom('/out', out);
    expect(readlinkSync(join(out, 'shadow'))).toBe('/etc/shadow');
    expect(readlinkSync(join(out, 'etc'))).toBe('/etc');
    expect(readdirSync(out).sort()).toEqual(['etc', 'etc2', 'shadow']);
  });

  test('commit reads a link to a host path as a link: the layer in the cache holds no host file', async () => {
    const ref = await withContainer({ image }, async (s) => {
      await s.exec(['sh', '-c', 'mkdir /planted && ln -s /etc/shadow /planted/shadow && ln -s ../../../../../../etc/passwd /planted/up']);
      return s.commit();
    });
    const layers = readdirSync(cache).filter((d) => d.startsWith('layers')).flatMap((d) => readdirSync(join(cache, d)).map((k) => join(cache, d, k, 'fs')));
    const planted = layers.map((fs) => join(fs, 'planted')).find((p) => existsSync(p))!;
    expect(lstatSync(join(planted, 'shadow')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(planted, 'up'))).toBe('../../../../../../etc/passwd');
    await withContainer({ image: ref }, async (fork) => {
      expect((await fork.exec(['readlink', '/planted/shadow'])).stdout.trim()).toBe('/etc/shadow');
    });
  });
});
