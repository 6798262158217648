// Encoding tar headers: POSIX ustar, with a PAX extended header in front when a field does
// not fit (long or non-ASCII names, large ids or sizes) or the entry has xattrs
// (SCHILY.xattr.*, as GNU tar, Docker and containerd write them). node-tar's Pax cannot
// carry xattrs, and a committed layer must keep them, so this is our own; it is checked
// against node-tar's parser and GNU tar in test/image/tar-writer.test.ts.
import { BLOCK } from './header.ts';

export interface TarWriteEntry {
  /** relative, '/'-separated, no trailing slash (directories get theirs here) */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  mode: number;
  uid: number;
  gid: number;
  /** data bytes (regular files; 0 for everything else) */
  size: number;
  /** seconds since the epoch; written as whole seconds */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs?: Map<string, Buffer> | undefined;
}

const TYPEFLAGS: Record<TarWriteEntry['type'], string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };
const MAX_ID = 0o7777777;
const MAX_SIZE = 0o77777777777;

/** The two zero blocks that end an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

/** Zeros from the end of `size` bytes of data to the next block boundary. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

const ascii = (s: string): boolean => /^[\x01-\x7f]*$/.test(s);

/** ustar's name/prefix split at a '/': [prefix, name], or undefined when the path cannot be split so. */
function splitUstar(path: string): [string, string] | undefined {
  if (Buffer.byteLength(path) <= 100) return ['', path];
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i), name = path.slice(i + 1);
    if (prefix.length <= 155 && name.length <= 100 && name.length > 0) return [prefix, name];
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  // The length counts its own digits.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function octal(buf: Buffer, off: number, width: number, value: number): void {
  buf.write(`${Math.max(0, Math.floor(value)).toString(8).padStart(width - 1, '0')}\0`, off, width, 'latin1');
}

function ustarBlock(fields: { name: string; prefix: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: string; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(fields.name, 0, 100, 'utf8');
  octal(b, 100, 8, fields.mode & 0o7777);
  octal(b, 108, 8, Math.min(fields.uid, MAX_ID));
  octal(b, 116, 8, Math.min(fields.gid, MAX_ID));
  octal(b, 124, 12, Math.min(fields.size, MAX_SIZE));
  octal(b, 136, 12, Math.min(fields.mtime, MAX_SIZE));
  b.write(fields.typeflag, 156, 1, 'latin1');
  b.write(fields.linkname, 157, 100, 'utf8');
  b.write('ustar\u000000', 257, 8, 'latin1');
  octal(b, 329, 8, fields.devmajor);
  octal(b, 337, 8, fields.devminor);
  b.write(fields.prefix, 345, 155, 'utf8');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

/** The header block(s) of one entry; its data (padded with tarPadding) follows. */
export function encodeTarHeader(e: TarWriteEntry): Buffer {
  const path = e.type === 'dir' ? `${e.path}/` : e.path;
  const size = e.type === 'file' ? e.size : 0;
  const mtime = Math.max(0, Math.floor(e.mtime));
  const pax: Buffer[] = [];
  const split = ascii(path) ? splitUstar(path) : undefined;
  if (!split) pax.push(paxRecord('path', Buffer.from(path, 'utf8')));
  const linkFits = ascii(e.linkpath) && Buffer.byteLength(e.linkpath) <= 100;
  if (!linkFits) pax.push(paxRecord('linkpath', Buffer.from(e.linkpath, 'utf8')));
  if (e.uid > MAX_ID) pax.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_ID) pax.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (size > MAX_SIZE) pax.push(paxRecord('size', Buffer.from(String(size))));
  for (const [name, value] of e.xattrs ?? []) pax.push(paxRecord(`SCHILY.xattr.${name}`, value));
  const [prefix, name] = split ?? ['', path.slice(-100).replace(/^[^\x01-\x7f]+/, '')];
  const header = ustarBlock({
    name: ascii(name) ? name : '', prefix, mode: e.mode, uid: e.uid, gid: e.gid, size, mtime, typeflag: TYPEFLAGS[e.type],
    linkname: linkFits ? e.linkpath : '', devmajor: e.devmajor, devminor: e.devminor,
  });
  if (!pax.length) return header;
  const body = Buffer.concat(pax);
  const base = path.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = `PaxHeaders/${ascii(base) ? base : 'entry'}`.slice(0, 100);
  const paxHeader = ustarBlock({ name: paxName, prefix: '', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([paxHeader, body, tarPadding(body.length), header]);
}
