// A sandbox's writable layer (an overlay upper directory) as OCI layer entries. Overlay
// marks a deletion with a 0:0 character device (or, since Linux 6.7, a file with an
// overlay.whiteout xattr) and a directory that hides what is below it with
// overlay.opaque=y; an OCI layer says the same with `.wh.NAME` and `.wh..wh..opq`
// entries. Overlay's own bookkeeping xattrs (origin, impure, ...) mean nothing outside
// that mount and are dropped, as are xattrs no layer applier would set (security.selinux,
// system.*). The unpacker (unpack/layer-writer.ts) turns these back into overlay form.
import type { TarWriteEntry } from '../tar/writer.ts';

/**
 * One entry of a file tree: the upper directory as the runtime reads it (src/runtime/tree-stream.ts
 * decodes its records into these, as TreeEntry).
 */
export interface UpperEntry {
  /** relative to the tree's root, '/'-separated; '' is the root itself */
  path: string;
  kind: 'dir' | 'file' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'socket';
  /** permission bits (07777) */
  mode: number;
  uid: number;
  gid: number;
  /** seconds since the epoch, with the nanoseconds as a fraction */
  mtime: number;
  /** bytes of data that follow (regular files) */
  size: number;
  /** a symlink's target; for a hard link, the path of the earlier entry it links to */
  link: string;
  devmajor: number;
  devminor: number;
  xattrs: Map<string, Buffer> | undefined;
  /** tree --stage: the file's `size` bytes are not in the stream but in the stage directory, as this file */
  staged?: number;
}

export interface UpperSkips {
  /** sockets (a tar cannot hold them) */
  sockets: number;
  /** device nodes other than whiteouts (a sandbox cannot make them; counted should one appear) */
  devices: number;
}

const OVERLAY_XATTR = /^(?:trusted|user)\.overlay\./;

function isOpaque(xattrs: Map<string, Buffer> | undefined): boolean {
  for (const [name, value] of xattrs ?? []) {
    if (OVERLAY_XATTR.test(name) && name.endsWith('.opaque') && value.toString() === 'y') return true;
  }
  return false;
}

function isXattrWhiteout(xattrs: Map<string, Buffer> | undefined): boolean {
  for (const name of xattrs?.keys() ?? []) if (OVERLAY_XATTR.test(name) && name.endsWith('.whiteout')) return true;
  return false;
}

/** user.* (but overlay's) and file capabilities: what a layer carries and the unpacker applies. */
function layerXattrs(xattrs: Map<string, Buffer> | undefined): Map<string, Buffer> | undefined {
  if (!xattrs) return undefined;
  const kept = new Map([...xattrs].filter(([name]) => !OVERLAY_XATTR.test(name) && (name.startsWith('user.') || name === 'security.capability')));
  return kept.size ? kept : undefined;
}

function marker(dir: string, name: string, mtime: number): TarWriteEntry {
  return { path: dir ? `${dir}/${name}` : name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime, linkpath: '', devmajor: 0, devminor: 0 };
}

function parentAndName(path: string): [string, string] {
  const i = path.lastIndexOf('/');
  return i < 0 ? ['', path] : [path.slice(0, i), path.slice(i + 1)];
}

/**
 * The layer entries for one upper entry, in order: none (the root itself, a socket), one, or a
 * directory followed by its opaque marker. A regular file's data follows its (only) entry.
 */
export function layerEntries(e: UpperEntry, skips: UpperSkips): TarWriteEntry[] {
  if (e.path === '') return []; // the root's own metadata: overlay takes the root's from the upper dir
  const [dir, name] = parentAndName(e.path);
  const base = { path: e.path, mode: e.mode, uid: e.uid, gid: e.gid, size: 0, mtime: e.mtime, linkpath: '', devmajor: 0, devminor: 0 };
  switch (e.kind) {
    case 'char':
      if (e.devmajor === 0 && e.devminor === 0) return [marker(dir, `.wh.${name}`, e.mtime)];
      skips.devices++;
      return [];
    case 'block':
      skips.devices++;
      return [];
    case 'socket':
      skips.sockets++;
      return [];
    case 'file':
      if (isXattrWhiteout(e.xattrs) && e.size === 0) return [marker(dir, `.wh.${name}`, e.mtime)];
      return [{ ...base, type: 'file', size: e.size, xattrs: layerXattrs(e.xattrs) }];
    case 'dir': {
      const entry: TarWriteEntry = { ...base, type: 'dir', xattrs: layerXattrs(e.xattrs) };
      return isOpaque(e.xattrs) ? [entry, marker(e.path, '.wh..wh..opq', e.mtime)] : [entry];
    }
    case 'symlink': return [{ ...base, type: 'symlink', linkpath: e.link }];
    case 'hardlink': return [{ ...base, type: 'hardlink', linkpath: e.link }];
    case 'fifo': return [{ ...base, type: 'fifo' }];
  }
}
