// A synchronous, push-based tar parser: feed it chunks of the uncompressed
// stream, it calls the sink for each entry and its data. Synchronous on
// purpose: the sink writes files with sync fs calls while zlib inflates the
// next chunk on the thread pool, which is what makes unpacking fast.
import { BLOCK, TarFormatError, decodeHeader, isZeroBlock, parsePax } from './header.ts';
import type { EntryType, PaxOverrides, RawHeader } from './header.ts';

export type FsEntryType = Exclude<EntryType, 'pax' | 'pax-global' | 'gnu-longname' | 'gnu-longlink'>;

export interface TarEntry {
  /** the name exactly as stored (not yet normalised or checked) */
  path: string;
  type: FsEntryType;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch, may be fractional (PAX) */
  mtime: number;
  linkpath: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer> | undefined;
  sparse: boolean;
}

export interface TarSink {
  entry(entry: TarEntry): void;
  /** a slice of the current entry's data; only valid during the call */
  data(chunk: Buffer): void;
  endEntry(): void;
}

/** Upper bound for one PAX / GNU long-name body: real ones are a few hundred bytes. */
const MAX_META_BYTES = 1 << 20;

type State = 'header' | 'data' | 'meta' | 'padding' | 'end';

export class TarParser {
  private state: State = 'header';
  private readonly headerBuf = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private remaining = 0;
  private padding = 0;
  private metaType: EntryType = 'pax';
  private metaParts: Buffer[] = [];
  private local: PaxOverrides = {};
  private global: PaxOverrides = {};
  private longName: string | undefined;
  private longLink: string | undefined;
  private readonly sink: TarSink;

  constructor(sink: TarSink) {
    this.sink = sink;
  }

  get ended(): boolean {
    return this.state === 'end';
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && this.state !== 'end') {
      switch (this.state) {
        case 'header': {
          if (this.headerFill === 0 && chunk.length - pos >= BLOCK) {
            this.onHeader(chunk, pos);
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.headerFill, chunk.length - pos);
            chunk.copy(this.headerBuf, this.headerFill, pos, pos + n);
            this.headerFill += n;
            pos += n;
            if (this.headerFill === BLOCK) {
              this.headerFill = 0;
              this.onHeader(this.headerBuf, 0);
            }
          }
          break;
        }
        case 'data': {
          const n = Math.min(this.remaining, chunk.length - pos);
          this.sink.data(chunk.subarray(pos, pos + n));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.sink.endEntry();
            this.state = this.padding ? 'padding' : 'header';
          }
          break;
        }
        case 'meta': {
          const n = Math.min(this.remaining, chunk.length - pos);
          this.metaParts.push(Buffer.from(chunk.subarray(pos, pos + n)));
          pos += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.onMeta(Buffer.concat(this.metaParts));
            this.metaParts = [];
            this.state = this.padding ? 'padding' : 'header';
          }
          break;
        }
        case 'padding': {
          const n = Math.min(this.padding, chunk.length - pos);
          pos += n;
          this.padding -= n;
          if (this.padding === 0) this.state = 'header';
          break;
        }
      }
    }
  }

  /** Call at the end of the stream: a stream cut inside an entry is an error. */
  finish(): void {
    if (this.state === 'end') return;
    if (this.state === 'header' && this.headerFill === 0 && this.pendingMetaIsEmpty()) return; // EOF without end blocks: tolerated, as GNU tar does
    throw new TarFormatError('tar stream ends in the middle of an entry (truncated layer)');
  }

  private pendingMetaIsEmpty(): boolean {
    return this.longName === undefined && this.longLink === undefined && Object.keys(this.local).length === 0;
  }

  private onHeader(buf: Buffer, off: number): void {
    if (isZeroBlock(buf, off)) {
      this.state = 'end';
      return;
    }
    const h = decodeHeader(buf, off);
    const padding = (BLOCK - (h.size % BLOCK)) % BLOCK;
    if (h.type === 'pax' || h.type === 'pax-global' || h.type === 'gnu-longname' || h.type === 'gnu-longlink') {
      if (h.size > MAX_META_BYTES) throw new TarFormatError(`tar ${h.type} header of ${h.size} bytes exceeds the ${MAX_META_BYTES} byte limit`);
      this.metaType = h.type;
      this.remaining = h.size;
      this.padding = padding;
      this.state = h.size ? 'meta' : padding ? 'padding' : 'header';
      if (h.size === 0) this.onMeta(Buffer.alloc(0));
      return;
    }
    const entry = this.merge(h);
    this.sink.entry(entry);
    this.remaining = entry.size;
    this.padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (entry.size > 0) {
      this.state = 'data';
    } else {
      this.sink.endEntry();
      this.state = this.padding ? 'padding' : 'header';
    }
  }

  private onMeta(body: Buffer): void {
    switch (this.metaType) {
      case 'pax': parsePax(body, this.local); break;
      case 'pax-global': parsePax(body, this.global); break;
      case 'gnu-longname': this.longName = nulTerminated(body); break;
      case 'gnu-longlink': this.longLink = nulTerminated(body); break;
      default: break;
    }
  }

  private merge(h: RawHeader): TarEntry {
    const g = this.global;
    const l = this.local;
    const xattrs = g.xattrs || l.xattrs ? new Map([...(g.xattrs ?? []), ...(l.xattrs ?? [])]) : undefined;
    const entry: TarEntry = {
      path: l.path ?? this.longName ?? g.path ?? h.name,
      type: h.type as FsEntryType,
      typeflag: h.typeflag,
      mode: h.mode & 0o7777,
      uid: l.uid ?? g.uid ?? h.uid,
      gid: l.gid ?? g.gid ?? h.gid,
      size: l.size ?? g.size ?? h.size,
      mtime: l.mtime ?? g.mtime ?? h.mtime,
      linkpath: l.linkpath ?? this.longLink ?? g.linkpath ?? h.linkname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs,
      sparse: Boolean(l.sparse || g.sparse || h.typeflag === 'S'),
    };
    // Only regular files carry data; for other types a stored size is skipped, not written.
    this.local = {};
    this.longName = undefined;
    this.longLink = undefined;
    return entry;
  }
}

function nulTerminated(body: Buffer): string {
  const end = body.indexOf(0);
  return body.subarray(0, end < 0 ? body.length : end).toString('utf8');
}
