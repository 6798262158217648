// A layer's compressed bytes in, its tar stream out to a synchronous consumer
// (hash, parse, write), with the format picked from the first bytes.
//
// Gzip, nearly every layer, is inflated on the thread pool by a bare zlib
// handle into two output buffers used in turn: while the pool inflates into
// one, the consumer reads the other, and neither is ever reallocated. Node's
// zlib streams allocate a new buffer for every chunkSize of output, and input
// arrives in 16-64 KiB network reads that were concatenated into 1 MiB
// batches: ~145 MB of garbage to unpack a 100 MB layer, which cost a pull
// 9 major GCs (all of V8's heap marked each time). Here the input is copied
// into two reused batches as well. Only the handle is Node's internal API
// (the one its own zlib streams are built on, unchanged since Node 10); where
// it is not what is expected, gzip goes through zlib.createGunzip instead.
import type { Transform } from 'node:stream';
import zlib from 'node:zlib';

/** Input batch and output buffer size: each write into zlib is one trip to the thread pool. */
const CHUNK = 1 << 20;

export interface Decoder {
  /** Takes the next bytes of the blob (not to be changed afterwards); resolves when it is ready for more. */
  write(chunk: Buffer): Promise<void>;
  /** The blob is complete: resolves once all of its output went to the consumer. */
  end(): Promise<void>;
  /** Frees the decoder (after end(), or to abandon it after a failure). */
  close(): void;
}

/**
 * `onOutput` gets the decompressed stream in order; a chunk is only valid during the call. What it throws fails the decoder.
 * `bareHandle: false` (tests) takes the zlib stream for gzip too.
 */
