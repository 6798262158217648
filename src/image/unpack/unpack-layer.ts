// One layer blob -> one directory: read, hash (blob digest), decompress, hash
// again (diff_id), parse and write, all in one pass. This thread reads the
// blob and checks its digest and size; decompressing, parsing and writing run
// in the layer's own worker thread (layer-thread.ts), so that several layers
// use several cores. The directory only becomes visible in the cache (see
// layer-store.ts) after both digests have matched.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageError } from '../../errors.ts';
import { checkDigest, formatDigest } from '../digest.ts';
import type { LayerPlan } from '../load-plan.ts';
import type { OwnerShift } from '../cache-layout.ts';
import { asImageError } from './layer-errors.ts';
import { LayerThread } from './layer-thread.ts';
import type { LayerLimits, LayerStats } from './layer-writer.ts';
import { writeLayer } from './write-layer.ts';
import type { LayerJob, WrittenLayer } from './write-layer.ts';

/** Compressed size from which a layer gets a worker thread; smaller ones are written on this thread. */
const WORKER_MIN = 16 << 20;

export interface UnpackRequest {
  reference: string;
  layer: LayerPlan;
  open: () => Readable;
  /** empty directory to fill */
  root: string;
  privileged: boolean;
  owners?: OwnerShift;
  limits: LayerLimits;
  onBytes?: (compressedBytes: number) => void;
}

export async function unpackLayer(req: UnpackRequest): Promise<LayerStats> {
  const what = `${req.reference}: layer ${req.layer.blobDigest ? formatDigest(req.layer.blobDigest) : req.layer.blobPath}`;
  const blobHash = createHash(req.layer.blobDigest?.algorithm ?? 'sha256');
  let blobBytes = 0;

  const tap = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      blobHash.update(chunk);
      blobBytes += chunk.length;
      // Stop reading at once when a blob is longer than its descriptor says.
      if (req.layer.blobSize !== undefined && blobBytes > req.layer.blobSize) {
        return done(new ImageError('IMAGE_SIZE_MISMATCH', `${what}: blob is longer than the ${req.layer.blobSize} bytes its descriptor declares`, {
          fix: 'the image is corrupt or was modified after it was written; re-export it',
        }));
      }
      req.onBytes?.(blobBytes);
      done(null, chunk);
    },
  });
  const job: LayerJob = { root: req.root, privileged: req.privileged, owners: req.owners, limits: req.limits, diffIdAlgorithm: req.layer.diffId.algorithm };
  const thread = (req.layer.blobSize ?? 0) >= WORKER_MIN ? new LayerThread(job, what) : undefined;
  let written: WrittenLayer | undefined;
  try {
    if (thread) await pipeline(req.open(), tap, thread);
    else written = await pipeline(req.open(), tap, (blob: AsyncIterable<Buffer>) => writeLayer(blob, job));
  } catch (err) {
    await thread?.stop(); // before anything reads the blob again or removes the directory
    throw await blobMismatch(req, what) ?? asImageError(err, what);
  }
  await thread?.stop();
  checkDigest(`${what}`, req.layer.blobDigest, blobHash.digest('hex'), req.layer.blobSize, blobBytes);
  const { stats, diffHex } = thread?.written ?? written!;
  if (diffHex !== req.layer.diffId.hex) {
    throw new ImageError('IMAGE_DIFFID_MISMATCH',
      `${what}: uncompressed content hashes to ${req.layer.diffId.algorithm}:${diffHex}, the config's diff_id is ${formatDigest(req.layer.diffId)}`,
      { fix: 'the image is corrupt or its config does not belong to these layers; re-export it' });
  }
  return stats;
}

/**
 * After a failed unpack: was the blob itself not the one the manifest names? A
 * corrupt blob usually fails decompression before its digest can be compared;
 * that diagnosis (the registry or the file holds the wrong bytes) is the one to
 * give. Reads the blob once more, hashing only, at most its declared size + 1.
 */
async function blobMismatch(req: UnpackRequest, what: string): Promise<ImageError | undefined> {
  const expected = req.layer.blobDigest;
  if (!expected) return undefined;
  const hash = createHash(expected.algorithm);
  let bytes = 0;
  const limit = req.layer.blobSize === undefined ? Infinity : req.layer.blobSize + 1;
  try {
    const stream = req.open();
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes >= limit) {
        stream.destroy();
        break;
      }
    }
    checkDigest(what, expected, hash.digest('hex'), req.layer.blobSize, bytes);
    return undefined;
  } catch (err) {
    return err instanceof ImageError && (err.code === 'IMAGE_DIGEST_MISMATCH' || err.code === 'IMAGE_SIZE_MISMATCH') ? err : undefined;
  }
}
