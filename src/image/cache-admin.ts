// Listing and pruning the layer cache (used by the CLI's `images` command).
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { defaultCacheDir, imageMemoPath, imagesDir, layerDir, layerKey, layersDir, refsDir, tmpDir } from './cache-layout.ts';
import type { ImageMemo, LayerInfo } from './cache-layout.ts';
import { parseDigest } from './digest.ts';
import { removeTree } from './fs-util.ts';
import { listRefs, refKey } from './ref-store.ts';

/** A reference pulled from a registry or a daemon, and the image it resolved to. */
export interface PulledReference {
  reference: string;
  platform: string;
  /** the platform's image manifest (an entry of images) */
  manifestDigest: string;
  /** what the name pointed at: an index or manifest digest, or the daemon's image id */
  topDigest: string;
  from: string;
  pulledAt: Date;
}

export interface CachedImage {
  manifestDigest: string;
  reference: string;
  layers: string[];
  lastUsed: Date;
}

export interface CachedLayer {
  diffId: string;
  path: string;
  bytes: number;
  entries: number;
  unpackedAt: Date;
  /** last use of any image that uses it (the unpack time if none does) */
  lastUsed: Date;
  /** manifest digests of the cached images using it */
  images: string[];
}

export interface CacheListing {
  cacheDir: string;
  /** pulled registry and daemon references whose image is still cached */
  references: PulledReference[];
  images: CachedImage[];
  layers: CachedLayer[];
  totalBytes: number;
}

export interface PruneOptions {
  cacheDir?: string;
  /** forget images not used for this long, then remove layers no remaining image uses */
  olderThanMs?: number;
  /** remove everything */
  all?: boolean;
  /** report what would be removed, remove nothing */
  dryRun?: boolean;
}

export interface PruneResult {
  removedImages: string[];
  removedLayers: string[];
  freedBytes: number;
}

/** Unpacks older than this in tmp/ belong to crashed processes. */
const STALE_TMP_MS = 60 * 60 * 1000;

export async function listCache(options: { cacheDir?: string } = {}): Promise<CacheListing> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const images = readImages(cacheDir);
  const layers: CachedLayer[] = [];
  for (const key of entries(layersDir(cacheDir))) {
    const info = readInfo(cacheDir, key);
    if (!info) continue;
    const users = images.filter((im) => im.layers.some((d) => layerKey(parseDigest(d, 'cache')) === key));
    const unpackedAt = new Date(info.unpackedAt);
    const lastUsed = new Date(Math.max(unpackedAt.getTime(), ...users.map((u) => u.lastUsed.getTime())));
    layers.push({ diffId: info.diffId, path: `${layerDir(cacheDir, key)}/fs`, bytes: info.bytes, entries: info.entries, unpackedAt, lastUsed, images: users.map((u) => u.manifestDigest) });
  }
  const cachedImages = new Set(images.map((im) => im.manifestDigest));
  const references = listRefs(cacheDir).filter((r) => cachedImages.has(r.manifestDigest))
    .map((r) => ({ reference: r.reference, platform: r.platform, manifestDigest: r.manifestDigest, topDigest: r.topDigest, from: r.from, pulledAt: new Date(r.pulledAt) }));
  return { cacheDir, references, images, layers, totalBytes: layers.reduce((a, l) => a + l.bytes, 0) };
}

export async function pruneCache(options: PruneOptions = {}): Promise<PruneResult> {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const now = Date.now();
  const result: PruneResult = { removedImages: [], removedLayers: [], freedBytes: 0 };
  const keep = new Set<string>();
  for (const image of readImages(cacheDir)) {
    const stale = options.all || (options.olderThanMs !== undefined && now - image.lastUsed.getTime() > options.olderThanMs);
    if (stale) {
      result.removedImages.push(image.manifestDigest);
      if (!options.dryRun) rmSync(imageMemoPath(cacheDir, image.manifestDigest), { force: true });
    } else {
      for (const d of image.layers) keep.add(layerKey(parseDigest(d, 'cache')));
    }
  }
  // A pulled reference goes with its image: the next use pulls again.
  const removed = new Set(result.removedImages);
  for (const ref of listRefs(cacheDir)) {
    if (!removed.has(ref.manifestDigest)) continue;
    if (!options.dryRun) rmSync(`${refsDir(cacheDir)}/${refKey(ref.reference, ref.platform)}.json`, { force: true });
  }
  for (const key of entries(layersDir(cacheDir))) {
    if (keep.has(key)) continue;
    const info = readInfo(cacheDir, key);
    result.removedLayers.push(info?.diffId ?? key);
    result.freedBytes += info?.bytes ?? 0;
    if (!options.dryRun) removeAtomically(cacheDir, layerDir(cacheDir, key));
  }
  if (!options.dryRun) {
    const stale = (path: string) => options.all || now - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? now) > STALE_TMP_MS;
    for (const name of entries(tmpDir(cacheDir))) {
      const path = `${tmpDir(cacheDir)}/${name}`;
      if (stale(path)) removeTree(path);
    }
    // Half-written memos (writeFileAtomic's temporaries) of a process that died mid-write.
    for (const dir of [imagesDir(cacheDir), refsDir(cacheDir)]) {
      for (const name of entries(dir)) if (name.endsWith('.tmp') && stale(`${dir}/${name}`)) rmSync(`${dir}/${name}`, { force: true });
    }
  }
  return result;
}

/** Renames first, so a concurrent resolve sees the layer either whole or absent. */
function removeAtomically(cacheDir: string, dir: string): void {
  mkdirSync(tmpDir(cacheDir), { recursive: true, mode: 0o700 });
  const doomed = `${tmpDir(cacheDir)}/prune.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(dir, doomed);
  } catch {
    return; // already gone
  }
  removeTree(doomed);
}

function readImages(cacheDir: string): CachedImage[] {
  const images: CachedImage[] = [];
  for (const name of entries(imagesDir(cacheDir))) {
    if (!name.endsWith('.json')) continue;
    const path = `${imagesDir(cacheDir)}/${name}`;
    try {
      const memo = JSON.parse(readFileSync(path, 'utf8')) as ImageMemo;
      images.push({ manifestDigest: memo.manifestDigest, reference: memo.reference, layers: memo.layers, lastUsed: statSync(path).mtime });
    } catch { /* a memo being replaced right now */ }
  }
  return images;
}

function readInfo(cacheDir: string, key: string): LayerInfo | undefined {
  try {
    return JSON.parse(readFileSync(`${layerDir(cacheDir, key)}/layer.json`, 'utf8')) as LayerInfo;
  } catch {
    return undefined;
  }
}

function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