export function createDecoder(head: Buffer, onOutput: (chunk: Buffer) => void, bareHandle = true): Decoder {
  if (head[0] === 0x1f && head[1] === 0x8b) {
    return (bareHandle ? bareHandleGunzip(onOutput) : undefined) ?? new StreamDecoder(zlib.createGunzip({ chunkSize: CHUNK }), onOutput);
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return new StreamDecoder(zlib.createZstdDecompress({ chunkSize: CHUNK }), onOutput);
  return new StreamDecoder(undefined, onOutput);
}

/** What node:zlib's bindings offer (lib/zlib.js): `new Zlib(mode)`, init, write on the thread pool, close. */
interface ZlibHandle {
  init(windowBits: number, level: number, memLevel: number, strategy: number, writeState: Uint32Array, callback: () => void, dictionary: undefined): void;
  write(flush: number, input: Buffer, inOff: number, inLen: number, output: Buffer, outOff: number, outLen: number): void;
  close(): void;
  onerror: (message: string, errno: number, code: string) => void;
}
type ZlibHandleClass = new (mode: number) => ZlibHandle;

let handleClass: ZlibHandleClass | null | undefined;

function zlibHandleClass(): ZlibHandleClass | null {
  if (handleClass !== undefined) return handleClass;
  const probe = zlib.createGunzip() as unknown as { _handle?: Partial<ZlibHandle> & { constructor: unknown } };
  const h = probe._handle;
  handleClass = h && typeof h.init === 'function' && typeof h.write === 'function' && typeof h.close === 'function'
    ? h.constructor as ZlibHandleClass
    : null;
  (probe as unknown as Transform).destroy();
  return handleClass;
}

/** The bare-handle gunzip, or undefined where this Node's zlib binding is not the expected one. */
export function bareHandleGunzip(onOutput: (chunk: Buffer) => void): Decoder | undefined {
  const Handle = zlibHandleClass();
  if (!Handle) return undefined;
  try {
    return new HandleGunzip(new Handle(zlib.constants.GUNZIP), onOutput);
  } catch {
    handleClass = null;
    return undefined;
  }
}

class HandleGunzip implements Decoder {
  private readonly handle: ZlibHandle;
  private readonly state = new Uint32Array(2); // avail_out, avail_in after each write
  private readonly onOutput: (chunk: Buffer) => void;
  private readonly output = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  private readonly input = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  /** the batch being filled, and how far */
  private filling = 0;
  private filled = 0;
  /** on the thread pool: which batch, from where, how much is left, with which flush */
  private busy = false;
  private batch = 0;
  private inOff = 0;
  private inLen = 0;
  private flush: number = zlib.constants.Z_NO_FLUSH;
  private out = 0;
  /** a full batch waiting for the one on the pool, and whoever waits with it */
  private queued: { len: number; flush: number } | undefined;
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  private closed = false;

  constructor(handle: ZlibHandle, onOutput: (chunk: Buffer) => void) {
    this.handle = handle;
    this.onOutput = onOutput;
    handle.onerror = (message, errno, code) => this.fail(Object.assign(new Error(message), { errno, code }));
    const c = zlib.constants;
    handle.init(c.Z_DEFAULT_WINDOWBITS, c.Z_DEFAULT_COMPRESSION, c.Z_DEFAULT_MEMLEVEL, c.Z_DEFAULT_STRATEGY, this.state, () => this.written(), undefined);
  }

  async write(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.error) throw this.error;
      const n = chunk.copy(this.input[this.filling]!, this.filled, off);
      off += n;
      this.filled += n;
      if (this.filled === CHUNK) await this.submit(zlib.constants.Z_NO_FLUSH);
    }
  }

  async end(): Promise<void> {
    await this.submit(zlib.constants.Z_FINISH);
    await this.idle();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handle.close(); // with a write on the pool, zlib is freed once it returns
  }

  /** Hands the filled batch to the pool, or queues it behind the one there. */
  private async submit(flush: number): Promise<void> {
    if (this.error) throw this.error;
    const len = this.filled;
    this.filling ^= 1;
    this.filled = 0;
    if (!this.busy) return this.start(this.filling ^ 1, len, flush);
    this.queued = { len, flush };
    await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.error) throw this.error;
  }

  private async idle(): Promise<void> {
    while (!this.error && (this.busy || this.queued)) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.error) throw this.error;
  }

  private start(batch: number, len: number, flush: number): void {
    this.busy = true;
    this.batch = batch;
    this.inOff = 0;
    this.inLen = len;
    this.flush = flush;
    this.trip();
  }

  private trip(): void {
    this.out ^= 1;
    this.handle.write(this.flush, this.input[this.batch]!, this.inOff, this.inLen, this.output[this.out]!, 0, CHUNK);
  }

  /** A write came back from the pool: send the next one off first, then hand over what this one produced. */
  private written(): void {
    if (this.closed || this.error) return;
    const [availOut, availIn] = this.state;
    const out = this.output[this.out]!;
    this.inOff += this.inLen - availIn!;
    this.inLen = availIn!;
    if (availOut === 0) {
      this.trip(); // the output buffer was full: more to come from the same input
    } else if (this.queued) {
      // This batch is done (any bytes left are padding after the gzip stream's end, which zlib skips).
      const { len, flush } = this.queued;
      this.queued = undefined;
      this.start(this.filling ^ 1, len, flush);
    } else {
      this.busy = false;
    }
    const have = CHUNK - availOut!;
    try {
      if (have > 0) this.onOutput(out.subarray(0, have));
    } catch (err) {
      this.fail(err as Error);
    }
    const wake = this.wake;
    if (wake && (!this.queued || this.error)) {
      this.wake = undefined;
      wake();
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.close();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** zstd, plain tar, and gzip where the bare handle is unavailable: through a zlib stream, input batched to 1 MiB writes. */
class StreamDecoder implements Decoder {
  private readonly inner: Transform | undefined;
  private readonly onOutput: (chunk: Buffer) => void;
  private batch: Buffer[] = [];
  private batched = 0;
  private error: Error | undefined;
  private readonly done: Promise<void> | undefined;

  constructor(inner: Transform | undefined, onOutput: (chunk: Buffer) => void) {
    this.inner = inner;
    this.onOutput = onOutput;
    if (!inner) return;
    inner.on('data', (out: Buffer) => {
      try {
        onOutput(out);
      } catch (err) {
        inner.destroy(err as Error);
      }
    });
    this.done = new Promise<void>((resolve, reject) => {
      inner.on('end', resolve);
      inner.on('error', (err) => {
        this.error ??= err;
        reject(err);
      });
    });
    this.done.catch(() => {}); // observed in write() and end()
  }

  async write(chunk: Buffer): Promise<void> {
    if (!this.inner) return this.onOutput(chunk);
    if (this.error) throw this.error;
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched >= CHUNK) await this.pass();
  }

  async end(): Promise<void> {
    if (!this.inner) return;
    await this.pass();
    this.inner.end();
    await this.done;
  }

  close(): void {
    this.inner?.destroy();
  }

  private async pass(): Promise<void> {
    if (!this.batched) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batched);
    this.batch = [];
    this.batched = 0;
    if (!this.inner!.write(data)) await Promise.race([new Promise((resolve) => this.inner!.once('drain', resolve)), this.done]);
    if (this.error) throw this.error;
  }
}
