// The layer decoder: gzip through the bare zlib handle (reused buffers) and
// through zlib's stream must give zlib's own output and errors, whatever the
// chunking, and a consumer's exception must fail it without hanging.
import { randomBytes } from 'node:crypto';
import { gzipSync, gunzipSync, zstdCompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bareHandleGunzip, createDecoder } from '../../src/image/unpack/decompress.ts';

async function decode(blob: Buffer, chunk: number, bareHandle: boolean, onOutput?: (c: Buffer) => void): Promise<Buffer> {
  const parts: Buffer[] = [];
  const decoder = createDecoder(blob, (c) => {
    onOutput?.(c);
    parts.push(Buffer.from(c)); // only valid during the call
  }, bareHandle);
  try {
    for (let i = 0; i < blob.length; i += chunk) await decoder.write(blob.subarray(i, i + chunk));
    await decoder.end();
  } finally {
    decoder.close();
  }
  return Buffer.concat(parts);
}

// ~5 MiB that compresses ~2:1, so that one input batch fills several output buffers.
const text = Buffer.from(randomBytes(5 << 19).toString('hex'));
const members = Buffer.concat([gzipSync(text), gzipSync(Buffer.from('second member'))]);

describe('layer decoder', () => {
  it('uses the bare zlib handle on this Node (a Node whose zlib binding changed would silently take the slower stream)', () => {
    const d = bareHandleGunzip(() => {});
    expect(d).toBeDefined();
    d!.close();
  });

  describe.each([['bare handle', true], ['zlib stream', false]] as const)('gzip via the %s', (_name, bare) => {
    it.each([1000, 64 << 10, 1 << 20, 3 << 20])('gives gunzipSync\'s output in chunks of %d bytes, concatenated members and trailing zeros included', async (chunk) => {
      const blob = Buffer.concat([members, Buffer.alloc(700)]);
      expect((await decode(blob, chunk, bare)).equals(gunzipSync(blob))).toBe(true);
    });

    it('a truncated stream fails as zlib says (unexpected end of file)', async () => {
      const blob = gzipSync(text).subarray(0, 100_000);
      await expect(decode(blob, 64 << 10, bare)).rejects.toMatchObject({ code: 'Z_BUF_ERROR' });
    });

    it('corrupt data fails with zlib\'s error', async () => {
      const blob = gzipSync(text);
      blob.fill(0x55, 5000, 6000);
      await expect(decode(blob, 64 << 10, bare)).rejects.toMatchObject({ code: 'Z_DATA_ERROR' });
    });

    it('what the consumer throws fails the decoder, at once and without hanging', async () => {
      let calls = 0;
      const boom = new Error('consumer says no');
      await expect(decode(gzipSync(text), 64 << 10, bare, () => {
        if (++calls === 2) throw boom;
      })).rejects.toBe(boom);
      expect(calls).toBe(2);
    });
  });

  it('zstd and plain data', async () => {
    expect((await decode(zstdCompressSync(text), 64 << 10, true)).equals(text)).toBe(true);
    const tar = Buffer.concat([Buffer.from('ustar-ish'), text]);
    expect((await decode(tar, 64 << 10, true)).equals(tar)).toBe(true);
  });
});
