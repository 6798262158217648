// Decoding of one 512-byte tar header block (v7, ustar, GNU) and of PAX
// extended-header records. Kept free of I/O so both the layer parser and the
// docker-archive indexer use the same, tested code.

export const BLOCK = 512;

export type EntryType =
  | 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo'
  | 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink' | 'unsupported';

export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: EntryType;
  /** the raw typeflag character, for messages about unsupported entries */
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}

/** Header fields a PAX record may override, plus xattrs. */
export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  xattrs?: Map<string, Buffer>;
  /** set when the entry uses GNU sparse encoding, which we do not expand */
  sparse?: boolean;
}

export class TarFormatError extends Error {}

const TYPES: Record<string, EntryType> = {
  '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char',
  '4': 'block', '5': 'dir', '6': 'fifo', x: 'pax', g: 'pax-global', L: 'gnu-longname', K: 'gnu-longlink',
};

export function isZeroBlock(buf: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i += 8) {
    if (buf.readBigUInt64LE(i) !== 0n) return false;
  }
  return true;
}

/** Decodes the header at buf[off..off+512]; throws TarFormatError on a bad checksum. */
export function decodeHeader(buf: Buffer, off: number): RawHeader {
  verifyChecksum(buf, off);
  const typeflag = String.fromCharCode(buf[off + 156]!);
  const magic = buf.toString('latin1', off + 257, off + 263);
  let name = cString(buf, off, 100);
  // POSIX ustar splits long names into prefix + name; GNU uses that area for other fields.
  if (magic === 'ustar\0') {
    const prefix = cString(buf, off + 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: numeric(buf, off + 100, 8),
    uid: numeric(buf, off + 108, 8),
    gid: numeric(buf, off + 116, 8),
    size: numeric(buf, off + 124, 12),
    mtime: numeric(buf, off + 136, 12),
    type: TYPES[typeflag] ?? 'unsupported',
    typeflag,
    linkname: cString(buf, off + 157, 100),
    devmajor: numeric(buf, off + 329, 8),
    devminor: numeric(buf, off + 337, 8),
  };
}

function verifyChecksum(buf: Buffer, off: number): void {
  const stored = numeric(buf, off + 148, 8);
  let unsigned = 8 * 0x20; // the checksum field itself counts as spaces
  let high = 0; // bytes > 127, which the (historical) signed sum counts 256 lower
  for (let i = off; i < off + 148; i++) {
    unsigned += buf[i]!;
    high += buf[i]! >> 7;
  }
  for (let i = off + 156; i < off + BLOCK; i++) {
    unsigned += buf[i]!;
    high += buf[i]! >> 7;
  }
  if (stored !== unsigned && stored !== unsigned - 256 * high) throw new TarFormatError('tar header checksum mismatch');
}

/** Bytes up to the first NUL, as UTF-8; names that are not valid UTF-8 are refused. */
function cString(buf: Buffer, off: number, len: number): string {
  let end = buf.indexOf(0, off);
  if (end < 0 || end > off + len) end = off + len;
  return utf8(buf.subarray(off, end));
}

export function utf8(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(bytes)) {
    throw new TarFormatError('entry name is not valid UTF-8');
  }
  return s;
}

/** Octal ASCII, or GNU base-256 when the top bit of the first byte is set. */
function numeric(buf: Buffer, off: number, len: number): number {
  const first = buf[off]!;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError('negative numeric field in tar header');
    let value = first & 0x7f;
    for (let i = 1; i < len; i++) value = value * 256 + buf[off + i]!;
    if (!Number.isSafeInteger(value)) throw new TarFormatError('numeric field in tar header too large');
    return value;
  }
  let value = 0;
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw new TarFormatError('invalid octal field in tar header');
    value = value * 8 + (c - 0x30);
  }
  return value;
}

/** Parses "LEN key=value\n" records. Values are bytes (xattrs may be binary). */
export function parsePax(body: Buffer, into: PaxOverrides = {}): PaxOverrides {
  let pos = 0;
  while (pos < body.length) {
    if (body[pos] === 0) break; // NUL padding some writers leave
    const space = body.indexOf(0x20, pos);
    if (space < 0) throw new TarFormatError('malformed PAX record');
    const len = Number(body.toString('latin1', pos, space));
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > body.length) {
      throw new TarFormatError('malformed PAX record length');
    }
    const record = body.subarray(space + 1, pos + len - 1); // drop trailing \n
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('malformed PAX record');
    applyPaxRecord(into, record.toString('utf8', 0, eq), record.subarray(eq + 1));
    pos += len;
  }
  return into;
}

function applyPaxRecord(into: PaxOverrides, key: string, value: Buffer): void {
  const decimal = (): number => {
    const n = Number(value.toString('latin1'));
    if (!Number.isFinite(n) || n < 0) throw new TarFormatError(`invalid PAX ${key}`);
    return n;
  };
  if (key === 'path') into.path = utf8(value);
  else if (key === 'linkpath') into.linkpath = utf8(value);
  else if (key === 'size') {
    into.size = decimal();
    if (!Number.isSafeInteger(into.size)) throw new TarFormatError('invalid PAX size');
  } else if (key === 'uid') into.uid = Math.trunc(decimal());
  else if (key === 'gid') into.gid = Math.trunc(decimal());
  else if (key === 'mtime') into.mtime = decimal();
  else if (key.startsWith('SCHILY.xattr.')) {
    into.xattrs ??= new Map();
    into.xattrs.set(key.slice('SCHILY.xattr.'.length), Buffer.from(value));
  } else if (key.startsWith('GNU.sparse.')) into.sparse = true;
  // other keys (atime, ctime, uname, gname, comment, charset, ...) carry nothing we apply
}
