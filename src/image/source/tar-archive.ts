// A tar archive holding an image (docker-archive, Docker 25+ save, or a tarred
// OCI layout). Members are read in place: one pass over the headers records
// where each file's data starts, and blobs are then streamed from that range.
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { ImageError } from '../../errors.ts';
import { BLOCK, TarFormatError, decodeHeader, isZeroBlock, parsePax, utf8 } from '../tar/header.ts';
import { normalizeEntryPath, parentOf } from '../unpack/entry-path.ts';
import type { ImageSource } from './types.ts';

interface Member {
  offset: number;
  size: number;
  /** symlink or hardlink target, already relative to the archive root */
  link?: string;
}

/** Docker 25+ stores legacy paths as symlinks to blobs/; follow a few hops at most. */
const MAX_LINK_HOPS = 8;

export class TarArchiveSource implements ImageSource {
  readonly location: string;
  readonly identity: string;
  private readonly members: Map<string, Member>;

  constructor(file: string) {
    this.location = file;
    const fd = openSync(file, 'r');
    try {
      const st = fstatSync(fd);
      this.identity = `tar:${file}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
      this.members = indexMembers(fd, st.size, file);
    } finally {
      closeSync(fd);
    }
  }

  size(path: string): number | undefined {
    return this.lookup(path)?.size;
  }

  open(path: string): Readable {
    const m = this.lookup(path);
    if (!m) throw new ImageError('IMAGE_BLOB_MISSING', `${this.location} has no member ${path}`);
    if (m.size === 0) return Readable.from([]);
    return createReadStream(this.location, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: 1 << 20 });
  }

  private lookup(path: string): Member | undefined {
    let key: string;
    try {
      key = normalizeEntryPath(path, 'archive member');
    } catch {
      return undefined; // a name that leaves the archive root is no member of it
    }
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const m = this.members.get(key);
      if (!m?.link) return m;
      key = m.link;
    }
    return undefined;
  }
}

function indexMembers(fd: number, fileSize: number, file: string): Map<string, Member> {
  const members = new Map<string, Member>();
  const header = Buffer.alloc(BLOCK);
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: { path?: string; linkpath?: string; size?: number } = {};
  const readBody = (size: number): Buffer => {
    if (size > 1 << 20) throw new TarFormatError('oversized tar metadata header');
    const body = Buffer.alloc(size);
    if (readSync(fd, body, 0, size, pos) !== size) throw new TarFormatError('truncated tar archive');
    return body;
  };
  try {
    while (pos + BLOCK <= fileSize) {
      if (readSync(fd, header, 0, BLOCK, pos) !== BLOCK || isZeroBlock(header, 0)) break;
      const h = decodeHeader(header, 0);
      pos += BLOCK;
      const size = h.type === 'pax' || h.type === 'gnu-longname' || h.type === 'gnu-longlink' ? h.size : pax.size ?? h.size;
      if (h.type === 'pax') pax = parsePax(readBody(size));
      else if (h.type === 'gnu-longname') longName = utf8(readBody(size)).replace(/\0.*$/s, '');
      else if (h.type === 'gnu-longlink') longLink = utf8(readBody(size)).replace(/\0.*$/s, '');
      else if (h.type !== 'pax-global') {
        const name = safeName(pax.path ?? longName ?? h.name);
        const linkname = pax.linkpath ?? longLink ?? h.linkname;
        if (name !== undefined && h.type === 'file') members.set(name, { offset: pos, size });
        if (name !== undefined && h.type === 'symlink') {
          const target = safeName(linkname.startsWith('/') ? linkname : `${parentOf(name)}/${linkname}`, true);
          if (target !== undefined) members.set(name, { offset: 0, size: 0, link: target });
        }
        if (name !== undefined && h.type === 'hardlink') {
          const target = safeName(linkname);
          if (target !== undefined) members.set(name, { offset: 0, size: 0, link: target });
        }
        pax = {};
        longName = longLink = undefined;
      }
      if (pos + size > fileSize) throw new TarFormatError('truncated tar archive');
      pos += Math.ceil(size / BLOCK) * BLOCK;
    }
  } catch (err) {
    if (!(err instanceof TarFormatError)) throw err;
    throw new ImageError('IMAGE_ARCHIVE_CORRUPT', `${file} is not a readable tar archive: ${err.message}`, { cause: err });
  }
  return members;
}

/** A member name relative to the archive root, or undefined for names that leave it. */
function safeName(name: string, resolveDots = false): string | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (!resolveDots || parts.length === 0) return undefined;
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}
