// The record stream `vtc-runtime tree` reads and writes (native/tree.c has the layout): a
// sandbox's writable layer or a path in it, as entries with their data. Decoding is push-based
// and synchronous like the tar parser, so that a consumer writing files with sync calls keeps up
// with the stream; encoding makes the records copyTo sends.
import { SandboxError } from '../errors.ts';
import type { UpperEntry } from '../image/commit/upper-entries.ts';

// One shape for a tree's entries, whoever reads them: the image layer that commit builds uses it too.
export type TreeEntry = UpperEntry;
export type TreeKind = TreeEntry['kind'];

export interface TreeSink {
  entry(entry: TreeEntry): void;
  /** a slice of the current entry's data, valid only during the call */
  data(chunk: Buffer): void;
  endEntry(): void;
}

const MAGIC = 0x45435456; // "VTCE"
const HEADER = 64;
const KINDS: Record<string, TreeKind> = { d: 'dir', f: 'file', l: 'symlink', h: 'hardlink', c: 'char', b: 'block', p: 'fifo', s: 'socket' };
const CODES = Object.fromEntries(Object.entries(KINDS).map(([code, kind]) => [kind, code])) as Record<TreeKind, string>;

export class TreeStreamError extends SandboxError {}

function malformed(what: string): TreeStreamError {
  return new TreeStreamError('TREE_STREAM_CORRUPT', `the runtime's file stream is malformed: ${what}`);
}

function utf8(bytes: Buffer, what: string): string {
  const s = bytes.toString('utf8');
  if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(bytes)) {
    throw new SandboxError('TREE_NAME_NOT_UTF8', `${what} ${JSON.stringify(s)} is not valid UTF-8, which a tar archive cannot name`,
      { fix: 'rename the file inside the sandbox (or remove it) first' });
  }
  return s;
}

/** A record's length (header, names, xattrs), once its header is in buf at pos; undefined before. */
function recordLength(buf: Buffer, pos: number): number | undefined {
  if (buf.length - pos < HEADER) return undefined;
  if (buf.readUInt32LE(pos) !== MAGIC) throw malformed('bad record magic');
  if (buf[pos + 4] === 0x5a /* Z */) return HEADER;
  const names = buf.readUInt32LE(pos + 48) + buf.readUInt32LE(pos + 52) + buf.readUInt32LE(pos + 56);
  if (names > 1 << 20) throw malformed('a record header names more than 1 MiB');
  return HEADER + names;
}

/** Feeds a record stream, chunk by chunk, to a sink. */
export class TreeDecoder {
  readonly #sink: TreeSink;
  /** a record split across chunks, gathered until whole */
  #partial: Buffer = Buffer.alloc(0);
  /** data bytes of the current entry still to come */
  #remaining = 0;
  #ended = false;

  constructor(sink: TreeSink) {
    this.#sink = sink;
  }

