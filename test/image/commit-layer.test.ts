// A committed layer is a real OCI layer: the tar LayerCommit hashes is one GNU tar and node-tar
// read back entry for entry (whiteouts as .wh. files, an opaque directory's .wh..wh..opq marker,
// xattrs in PAX records, long and non-ASCII names), its sha256 is the diff_id the image lists,
// and the unpacked directory in the cache is overlay's form of the same entries (0:0 whiteout
// devices, overlay.opaque=y). Fed synthetic upper entries: the real upper's stream is what
// test/runtime/commit.test.ts commits.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Parser } from 'tar';
import { describe, expect, test } from 'vitest';
import { LayerCommit, type CommitResult } from '../../src/image/commit/commit-layer.ts';
import type { UpperEntry } from '../../src/image/commit/upper-entries.ts';
import { encodeTarHeader, tarPadding, TAR_END } from '../../src/image/tar/writer.ts';
import { TarParser } from '../../src/image/tar/parser.ts';
import { getXattr } from '../../src/image/syscalls.ts';
import { isRoot, tempDir } from './helpers/host.ts';

const BASE = { reference: 'base', manifestDigest: `sha256:${'0'.repeat(64)}`, layers: [`sha256:${'1'.repeat(64)}`], overlayOptions: [] };
const longName = `${'deep/'.repeat(30)}ünïcödé-名前-${'x'.repeat(150)}.txt`;

function entry(path: string, kind: UpperEntry['kind'], more: Partial<UpperEntry> = {}): UpperEntry {
  return { path, kind, mode: kind === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: 1_700_000_000.5, size: 0, link: '', devmajor: 0, devminor: 0, xattrs: undefined, ...more };
}

/** An upper directory as the runtime streams it: entries, each file's data after it. */
const UPPER: [UpperEntry, Buffer?][] = [
  [entry('', 'dir')],
  [entry('data', 'dir', { uid: 1000, gid: 1000, mode: 0o750 })],
  [entry('data/new.txt', 'file', { size: 6, mode: 0o640, uid: 1000, gid: 1000, xattrs: new Map([['user.note', Buffer.from('kept')], ['user.overlay.origin', Buffer.from('x')]]) }), Buffer.from('hello\n')],
  [entry('data/hard', 'hardlink', { link: 'data/new.txt' })],
  [entry('data/link', 'symlink', { link: '../etc/passwd' })],
  [entry('data/fifo', 'fifo', { mode: 0o600 })],
  [entry('data/gone.txt', 'char')], // overlay's whiteout: a 0:0 character device
  [entry('data/socket', 'socket')],
  [entry('olddir', 'dir', { xattrs: new Map([['user.overlay.opaque', Buffer.from('y')]]) })],
  [entry('olddir/c', 'file', { size: 2 }), Buffer.from('c\n')],
  [entry(longName.slice(0, longName.lastIndexOf('/')), 'dir')],
  [entry(longName, 'file', { size: 4 }), Buffer.from('long')],
  [entry('big.bin', 'file', { size: 9 << 20 }), Buffer.alloc(9 << 20, 7)], // past the hash worker's threshold
];

async function commitUpper(cache: string): Promise<{ result: CommitResult; tar: Buffer }> {
  const parts: Buffer[] = [];
  const commit = new LayerCommit(BASE, { Env: ['A=1'] }, { cache, onTar: (b) => parts.push(Buffer.from(b)) });
  for (const [e, data] of UPPER) {
    commit.entry(e);
    if (data) {
      for (let i = 0; i < data.length; i += 65536) commit.data(data.subarray(i, i + 65536));
      commit.endEntry();
    }
  }
  return { result: await commit.finish(), tar: Buffer.concat(parts) };
}

interface Listed { path: string; type: string; mode: number; uid: number; size: number; linkpath: string; xattrs: Record<string, string> }

function ours(tar: Buffer): Listed[] {
  const out: Listed[] = [];
  const parser = new TarParser({
    entry: (e) => out.push({ path: e.path.replace(/\/$/, ''), type: e.type, mode: e.mode, uid: e.uid, size: e.size, linkpath: e.linkpath,
      xattrs: Object.fromEntries([...(e.xattrs ?? [])].map(([k, v]) => [k, v.toString()])) }),
    data: () => {},
    endEntry: () => {},
  });
  parser.push(tar);
  parser.finish();
  return out;
}

