// Content digests ("sha256:<hex>"): parsing, and reading small blobs (index,
// manifest, config) with their digest and size checked before use.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { ImageError } from '../errors.ts';

const ALGORITHMS: Record<string, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  algorithm: 'sha256' | 'sha512';
  hex: string;
}

export function parseDigest(value: unknown, what: string): Digest {
  const m = typeof value === 'string' ? /^([a-z0-9]+):([a-f0-9]+)$/.exec(value) : null;
  const algorithm = m?.[1];
  if (!m || !algorithm || ALGORITHMS[algorithm] !== m[2]!.length) {
    throw new ImageError('IMAGE_INVALID_DIGEST', `${what} has an invalid or unsupported digest ${JSON.stringify(value)}`, {
      fix: 'digests must be sha256:<64 hex> or sha512:<128 hex>',
    });
  }
  return { algorithm: algorithm as Digest['algorithm'], hex: m[2]! };
}

export function formatDigest(d: Digest): string {
  return `${d.algorithm}:${d.hex}`;
}

export function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Largest index, manifest or config we read into memory. */
export const MAX_JSON_BLOB = 8 << 20;

/**
 * Reads a whole small blob, hashing as it reads. `expected` may be undefined
 * for legacy docker-archive members that are not content-addressed.
 */
export async function readVerified(stream: Readable, what: string, expected: Digest | undefined, expectedSize?: number): Promise<Buffer> {
  const hash = createHash(expected?.algorithm ?? 'sha256');
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BLOB) {
      stream.destroy();
      throw new ImageError('IMAGE_BLOB_TOO_LARGE', `${what} is larger than ${MAX_JSON_BLOB} bytes; this is not an image manifest or config`);
    }
    hash.update(chunk);
    parts.push(chunk);
  }
  checkDigest(what, expected, hash.digest('hex'), expectedSize, size);
  return Buffer.concat(parts);
}

export function checkDigest(what: string, expected: Digest | undefined, actualHex: string, expectedSize: number | undefined, actualSize: number): void {
  if (expectedSize !== undefined && expectedSize !== actualSize) {
    throw new ImageError('IMAGE_SIZE_MISMATCH', `${what}: expected ${expectedSize} bytes, read ${actualSize}`, {
      fix: 'the image is corrupt or was modified after it was written; re-export it',
    });
  }
  if (expected && expected.hex !== actualHex) {
    throw new ImageError('IMAGE_DIGEST_MISMATCH', `${what}: expected ${formatDigest(expected)}, content hashes to ${expected.algorithm}:${actualHex}`, {
      fix: 'the image is corrupt or was modified after it was written; re-export it',
    });
  }
}

export function parseJson(buf: Buffer, what: string): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new ImageError('IMAGE_INVALID_JSON', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}
