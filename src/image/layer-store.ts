// Makes sure every layer of an image is in the cache: unpacks the missing ones
// into private temporary directories, and only when all of them verified,
// renames them into place. The missing layers are locked first (flock, in
// sorted order, see cache-lock.ts), so of several processes wanting the same
// layer one fetches it and the others find it committed; a lock dies with its
// process, so nothing can go stale. Should a layer appear anyway (a cache
// shared with an older version), the rename loses and ours is discarded.
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ImageError } from '../errors.ts';
import { logger } from '../log.ts';
import { layerDir, layerKey, layersDir, lowerDir, ownerShift, tmpDir } from './cache-layout.ts';
import type { LayerInfo } from './cache-layout.ts';
import { cacheFault, errnoCode, removeTree, writeFileAtomic } from './fs-util.ts';
import type { ImagePlan, LayerPlan } from './load-plan.ts';
import { startProgress } from './progress.ts';
import type { ContentSource } from './source/types.ts';
import type { LayerLimits } from './unpack/layer-writer.ts';
import { unpackLayer } from './unpack/unpack-layer.ts';
import { existsSync } from 'node:fs';
import { lockCacheEntries } from './cache-lock.ts';

const log = logger('image');

/** Layers fetched and unpacked at the same time: decompression runs on the thread pool, writes on the main thread. */
export const PARALLEL_LAYERS = 3;

export interface StoreContext {
  cache: string;
  reference: string;
  source: ContentSource;
  /** what the progress line says is happening: 'unpacking' (default), 'pulling' */
  activity?: string;
  /** layers at once (default PARALLEL_LAYERS) */
  parallel?: number;
  privileged: boolean;
  limits: LayerLimits;
  progress: boolean;
  onProgress?: (p: { layer: string; bytes: number; total?: number; layers: number }) => void;
}

export async function ensureLayers(plan: ImagePlan, ctx: StoreContext): Promise<LayerInfo[]> {
  const unique = new Map<string, LayerPlan>();
  for (const layer of plan.layers) unique.set(layerKey(layer.diffId), layer);
  const isMissing = ([key]: [string, LayerPlan]): boolean => !existsSync(lowerDir(ctx.cache, key));
  let missing = [...unique].filter(isMissing);
  if (missing.length) {
    const lock = await lockCacheEntries(ctx.cache, missing.map(([key]) => `layer-${key}`));
    try {
      missing = missing.filter(isMissing); // what another process committed while we waited is done
      if (missing.length) await unpackAll(missing, ctx);
    } finally {
      lock.release();
    }
  }
  return [...unique.keys()].map((key) => readLayerInfo(ctx.cache, key));
}

async function unpackAll(missing: [string, LayerPlan][], ctx: StoreContext): Promise<void> {
  mkdirSync(layersDir(ctx.cache), { recursive: true, mode: 0o700 });
  mkdirSync(tmpDir(ctx.cache), { recursive: true, mode: 0o700 });
  const sizes = missing.map(([, l]) => l.blobSize ?? ctx.source.layerSize(l) ?? 0);
  const total = sizes.reduce((a, b) => a + b, 0);
  const progress = startProgress(ctx.reference, total, ctx.progress, ctx.activity);
  const done = new Array<number>(missing.length).fill(0);
  const staged: { key: string; tmp: string }[] = [];
  const started = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < missing.length) {
      const i = next++;
      const [key, layer] = missing[i]!;
      const tmp = `${tmpDir(ctx.cache)}/${key.slice(0, 16)}.${process.pid}.${randomBytes(4).toString('hex')}`;
      staged.push({ key, tmp });
      mkdirSync(`${tmp}/fs`, { recursive: true, mode: 0o755 });
      const t0 = Date.now();
      const stats = await unpackLayer({
        reference: ctx.reference, layer, root: `${tmp}/fs`, privileged: ctx.privileged, owners: ownerShift(), limits: ctx.limits,
        open: () => ctx.source.openLayer(layer),
        onBytes: (bytes) => {
          done[i] = bytes;
          progress.update(done.reduce((a, b) => a + b, 0));
          ctx.onProgress?.({ layer: `sha256:${key}`, bytes, total: sizes[i], layers: missing.length });
        },
      });
      const info: LayerInfo = {
        diffId: `${layer.diffId.algorithm}:${layer.diffId.hex}`, bytes: stats.bytes, entries: stats.entries,
        unpackedAt: new Date().toISOString(), xattrs: ctx.privileged ? 'trusted+user' : 'user', skipped: stats.skipped,
        ...(ownerShift() ? { owners: ownerShift() } : {}),
      };
      writeFileAtomic(`${tmp}/layer.json`, JSON.stringify(info));
      log('unpacked %s layer %s: %d entries, %d bytes in %d ms', ctx.reference, key.slice(0, 12), stats.entries, stats.bytes, Date.now() - t0);
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(ctx.parallel ?? PARALLEL_LAYERS, missing.length) }, worker));
  progress.done();
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    for (const { tmp } of staged) removeTree(tmp);
    throw cacheFault(failed.reason, ctx.cache, ctx.reference);
  }
  for (const { key, tmp } of staged) commit(key, tmp, ctx.cache);
  log('unpacked %d layers of %s in %d ms', missing.length, ctx.reference, Date.now() - started);
}

function commit(key: string, tmp: string, cache: string): void {
  try {
    renameSync(tmp, layerDir(cache, key));
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    log('layer %s was unpacked concurrently by another process; keeping theirs', key.slice(0, 12));
    removeTree(tmp);
  }
}

export function readLayerInfo(cache: string, key: string): LayerInfo {
  try {
    return JSON.parse(readFileSync(`${layerDir(cache, key)}/layer.json`, 'utf8')) as LayerInfo;
  } catch (err) {
    throw new ImageError('IMAGE_CACHE_CORRUPT', `cache entry ${layerDir(cache, key)} is unreadable: ${(err as Error).message}`, {
      cause: err, fix: `remove ${layerDir(cache, key)} (or run pruneCache) and try again`,
    });
  }
}