describe('committing an upper directory', () => {
  test('the layer tar: its sha256 is the diff_id; GNU tar and node-tar read the same entries back', async () => {
    const cache = tempDir('commit-cache');
    const { result, tar } = await commitUpper(cache);
    expect(`sha256:${createHash('sha256').update(tar).digest('hex')}`).toBe(result.diffId);
    expect(result.skipped).toEqual({ sockets: 1, devices: 0 });

    const entries = ours(tar);
    expect(entries.map((e) => `${e.type} ${e.path}${e.linkpath ? ` -> ${e.linkpath}` : ''}`)).toEqual([
      'dir data', 'file data/new.txt', 'hardlink data/hard -> data/new.txt', 'symlink data/link -> ../etc/passwd', 'fifo data/fifo',
      'file data/.wh.gone.txt', 'dir olddir', 'file olddir/.wh..wh..opq', 'file olddir/c',
      `dir ${longName.slice(0, longName.lastIndexOf('/'))}`, `file ${longName}`, 'file big.bin',
    ]);
    const newTxt = entries.find((e) => e.path === 'data/new.txt')!;
    expect(newTxt).toMatchObject({ mode: 0o640, uid: 1000, size: 6 });
    // The user's xattr travels; overlay's own bookkeeping does not.
    expect(newTxt.xattrs).toEqual({ 'user.note': 'kept' });
    expect(entries.find((e) => e.path === 'olddir')!.xattrs).toEqual({});

    const file = join(tempDir('commit-tar'), 'layer.tar');
    writeFileSync(file, tar);
    const gnu = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--quoting-style=literal', '-tvf', file], { encoding: 'utf8' });
    for (const name of ['data/.wh.gone.txt', 'olddir/.wh..wh..opq', 'data/hard link to data/new.txt', 'data/link -> ../etc/passwd', longName]) expect(gnu).toContain(name);
    const nodeTar: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const p = new Parser({ strict: true });
      p.on('entry', (e) => { nodeTar.push(e.path.replace(/\/$/, '')); e.resume(); });
      p.on('end', () => resolve());
      p.on('error', reject);
      p.end(tar);
    });
    expect(nodeTar).toEqual(entries.map((e) => e.path));
  });

  test('the same upper gives the same layer and image (digests are of content only)', async () => {
    const a = await commitUpper(tempDir('commit-cache'));
    const b = await commitUpper(tempDir('commit-cache'));
    expect(b.result.diffId).toBe(a.result.diffId);
    expect(b.result.reference).toBe(a.result.reference);
    expect(a.result.reference).toBe(`cache:${a.result.imageId}`);
  });

  test('the unpacked layer in the cache is overlay\'s form: whiteout devices, opaque directories, links kept', async () => {
    const cache = tempDir('commit-cache');
    const { result } = await commitUpper(cache);
    const memo = JSON.parse(readFileSync(join(cache, 'images', `${result.imageId.slice(7)}.json`), 'utf8'));
    expect(memo.layers).toEqual([...BASE.layers, result.diffId]);
    expect(memo.committed).toMatchObject({ reference: 'base', layer: result.diffId, tarBytes: expect.any(Number) });
    expect(`sha256:${createHash('sha256').update(JSON.stringify(memo.committed.ociConfig)).digest('hex')}`).toBe(result.imageId);
    const fs = execFileSync('sh', ['-c', `ls -d ${cache}/layers*/${result.diffId.slice(7)}/fs`], { encoding: 'utf8' }).trim();
    const gone = lstatSync(join(fs, 'data/gone.txt'));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    expect(getXattr(join(fs, 'olddir'), 'user.overlay.opaque')?.toString()).toBe('y');
    expect(lstatSync(join(fs, 'data/hard')).ino).toBe(lstatSync(join(fs, 'data/new.txt')).ino);
    expect(readlinkSync(join(fs, 'data/link'))).toBe('../etc/passwd');
    expect(lstatSync(join(fs, 'data/fifo')).isFIFO()).toBe(true);
    expect(getXattr(join(fs, 'data/new.txt'), 'user.note')?.toString()).toBe('kept');
    // As root the layer keeps the image's owners, shifted into the sandboxes' id range; rootless every file is the user's.
    const info = JSON.parse(readFileSync(join(fs, '..', 'layer.json'), 'utf8'));
    expect(lstatSync(join(fs, 'data/new.txt')).uid).toBe(isRoot ? info.owners.uid + 1000 : process.getuid!());
  });

  test('the tar writer: a header and its padding are whole blocks; PAX only where ustar cannot say it', () => {
    const plain = encodeTarHeader({ path: 'a/b.txt', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtime: 1, linkpath: '', devmajor: 0, devminor: 0 });
    expect(plain.length).toBe(512);
    const pax = encodeTarHeader({ path: 'ü.txt', type: 'file', mode: 0o644, uid: 3_000_000, gid: 0, size: 3, mtime: 1, linkpath: '', devmajor: 0, devminor: 0 });
    expect(pax.length).toBe(1536);
    expect(pax.subarray(512, 1024).toString('utf8')).toContain('path=ü.txt\n');
    expect(pax.subarray(512, 1024).toString('utf8')).toContain('uid=3000000\n');
    expect(tarPadding(3).length).toBe(509);
    expect(tarPadding(512).length).toBe(0);
    expect(TAR_END.length).toBe(1024);
  });
});
