// Our tar parser against node-tar's Parser (the installed version) on archives
// written by GNU tar in every header format, fed in awkward chunk sizes.
import { mkdirSync, linkSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { Parser } from 'tar';
import { describe, expect, it } from 'vitest';
import { TarParser } from '../../src/image/tar/parser.ts';
import type { TarEntry } from '../../src/image/tar/parser.ts';
import { tempDir } from './helpers/host.ts';

interface Seen { path: string; type: string; size: number; linkpath: string; mode: number; uid: number; mtime: number; sha: string }

function ours(tar: Buffer, chunk: number): Seen[] {
  const out: Seen[] = [];
  let cur: TarEntry | undefined;
  let data: Buffer[] = [];
  const parser = new TarParser({
    entry: (e) => { cur = e; data = []; },
    data: (c) => data.push(Buffer.from(c)),
    endEntry: () => {
      const e = cur!;
      out.push({ path: e.path.replace(/\/$/, ''), type: e.type, size: e.size, linkpath: e.linkpath, mode: e.mode, uid: e.uid, mtime: Math.floor(e.mtime), sha: Buffer.concat(data).toString('base64').slice(0, 40) });
    },
  });
  for (let i = 0; i < tar.length; i += chunk) parser.push(tar.subarray(i, i + chunk));
  parser.finish();
  return out;
}

const NODE_TAR_TYPES: Record<string, string> = { File: 'file', OldFile: 'file', Directory: 'dir', SymbolicLink: 'symlink', Link: 'hardlink', FIFO: 'fifo', CharacterDevice: 'char', BlockDevice: 'block' };

async function nodeTar(tar: Buffer): Promise<Seen[]> {
  const out: Seen[] = [];
  const parser = new Parser({ strict: true });
  parser.on('entry', (e) => {
    const parts: Buffer[] = [];
    e.on('data', (c: Buffer) => parts.push(c));
    e.on('end', () => out.push({
      path: e.path.replace(/\/$/, ''), type: NODE_TAR_TYPES[e.type] ?? e.type, size: e.size ?? 0, linkpath: e.linkpath ?? '',
      mode: (e.mode ?? 0) & 0o7777, uid: e.uid ?? 0, mtime: Math.floor((e.mtime?.getTime() ?? 0) / 1000), sha: Buffer.concat(parts).toString('base64').slice(0, 40),
    }));
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', () => resolve());
    parser.on('error', reject);
    parser.end(tar);
  });
  return out;
}

/**
 * Long names and link targets in every format: past 100 bytes (GNU long-name records, pax
 * headers); for ustar, which has neither, a path that fits only through its 155-byte prefix field.
 */
function sampleTree(ustar: boolean): string {
  const root = tempDir('tarsrc');
  const long = ustar ? `${'d'.repeat(90)}/${'e'.repeat(50)}` : `${'d'.repeat(120)}/${'e'.repeat(120)}`;
  mkdirSync(`${root}/${long}`, { recursive: true });
  writeFileSync(`${root}/${long}/${'f'.repeat(ustar ? 90 : 200)}`, 'deep and long\n');
  writeFileSync(`${root}/ünïcödé-名前.txt`, 'utf-8 names\n');
  writeFileSync(`${root}/big`, Buffer.alloc(70_000, 7));
  writeFileSync(`${root}/empty`, '');
  symlinkSync(`/${'t'.repeat(ustar ? 80 : 150)}/target`, `${root}/long-symlink`);
  linkSync(`${root}/big`, `${root}/hardlink-to-big`);
  execFileSync('mkfifo', [`${root}/fifo`]);
  return root;
}

describe('tar parser', () => {
  const trees = { long: sampleTree(false), ustar: sampleTree(true) };
  it.each(['gnu', 'posix', 'ustar', 'oldgnu'])('agrees with node-tar on a GNU tar --format=%s archive', async (format) => {
    const root = format === 'ustar' ? trees.ustar : trees.long;
    const tar = execFileSync('tar', ['-C', root, `--format=${format}`, '--sort=name', '--owner=1234', '--group=0', '-cf', '-', '.'], { maxBuffer: 1 << 26 });
    const expected = await nodeTar(tar);
    expect(expected.length).toBeGreaterThan(8);
    expect(Math.max(...expected.map((e) => e.path.length))).toBeGreaterThan(format === 'ustar' ? 200 : 400); // the long path is in it, whole
    for (const chunk of [1, 511, 512, 4096, 1 << 20]) expect(ours(tar, chunk)).toEqual(expected);
  });
});
