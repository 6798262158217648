// One layer blob -> one directory: read, hash (blob digest), decompress, hash
// again (diff_id), parse and write, all in one pass. The directory only becomes
// visible in the cache (see cache.ts) after both digests have matched.
import { createHash } from 'node:crypto';
import { ImageError } from '../../errors.ts';
import { checkDigest, formatDigest } from '../digest.ts';
import type { LayerPlan } from '../load-plan.ts';
import type { OwnerShift } from '../cache-layout.ts';
import { TarFormatError } from '../tar/header.ts';
import { TarParser } from '../tar/parser.ts';
import { createDecoder } from './decompress.ts';
import type { Decoder } from './decompress.ts';
import { UnsafeEntryError } from './entry-path.ts';
import { LayerWriter } from './layer-writer.ts';
import type { LayerLimits, LayerStats } from './layer-writer.ts';

export interface UnpackRequest {
  reference: string;
  layer: LayerPlan;
  open: () => AsyncIterable<Buffer>;
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
  const diffHash = createHash(req.layer.diffId.algorithm);
  const writer = new LayerWriter({ root: req.root, privileged: req.privileged, owners: req.owners, limits: req.limits });
  const parser = new TarParser(writer);
  let blobBytes = 0;
  let tarBytes = 0;
  // The uncompressed stream may exceed the file data by headers and padding; allow for both.
  const maxTarBytes = req.limits.maxBytes + req.limits.maxEntries * 1024 + (1 << 20);

  const source = req.open();
  let decoder: Decoder | undefined;
  const onTar = (chunk: Buffer): void => {
    tarBytes += chunk.length;
    if (tarBytes > maxTarBytes) throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer decompresses to more than ${maxTarBytes} bytes`);
    diffHash.update(chunk);
    parser.push(chunk);
  };
  try {
    for await (const chunk of source) {
      blobHash.update(chunk);
      blobBytes += chunk.length;
      // Stop reading at once when a blob is longer than its descriptor says.
      if (req.layer.blobSize !== undefined && blobBytes > req.layer.blobSize) {
        throw new ImageError('IMAGE_SIZE_MISMATCH', `${what}: blob is longer than the ${req.layer.blobSize} bytes its descriptor declares`, {
          fix: 'the image is corrupt or was modified after it was written; re-export it',
        });
      }
      req.onBytes?.(blobBytes);
      decoder ??= createDecoder(chunk, onTar);
      await decoder.write(chunk);
    }
    await decoder?.end();
    parser.finish();
    writer.finish();
  } catch (err) {
    throw await blobMismatch(req, what) ?? asImageError(err, what);
  } finally {
    decoder?.close();
    writer.abort();
  }
  checkDigest(`${what}`, req.layer.blobDigest, blobHash.digest('hex'), req.layer.blobSize, blobBytes);
  const diffHex = diffHash.digest('hex');
  if (diffHex !== req.layer.diffId.hex) {
    throw new ImageError('IMAGE_DIFFID_MISMATCH',
      `${what}: uncompressed content hashes to ${req.layer.diffId.algorithm}:${diffHex}, the config's diff_id is ${formatDigest(req.layer.diffId)}`,
      { fix: 'the image is corrupt or its config does not belong to these layers; re-export it' });
  }
  return writer.stats;
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
    for await (const chunk of req.open()) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes >= limit) break; // which releases the file or connection
    }
    checkDigest(what, expected, hash.digest('hex'), req.layer.blobSize, bytes);
    return undefined;
  } catch (err) {
    return err instanceof ImageError && (err.code === 'IMAGE_DIGEST_MISMATCH' || err.code === 'IMAGE_SIZE_MISMATCH') ? err : undefined;
  }
}

function asImageError(err: unknown, what: string): Error {
  if (err instanceof ImageError) return err;
  if (err instanceof UnsafeEntryError) {
    return new ImageError(err.code, `${what}: ${err.message}`, {
      fix: err.code === 'IMAGE_CACHE_NO_XATTR'
        ? 'put the cache on ext4, xfs, btrfs or tmpfs (VITEST_CONTAINER_CACHE=DIR)'
        : 'the layer is malformed or hostile; it was not unpacked. Rebuild the image with a standard tool',
    });
  }
  if (err instanceof TarFormatError) return new ImageError('IMAGE_LAYER_CORRUPT', `${what}: ${err.message}`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  if (e?.code?.startsWith('Z_') || e?.code === 'ERR_ZLIB_INITIALIZATION_FAILED' || /zstd|incorrect header|unexpected end/i.test(e?.message ?? '')) {
    return new ImageError('IMAGE_LAYER_CORRUPT', `${what}: cannot decompress: ${e.message}`, { cause: err, fix: 'the blob is truncated or corrupt; re-export the image' });
  }
  // A full disk is the cache's to explain (layer-store's cacheFault names the cache and the fix).
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return e;
  return new ImageError('IMAGE_UNPACK_FAILED', `${what}: ${e?.message ?? String(err)}`, { cause: err });
}
