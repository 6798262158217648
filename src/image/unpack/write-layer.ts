// The part of an unpack that runs in the layer's worker thread: compressed
// blob bytes in; decompressed, hashed (diff_id), parsed and written into the
// layer directory. The tar parser and the file writes are synchronous, so they
// run on the worker's thread while zlib inflates the next chunk on the thread
// pool; each layer has its own worker, so layers use both cores.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { OwnerShift } from '../cache-layout.ts';
import { TarParser } from '../tar/parser.ts';
import { UnsafeEntryError } from './entry-path.ts';
import { LayerWriter } from './layer-writer.ts';
import type { LayerLimits, LayerStats } from './layer-writer.ts';

/** What a layer's thread is told to do (structured-clone data). */
export interface LayerJob {
  /** empty directory to fill */
  root: string;
  privileged: boolean;
  owners?: OwnerShift;
  limits: LayerLimits;
  diffIdAlgorithm: 'sha256' | 'sha512';
}

export interface WrittenLayer {
  stats: LayerStats;
  /** hex digest of the uncompressed stream, for the caller to compare with the config's diff_id */
  diffHex: string;
}

export const CHUNK = 1 << 20;

export async function writeLayer(blob: AsyncIterable<Buffer>, job: LayerJob): Promise<WrittenLayer> {
  const diffHash = createHash(job.diffIdAlgorithm);
  const writer = new LayerWriter({ root: job.root, privileged: job.privileged, owners: job.owners, limits: job.limits });
  const parser = new TarParser(writer);
  let tarBytes = 0;
  // The uncompressed stream may exceed the file data by headers and padding; allow for both.
  const maxTarBytes = job.limits.maxBytes + job.limits.maxEntries * 1024 + (1 << 20);
  try {
    await pipeline(blob, new Decompressor(), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        tarBytes += chunk.length;
        if (tarBytes > maxTarBytes) throw new UnsafeEntryError('IMAGE_LAYER_TOO_LARGE', `layer decompresses to more than ${maxTarBytes} bytes`);
        diffHash.update(chunk);
        parser.push(chunk);
      }
    });
    parser.finish();
    writer.finish();
  } finally {
    writer.abort();
  }
  return { stats: writer.stats, diffHex: diffHash.digest('hex') };
}

/**
 * Picks gzip, zstd or nothing from the first bytes, whatever the media type
 * says: legacy archives carry no media type, and the digests decide validity.
 */
class Decompressor extends Transform {
  private inner: Transform | undefined;
  private plain = false;
  private pendingDone: TransformCallback | undefined;

  constructor() {
    super({ readableHighWaterMark: 8 * CHUNK });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (!this.inner && !this.plain) this.choose(chunk);
    if (this.plain) return done(null, chunk);
    if (this.inner!.write(chunk)) done();
    else this.inner!.once('drain', () => done());
  }

  override _flush(done: TransformCallback): void {
    if (!this.inner) return done();
    this.pendingDone = done;
    this.inner.end();
  }

  private choose(head: Buffer): void {
    if (head[0] === 0x1f && head[1] === 0x8b) this.inner = zlib.createGunzip({ chunkSize: CHUNK });
    else if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) this.inner = zlib.createZstdDecompress({ chunkSize: CHUNK });
    else {
      this.plain = true;
      return;
    }
    this.inner.on('data', (out: Buffer) => this.push(out));
    this.inner.on('error', (err) => this.destroy(err));
    this.inner.on('end', () => this.pendingDone?.());
  }
}
