// Applies tar entries to a fresh, private layer directory so that it can be
// used as one overlay lower directory.
//
// Why this is safe without openat(): the directory is created empty by us and
// nobody else writes to it, so every inode in it was made by this writer and
// is recorded in `kinds`. Before touching a path we check, in that map, that
// each parent is a directory we made; an entry whose parent is a symlink (or
// any non-directory) fails the layer. Nothing is ever opened through a
// symlink: files are created O_EXCL|O_NOFOLLOW after removing what was there,
// links and xattrs use the l* calls, and hardlinks may only point at files made
// earlier in this same layer. node-tar is not used for writing: its history of
// CVEs is exactly these cases (see src/image/README.md).
import {
  closeSync, constants, readFileSync, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lutimesSync,
  mkdirSync, openSync, renameSync, symlinkSync, unlinkSync, writeSync, chmodSync, utimesSync,
} from 'node:fs';
import type { TarEntry, TarSink } from '../tar/parser.ts';
import type { OwnerShift } from '../cache-layout.ts';
import { mkFifo, mkWhiteout, setXattr, SyscallError } from '../syscalls.ts';
import { UnsafeEntryError, baseName, normalizeEntryPath, parentOf } from './entry-path.ts';
import { removeTree } from '../fs-util.ts';
import { logger } from '../../log.ts';

const log = logger('image');

type Kind = 'dir' | 'file' | 'symlink' | 'fifo' | 'whiteout';

export interface LayerLimits {
  /** entries per layer (tar bomb of empty files) */
  maxEntries: number;
  /** bytes of regular-file data per layer */
  maxBytes: number;
}

export interface LayerStats {
  entries: number;
  bytes: number;
  skipped: { devices: number; unsupported: number; xattrs: number };
}

export interface WriterOptions {
  root: string;
  /** running as root: chown to the image's ids, keep setuid bits, set trusted.* xattrs */
  privileged: boolean;
  /** as root: the image's ids are stored shifted into the id range sandboxes map (see src/id-range.ts) */
  owners?: OwnerShift;
  limits: LayerLimits;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
/** Linux's O_CLOEXEC; Node's fs.constants does not export it. */
const O_CLOEXEC = 0o2000000;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;

/** The process's umask, from /proc (process.umask() without an argument sets it, twice); unknown: 0o777, every mode is set. */
function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m) return parseInt(m[1]!, 8);
  } catch { /* not Linux's /proc */ }
  return 0o777;
}

export class LayerWriter implements TarSink {
  readonly stats: LayerStats = { entries: 0, bytes: 0, skipped: { devices: 0, unsupported: 0, xattrs: 0 } };
  private readonly kinds = new Map<string, Kind>([['', 'dir']]);
  /** final mode and mtime of directories, applied last: children change mtimes and a 0555 dir would block them */
  private readonly dirMeta = new Map<string, { mode: number; mtime: number }>();
  private readonly opts: WriterOptions;
  private fd = -1;
  private file: TarEntry | undefined;
  private fileRel = '';
  /** the mode the open file already has, when it was created here with its own */
  private fileCreatedMode: number | undefined;
  private readonly umask = readUmask();

  constructor(opts: WriterOptions) {
    this.opts = opts;
  }

