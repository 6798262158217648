// The main thread's side of a layer's worker thread (unpack-worker.ts): a
// Writable for the blob's compressed bytes. It batches them into 1 MiB
// messages (a message per 16-64 KiB network chunk costs more than it carries)
// whose memory is moved to the worker, not copied again, and holds the writer
// back while more than MAX_IN_FLIGHT bytes wait in the worker. It finishes
// when the worker has written and hashed the whole layer; a failure in the
// worker fails the stream at once, so the download stops.
import { Writable } from 'node:stream';
import type { WritableOptions } from 'node:stream';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ImageError } from '../../errors.ts';
import { packageRoot } from '../../path.ts';
import { fromErrorMessage } from './layer-errors.ts';
import type { ErrorMessage } from './layer-errors.ts';
import { CHUNK } from './write-layer.ts';
import type { LayerJob, WrittenLayer } from './write-layer.ts';

export type ThreadReply = { consumed: number } | { done: WrittenLayer } | { failed: ErrorMessage };

/** Bytes sent to the worker and not yet handed on by it. */
const MAX_IN_FLIGHT = 4 * CHUNK;

// From the sources (tests, benches run by Node itself), the worker is the .ts next to this
// file; once built, its own entry in dist/ (a chunk's import.meta.url says nothing useful).
const workerEntry = import.meta.url.endsWith('.ts')
  ? fileURLToPath(new URL('./unpack-worker.ts', import.meta.url))
  : join(packageRoot(), 'dist', 'image', 'unpack-worker.js');

export class LayerThread extends Writable {
  /** what the worker reported, once the stream has finished */
  written: WrittenLayer | undefined;
  readonly #worker: Worker;
  readonly #outcome: Promise<WrittenLayer>;
  #batch = Buffer.allocUnsafeSlow(CHUNK); // never a slice of Node's shared pool: its memory can be moved
  #fill = 0;
  #inFlight = 0;
  #blocked: (() => void) | undefined;
  #finishing = false;

  constructor(job: LayerJob, what: string, options: WritableOptions = {}) {
    super({ ...options, highWaterMark: CHUNK });
    this.#worker = new Worker(workerEntry, { workerData: { job, what } });
    this.#outcome = new Promise((resolve, reject) => {
      this.#worker.on('message', (m: ThreadReply) => {
        if ('consumed' in m) {
          this.#inFlight -= m.consumed;
          if (this.#inFlight < MAX_IN_FLIGHT) this.#unblock();
        } else if ('done' in m) {
          resolve(m.done);
        } else {
          reject(fromErrorMessage(m.failed));
        }
      });
      this.#worker.on('error', (err) => reject(new ImageError('IMAGE_UNPACK_FAILED', `${what}: the layer's thread failed: ${err.message}`, { cause: err })));
      this.#worker.on('exit', (code) => reject(new ImageError('IMAGE_UNPACK_FAILED', `${what}: the layer's thread ended (exit code ${code}) before it finished`)));
    });
    this.#outcome.catch((err: Error) => {
      if (!this.#finishing) this.destroy(err); // once finishing, _final reports it
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    for (let off = 0; off < chunk.length;) {
      const n = chunk.copy(this.#batch, this.#fill, off);
      off += n;
      this.#fill += n;
      if (this.#fill === CHUNK) this.#post();
    }
    if (this.#inFlight < MAX_IN_FLIGHT) done();
    else this.#blocked = done;
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#finishing = true;
    this.#post();
    this.#worker.postMessage(null);
    this.#outcome.then((written) => {
      this.written = written;
      done();
    }, done);
  }

  /** Ends the worker (done, failed or given up on); resolves once it is gone and writes nothing more. */
  async stop(): Promise<void> {
    await this.#worker.terminate();
  }

  #post(): void {
    if (!this.#fill) return;
    const bytes = this.#batch.subarray(0, this.#fill);
    this.#worker.postMessage(bytes, [bytes.buffer as ArrayBuffer]);
    this.#inFlight += this.#fill;
    this.#batch = Buffer.allocUnsafeSlow(CHUNK);
    this.#fill = 0;
  }

  #unblock(): void {
    const blocked = this.#blocked;
    this.#blocked = undefined;
    blocked?.();
  }
}