  /** True once the end record was read: a stream cut short never is. */
  get ended(): boolean {
    return this.#ended;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#ended) throw malformed('data after the end record');
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - pos);
        this.#sink.data(chunk.subarray(pos, pos + n));
        pos += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#sink.endEntry();
        continue;
      }
      if (!this.#partial.length) {
        const length = recordLength(chunk, pos);
        if (length !== undefined && chunk.length - pos >= length) {
          this.#record(chunk.subarray(pos, pos + length));
          pos += length;
          continue;
        }
      }
      const have = this.#partial.length;
      const want = (have < HEADER ? HEADER : recordLength(this.#partial, 0)!) - have;
      const n = Math.min(want, chunk.length - pos);
      this.#partial = Buffer.concat([this.#partial, chunk.subarray(pos, pos + n)]);
      pos += n;
      if (this.#partial.length >= HEADER && this.#partial.length === recordLength(this.#partial, 0)) {
        const record = this.#partial;
        this.#partial = Buffer.alloc(0);
        this.#record(record);
      }
    }
  }

  /** One whole record (header, names, xattrs). */
  #record(buf: Buffer): void {
    const code = String.fromCharCode(buf[4]!);
    if (code === 'Z') {
      this.#ended = true;
      return;
    }
    const kind = KINDS[code];
    if (!kind) throw malformed(`unknown entry kind ${JSON.stringify(code)}`);
    const pathLen = buf.readUInt32LE(48), linkLen = buf.readUInt32LE(52), xattrLen = buf.readUInt32LE(56);
    const size = Number(buf.readBigUInt64LE(40));
    if (size && kind !== 'file') throw malformed(`a ${kind} with data`);
    let o = HEADER;
    const path = utf8(buf.subarray(o, (o += pathLen)), 'the file name');
    const link = utf8(buf.subarray(o, (o += linkLen)), 'the link target');
    const xattrs = xattrLen ? decodeXattrs(buf.subarray(o, o + xattrLen)) : undefined;
    this.#sink.entry({
      path, kind, link, size, xattrs, ...(buf[5]! & 1 ? { staged: buf.readUInt32LE(60) } : {}),
      mode: buf.readUInt32LE(8) & 0o7777,
      uid: buf.readUInt32LE(12),
      gid: buf.readUInt32LE(16),
      devmajor: buf.readUInt32LE(20),
      devminor: buf.readUInt32LE(24),
      mtime: Number(buf.readBigInt64LE(32)) + buf.readUInt32LE(28) / 1e9,
    });
    if (size === 0 || buf[5]! & 1) this.#sink.endEntry(); // no data follows (a staged file's is in its stage file)
    else this.#remaining = size;
  }

  /** At the end of the stream: anything but a whole stream ending with its end record is an error. */
  finish(): void {
    if (!this.#ended) throw malformed('the stream ended early (the runtime stopped before its end record)');
  }
}

function decodeXattrs(block: Buffer): Map<string, Buffer> {
  const xattrs = new Map<string, Buffer>();
  for (let o = 0; o < block.length;) {
    if (o + 8 > block.length) throw malformed('xattr block');
    const nameLen = block.readUInt32LE(o), valueLen = block.readUInt32LE(o + 4);
    const name = block.toString('utf8', o + 8, o + 8 + nameLen);
    xattrs.set(name, Buffer.from(block.subarray(o + 8 + nameLen, o + 8 + nameLen + valueLen)));
    o += 8 + nameLen + valueLen;
  }
  return xattrs;
}

/** One record's header, names and xattrs; a file's `size` bytes of data must follow it. */
export function encodeEntry(e: TreeEntry): Buffer {
  const path = Buffer.from(e.path, 'utf8');
  const link = Buffer.from(e.link, 'utf8');
  const xattrParts: Buffer[] = [];
  for (const [name, value] of e.xattrs ?? []) {
    const head = Buffer.alloc(8);
    const n = Buffer.from(name, 'utf8');
    head.writeUInt32LE(n.length, 0);
    head.writeUInt32LE(value.length, 4);
    xattrParts.push(head, n, value);
  }
  const xattrs = Buffer.concat(xattrParts);
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(MAGIC, 0);
  h[4] = CODES[e.kind].charCodeAt(0);
  h.writeUInt32LE(e.mode & 0o7777, 8);
  h.writeUInt32LE(e.uid >>> 0, 12);
  h.writeUInt32LE(e.gid >>> 0, 16);
  h.writeUInt32LE(e.devmajor, 20);
  h.writeUInt32LE(e.devminor, 24);
  const seconds = Math.floor(e.mtime);
  h.writeUInt32LE(Math.min(999_999_999, Math.round((e.mtime - seconds) * 1e9)), 28);
  h.writeBigInt64LE(BigInt(seconds), 32);
  h.writeBigUInt64LE(BigInt(e.kind === 'file' ? e.size : 0), 40);
  h.writeUInt32LE(path.length, 48);
  h.writeUInt32LE(link.length, 52);
  h.writeUInt32LE(xattrs.length, 56);
  return Buffer.concat([h, path, link, xattrs]);
}

/** The record that ends a stream. */
export function endRecord(): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(MAGIC, 0);
  h[4] = 'Z'.charCodeAt(0);
  return h;
}
