// resolveImage: reference -> verified, unpacked, cached layers.
// A cached image costs: read index.json (or the archive's header table, once
// per process), read one small memo, stat the layer dirs.
import { existsSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { ImageError } from '../errors.ts';
import { logger } from '../log.ts';
import { defaultCacheDir, imageMemoPath, imagesDir, layerKey, lowerDir } from './cache-layout.ts';
import type { ImageMemo } from './cache-layout.ts';
import { parseDigest } from './digest.ts';
import { writeFileAtomic } from './fs-util.ts';
import { ensureLayers } from './layer-store.ts';
import { loadPlan } from './load-plan.ts';
import { hostPlatform } from './platform.ts';
import { parseReference } from './reference.ts';
import { selectManifest } from './select-manifest.ts';
import { openSource } from './source/open.ts';
import type { LayerLimits, ResolvedImage, ResolveOptions } from './types.ts';

const log = logger('image');

export const DEFAULT_LIMITS: LayerLimits = { maxEntries: 1_000_000, maxBytes: 64 * 2 ** 30 };

export async function resolveImage(ref: string, options: ResolveOptions = {}): Promise<ResolvedImage> {
  const cache = options.cacheDir ?? defaultCacheDir();
  const parsed = parseReference(ref);
  const source = openSource(parsed.path);
  const selected = await selectManifest(source, parsed, options.platform ?? hostPlatform());

  const cached = readMemo(cache, selected.digest);
  if (cached) {
    log('%s: cached as %s', ref, selected.digest);
    return toResolved(ref, cache, cached);
  }

  const plan = await loadPlan(source, ref, selected);
  const privileged = process.geteuid?.() === 0;
  const infos = await ensureLayers(plan, {
    cache, reference: ref, source, privileged, progress: options.progress ?? true, onProgress: options.onProgress,
    limits: { ...DEFAULT_LIMITS, ...options.limits },
  });
  const memo: ImageMemo = {
    manifestDigest: plan.manifestDigest,
    reference: ref,
    config: plan.config,
    layers: plan.layers.map((l) => `${l.diffId.algorithm}:${l.diffId.hex}`),
    // Layers unpacked rootless carry only user.overlay.* attributes.
    overlayOptions: infos.some((i) => i.xattrs === 'user') ? ['userxattr'] : [],
  };
  mkdirSync(imagesDir(cache), { recursive: true });
  writeFileAtomic(imageMemoPath(cache, memo.manifestDigest), JSON.stringify(memo));
  return toResolved(ref, cache, memo);
}

function readMemo(cache: string, manifestDigest: string): ImageMemo | undefined {
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

function toResolved(reference: string, cache: string, memo: ImageMemo): ResolvedImage {
  if (!memo.layers.length) {
    throw new ImageError('IMAGE_NO_LAYERS', `${reference} has no layers`, { fix: 'an image needs at least one layer to be a root filesystem' });
  }
  return {
    reference,
    manifestDigest: memo.manifestDigest,
    // Top-most first. A layer repeated lower down (e.g. the empty layer) is dropped: the upper
    // copy already covers it, and overlay refuses the same lower dir twice.
    lowerDirs: [...new Set(memo.layers.map((d) => lowerDir(cache, layerKey(parseDigest(d, reference)))).reverse())],
    overlayOptions: [...memo.overlayOptions],
    config: structuredClone(memo.config),
  };
}