  entry(e: TarEntry): void {
    if (++this.stats.entries > this.opts.limits.maxEntries) {
      throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer has more than ${this.opts.limits.maxEntries} entries`);
    }
    if (e.sparse) throw new UnsafeEntryError('IMAGE_LAYER_UNSUPPORTED', `entry "${e.path}" is a GNU sparse file, which is not supported`);
    const rel = normalizeEntryPath(e.path);
    const name = baseName(rel);
    if (rel === '') return; // the layer root's own metadata: overlay takes the root's from the upper dir
    if (name.startsWith(WHITEOUT_PREFIX)) return this.whiteout(rel, name);

    switch (e.type) {
      case 'dir': return this.dir(rel, e);
      case 'file': return this.regular(rel, e);
      case 'symlink': return this.symlink(rel, e);
      case 'hardlink': return this.hardlink(rel, e);
      case 'fifo': return this.fifo(rel, e);
      case 'char':
      case 'block':
        // Device nodes would give a container (or a host user reading the cache) raw access
        // to host devices; the runtime provides /dev itself.
        this.stats.skipped.devices++;
        log('skipping %s device %s (%d:%d)', e.type, rel, e.devmajor, e.devminor);
        return;
      default:
        this.stats.skipped.unsupported++;
        log('skipping unsupported entry %s (type %j)', rel, e.typeflag);
    }
  }

  data(chunk: Buffer): void {
    if (this.fd < 0) return; // data of a non-file entry is skipped
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off);
  }

  endEntry(): void {
    if (this.fd < 0 || !this.file) return;
    const e = this.file;
    const fd = this.fd;
    this.fd = -1;
    this.file = undefined;
    try {
      if (this.opts.privileged) fchownSync(fd, ...this.hostIds(e));
      // After chown, which clears setuid bits; not when open() gave the file its mode (no special bits, none masked).
      const mode = this.fileMode(e.mode);
      if (mode !== this.fileCreatedMode) fchmodSync(fd, mode);
      futimesSync(fd, e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
    this.applyXattrs(this.abs(this.fileRel), e);
  }

  /** Applies deferred directory modes and times, deepest first. */
  finish(): void {
    const dirs = [...this.dirMeta.entries()].sort((a, b) => b[0].length - a[0].length);
    for (const [rel, meta] of dirs) {
      const abs = this.abs(rel);
      chmodSync(abs, meta.mode);
      utimesSync(abs, meta.mtime, meta.mtime);
    }
  }

  /** Closes a file left open by a failed unpack. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private abs(rel: string): string {
    return `${this.opts.root}/${rel}`;
  }

  private dir(rel: string, e: TarEntry): void {
    this.ensureParent(rel);
    // `.wh.d` then `d/` in one layer: d is deleted below and recreated, i.e. opaque.
    if (this.kinds.get(rel) === 'whiteout') this.ensureDir(rel);
    if (this.kinds.get(rel) !== 'dir') {
      this.clear(rel);
      mkdirSync(this.abs(rel), 0o700);
      this.kinds.set(rel, 'dir');
    }
    if (this.opts.privileged) lchownSync(this.abs(rel), ...this.hostIds(e));
    this.dirMeta.set(rel, { mode: this.opts.privileged ? e.mode : e.mode & 0o3777, mtime: e.mtime });
    this.applyXattrs(this.abs(rel), e);
  }

  private regular(rel: string, e: TarEntry): void {
    this.stats.bytes += e.size;
    if (this.stats.bytes > this.opts.limits.maxBytes) {
      throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer holds more than ${this.opts.limits.maxBytes} bytes of file data`);
    }
    this.ensureParent(rel);
    this.clear(rel);
    // Created with its permissions (the directory is private until the layer is complete); umask may take some.
    const perms = this.fileMode(e.mode) & 0o777;
    this.fd = openSync(this.abs(rel), CREATE_FLAGS, perms);
    this.file = e;
    this.fileRel = rel;
    this.fileCreatedMode = perms & ~this.umask;
    this.kinds.set(rel, 'file');
  }

  /**
   * A regular file whose data is already in a file of its own (a commit's stage directory, made by the
   * runtime in a private directory): moved into place instead of written, then given the entry's owner,
   * mode, time and xattrs like any other.
   */
  adopt(e: TarEntry, source: string): void {
    if (++this.stats.entries > this.opts.limits.maxEntries) {
      throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer has more than ${this.opts.limits.maxEntries} entries`);
    }
    const rel = normalizeEntryPath(e.path);
    if (rel === '' || baseName(rel).startsWith(WHITEOUT_PREFIX) || e.type !== 'file') {
      throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `entry "${e.path}" cannot take a staged file`);
    }
    this.stats.bytes += e.size;
    if (this.stats.bytes > this.opts.limits.maxBytes) {
      throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer holds more than ${this.opts.limits.maxBytes} bytes of file data`);
    }
    this.ensureParent(rel);
    this.clear(rel);
    renameSync(source, this.abs(rel));
    this.kinds.set(rel, 'file');
    this.fd = openSync(this.abs(rel), constants.O_RDONLY | constants.O_NOFOLLOW | O_CLOEXEC);
    this.file = e;
    this.fileRel = rel;
    this.fileCreatedMode = undefined;
    this.endEntry();
  }

  private symlink(rel: string, e: TarEntry): void {
    // The target is stored verbatim: it is resolved inside the container's root at run
    // time, and this writer never follows it (parents are checked against `kinds`).
    this.ensureParent(rel);
    this.clear(rel);
    const abs = this.abs(rel);
    symlinkSync(e.linkpath, abs);
    this.kinds.set(rel, 'symlink');
    if (this.opts.privileged) lchownSync(abs, ...this.hostIds(e));
    lutimesSync(abs, e.mtime, e.mtime);
  }

  private hardlink(rel: string, e: TarEntry): void {
    const target = normalizeEntryPath(e.linkpath, `hardlink target of "${e.path}"`);
    const kind = this.kinds.get(target);
    if (kind !== 'file' && kind !== 'symlink' && kind !== 'fifo') {
      throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY',
        `hardlink "${e.path}" points to "${e.linkpath}", which is not a file created earlier in this layer`);
    }
    if (target === rel) return;
    this.ensureParent(rel);
    this.clear(rel);
    linkSync(this.abs(target), this.abs(rel)); // link(2) does not follow a symlink target
    this.kinds.set(rel, kind);
  }

  private fifo(rel: string, e: TarEntry): void {
    this.ensureParent(rel);
    this.clear(rel);
    const abs = this.abs(rel);
    mkFifo(abs, 0o600);
    this.kinds.set(rel, 'fifo');
    if (this.opts.privileged) lchownSync(abs, ...this.hostIds(e));
    chmodSync(abs, this.fileMode(e.mode));
    utimesSync(abs, e.mtime, e.mtime);
  }

  /** `.wh.NAME` becomes an overlay whiteout; `.wh..wh..opq` marks its directory opaque. */
  private whiteout(rel: string, name: string): void {
    const dir = parentOf(rel);
    if (name === OPAQUE_MARKER) {
      this.ensureDir(dir);
      this.markOpaque(dir);
      return;
    }
    const hidden = name.slice(WHITEOUT_PREFIX.length);
    if (hidden.startsWith(WHITEOUT_PREFIX) || hidden === '') {
      log('skipping whiteout metadata entry %s', rel); // aufs-style .wh..wh.plnk etc.
      return;
    }
    if (hidden === '.' || hidden === '..') throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `whiteout "${rel}" names "${hidden}"`);
    const target = dir ? `${dir}/${hidden}` : hidden;
    // A whiteout only hides lower layers: what this layer itself holds at that path stays.
    if (this.kinds.has(target)) return;
    this.ensureParent(target);
    mkWhiteout(this.abs(target));
    this.kinds.set(target, 'whiteout');
  }

  private markOpaque(dir: string): void {
    const abs = this.abs(dir);
    const y = Buffer.from('y');
    try {
      if (this.opts.privileged) setXattr(abs, 'trusted.overlay.opaque', y);
      // Also the user.* form, so the layer works for overlay mounts with `userxattr` too.
      setXattr(abs, 'user.overlay.opaque', y);
    } catch (err) {
      if (err instanceof SyscallError && err.errno === 95) {
        throw new UnsafeEntryError('IMAGE_CACHE_NO_XATTR',
          'the cache filesystem does not support extended attributes, needed for opaque directories');
      }
      throw err;
    }
  }

  /** Makes sure every parent of rel is a directory made by this writer. */
  private ensureParent(rel: string): void {
    const parent = parentOf(rel);
    if (this.kinds.get(parent) !== 'dir') this.ensureDir(parent);
  }

  private ensureDir(rel: string): void {
    const kind = this.kinds.get(rel);
    if (kind === 'dir') return;
    if (kind === 'whiteout') {
      // `.wh.d` followed by entries under d: d is deleted below and recreated here,
      // which in overlay terms is an opaque directory.
      this.ensureParent(rel);
      unlinkSync(this.abs(rel));
      mkdirSync(this.abs(rel), 0o755);
      this.kinds.set(rel, 'dir');
      this.markOpaque(rel);
      return;
    }
    if (kind !== undefined) {
      throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY',
        `an entry is written below "${rel}", which is a ${kind} in this layer (writing through a ${kind} is refused)`);
    }
    this.ensureParent(rel);
    mkdirSync(this.abs(rel), 0o755); // implicit parent, as containerd makes them
    this.kinds.set(rel, 'dir');
  }

  /** Removes whatever this layer already has at rel, so the new entry gets a new inode. */
  private clear(rel: string): void {
    const kind = this.kinds.get(rel);
    if (kind === undefined) return;
    if (kind === 'dir') {
      removeTree(this.abs(rel));
      const prefix = `${rel}/`;
      for (const key of this.kinds.keys()) if (key.startsWith(prefix)) this.kinds.delete(key);
      for (const key of this.dirMeta.keys()) if (key === rel || key.startsWith(prefix)) this.dirMeta.delete(key);
    } else {
      unlinkSync(this.abs(rel));
    }
    this.kinds.delete(rel);
  }

  /** The host ids an entry's owner is stored as. Ids past the sandbox's range become its nobody (65534), as they would read inside. */
  private hostIds(e: TarEntry): [number, number] {
    const shift = this.opts.owners;
    if (!shift) return [e.uid, e.gid];
    const inRange = (id: number) => (id < shift.count ? id : 65534);
    return [shift.uid + inRange(e.uid), shift.gid + inRange(e.gid)];
  }

  private fileMode(mode: number): number {
    // Rootless: a setuid file in the user's cache would be setuid to the user on the host.
    return this.opts.privileged ? mode & 0o7777 : mode & 0o1777;
  }

  private applyXattrs(abs: string, e: TarEntry): void {
    if (!e.xattrs) return;
    for (const [name, value] of e.xattrs) {
      if (!this.xattrAllowed(name)) {
        this.stats.skipped.xattrs++;
        log('skipping xattr %s on %s', name, e.path);
        continue;
      }
      setXattr(abs, name, name === 'security.capability' ? this.namespacedCapability(value) : value);
    }
  }

  /**
   * File capabilities count in a user namespace only when stored for its root (v3, with a root uid):
   * a v2 value would be ignored inside a sandbox whose root is the shifted uid.
   */
  private namespacedCapability(value: Buffer): Buffer {
    const shift = this.opts.owners;
    const VFS_CAP_REVISION_2 = 0x0200_0000, REVISION_MASK = 0xff00_0000, VFS_CAP_REVISION_3 = 0x0300_0000;
    if (!shift || value.length !== 20 || (value.readUInt32LE(0) & REVISION_MASK) >>> 0 !== VFS_CAP_REVISION_2) return value;
    const v3 = Buffer.alloc(24);
    value.copy(v3, 0, 0, 20);
    v3.writeUInt32LE(((value.readUInt32LE(0) & ~REVISION_MASK) | VFS_CAP_REVISION_3) >>> 0, 0);
    v3.writeUInt32LE(shift.uid, 20);
    return v3;
  }

  private xattrAllowed(name: string): boolean {
    // overlay's own attributes would let a layer forge redirects, metacopy or opaqueness.
    if (name.startsWith('trusted.') || name.startsWith('user.overlay.')) return false;
    if (name.startsWith('user.')) return true;
    return this.opts.privileged && name === 'security.capability';
  }
}
