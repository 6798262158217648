// Where things live in the cache directory:
//
//   <cache>/layers/<hex>/fs          one unpacked layer = one overlay lower dir (keyed by diff_id), as a
//                                    rootless user unpacks it (every file the user's own)
//   <cache>/layers-<uid>/<hex>/fs    the same as root unpacks it: owners shifted into the id range that
//                                    root-started sandboxes map (src/id-range.ts; -<uid>-<gid> when the
//                                    gid range starts elsewhere), so they keep the image's owners inside
//   <cache>/layers/<hex>/layer.json  what the unpack found (size, entries, xattr form)
//   <cache>/images/<hex>.json        a resolved image (manifest digest -> config + layers); mtime = last use;
//                                    a committed image is keyed by its OCI config's digest (its image id)
//   <cache>/refs/<hex>.json          a pulled reference (registry or daemon) -> the manifest it resolved to
//   <cache>/locks/                   flock files: one process fetches a layer (or pulls a reference) at a time
//   <cache>/tmp/                     unpacks in progress; renamed into layers/ when verified
//
// Paths stay short because legacy overlay mounts pass all lower dirs in one
// option string of at most a page.
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from './digest.ts';
import { ownNamespaceIds, rootSandboxIdRanges } from '../id-range.ts';

/** Image uid u is stored as host uid `uid + u` (gid likewise), for u below count. */
export interface OwnerShift { uid: number; gid: number; count: number }

export function defaultCacheDir(): string {
  const env = process.env;
  if (env.VITEST_CONTAINER_CACHE) return env.VITEST_CONTAINER_CACHE;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'vitest-environment-container');
}

export interface LayerInfo {
  diffId: string;
  /** bytes of file data and number of entries written */
  bytes: number;
  entries: number;
  unpackedAt: string;
  /** 'trusted+user' when unpacked as root, 'user' when rootless (then mounts need userxattr) */
  xattrs: 'trusted+user' | 'user';
  /** As root: the host ids the image's ids 0.. were shifted to. */
  owners?: OwnerShift;
  skipped: { devices: number; unsupported: number; xattrs: number };
}

export interface ImageMemo {
  manifestDigest: string;
  reference: string;
  config: import('./types.ts').ImageConfig;
  /** diff_ids, bottom-most first */
  layers: string[];
  overlayOptions: string[];
  /** An image made by commit(): the image it was committed from, and its OCI image config (whose digest is its key). */
  committed?: CommittedFrom;
}

export interface CommittedFrom {
  /** the reference the sandbox was started from, and that image's key */
  reference: string;
  manifestDigest: string;
  /** the committed layer: its diff_id and the size of its tar */
  layer: string;
  tarBytes: number;
  committedAt: string;
  /** the OCI image config this image is (its sha256 is manifestDigest) */
  ociConfig: unknown;
}

export function layerKey(d: Digest): string {
  return d.algorithm === 'sha256' ? d.hex : `${d.algorithm}-${d.hex}`;
}

/** How this process unpacks owners: shifted into the sandbox id range as root, the caller's own otherwise. */
export function ownerShift(): OwnerShift | undefined {
  // Root of the host only: uid 0 in a rootless pool worker is the caller, and shares the caller's cache.
  if (process.geteuid?.() !== 0 || ownNamespaceIds('uid')) return undefined;
  const { uids, gids } = rootSandboxIdRanges();
  return { uid: uids.start, gid: gids.start, count: Math.min(uids.count, gids.count) };
}

/** The layer directory for this process's owner form (see the top of this file). */
export function layersDir(cache: string): string {
  const shift = ownerShift();
  if (!shift) return `${cache}/layers`;
  return shift.gid === shift.uid ? `${cache}/layers-${shift.uid}` : `${cache}/layers-${shift.uid}-${shift.gid}`;
}

export function layerDir(cache: string, key: string): string {
  return `${layersDir(cache)}/${key}`;
}

export function lowerDir(cache: string, key: string): string {
  return `${layerDir(cache, key)}/fs`;
}

export function imagesDir(cache: string): string {
  return `${cache}/images`;
}

export function imageMemoPath(cache: string, manifestDigest: string): string {
  return `${cache}/images/${manifestDigest.replace(/^sha256:/, '').replace(':', '-')}.json`;
}

export function tmpDir(cache: string): string {
  return `${cache}/tmp`;
}

export function refsDir(cache: string): string {
  return `${cache}/refs`;
}

export function locksDir(cache: string): string {
  return `${cache}/locks`;
}
