// The resolved-image memos shared by every source: images/<manifest>.json says
// which layers (by diff_id) and which config a manifest stands for. Reading one
// costs a small read and a stat per layer; storing one means every layer is in
// the cache first.
import { existsSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { ImageError } from '../errors.ts';
import { imageMemoPath, imagesDir, layerKey, lowerDir, ownerShift } from './cache-layout.ts';
import type { ImageMemo } from './cache-layout.ts';
import { parseDigest } from './digest.ts';
import { cacheFault, writeFileAtomic } from './fs-util.ts';
import { ensureLayers } from './layer-store.ts';
import type { ImagePlan } from './load-plan.ts';
import type { ContentSource } from './source/types.ts';
import type { LayerLimits, ResolvedImage, ResolveOptions } from './types.ts';

export const DEFAULT_LIMITS: LayerLimits = { maxEntries: 1_000_000, maxBytes: 64 * 2 ** 30 };

/** The memo of a cached image whose layers are all present (and its last use stamped), or undefined. */
export function readImageMemo(cache: string, manifestDigest: string): ImageMemo | undefined {
  const path = imageMemoPath(cache, manifestDigest);
  let memo: ImageMemo;
  try {
    memo = JSON.parse(readFileSync(path, 'utf8')) as ImageMemo;
  } catch {
    return undefined;
  }
  // A pruned or hand-deleted layer makes the memo stale: fall back to a full resolve.
  for (const diffId of memo.layers) {
    if (!existsSync(lowerDir(cache, layerKey(parseDigest(diffId, path))))) return undefined;
  }
  try {
    const now = new Date();
    utimesSync(path, now, now); // last use, for listCache and pruneCache
  } catch { /* a read-only cache still works */ }
  return memo;
}

/** Unpacks what is missing of the plan's layers, then records the image. */
export async function storeImage(plan: ImagePlan, content: ContentSource, reference: string, cache: string, options: ResolveOptions, activity?: string): Promise<ImageMemo> {
  // Host root: chown, setuid bits and trusted.* xattrs (not uid 0 of a rootless pool worker: see ownerShift).
  const privileged = ownerShift() !== undefined;
  const infos = await ensureLayers(plan, {
    cache, reference, source: content, privileged, progress: options.progress ?? true, onProgress: options.onProgress,
    limits: { ...DEFAULT_LIMITS, ...options.limits }, parallel: options.parallel, activity,
  });
  const memo: ImageMemo = {
    manifestDigest: plan.manifestDigest,
    reference,
    config: plan.config,
    layers: plan.layers.map((l) => `${l.diffId.algorithm}:${l.diffId.hex}`),
    // Layers unpacked rootless carry only user.overlay.* attributes.
    overlayOptions: infos.some((i) => i.xattrs === 'user') ? ['userxattr'] : [],
  };
  try {
    mkdirSync(imagesDir(cache), { recursive: true });
    writeFileAtomic(imageMemoPath(cache, memo.manifestDigest), JSON.stringify(memo));
  } catch (err) {
    throw cacheFault(err, cache, reference);
  }
  return memo;
}

export function toResolved(reference: string, cache: string, memo: ImageMemo): ResolvedImage {
  if (!memo.layers.length) {
    throw new ImageError('IMAGE_NO_LAYERS', `${reference} has no layers`, { fix: 'an image needs at least one layer to be a root filesystem' });
  }
  return {
    reference,
    manifestDigest: memo.manifestDigest,
    layers: [...memo.layers],
    // Top-most first. A layer repeated lower down (e.g. the empty layer) is dropped: the upper
    // copy already covers it, and overlay refuses the same lower dir twice.
    lowerDirs: [...new Set(memo.layers.map((d) => lowerDir(cache, layerKey(parseDigest(d, reference)))).reverse())],
    overlayOptions: [...memo.overlayOptions],
    config: structuredClone(memo.config),
  };
}
