// sha256 of a commit's layer tar (its diff_id) while the layer is being made. Hashing is the one
// part of a commit nothing can shorten (~0.9 ms per MB here): past a few MB it moves to a worker
// thread, beside the runtime copying the next files and this thread reading the last ones. The
// bytes are moved to the worker, not copied (a copy of 100 MB costs ~50 ms here, more than half of
// hashing it), and sent in batches (a message per 64 KiB costs more than the hashing). Small
// layers are hashed here: a worker costs more to start than they take.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Bytes below which hashing stays on this thread. */
const WORKER_THRESHOLD = 8 << 20;

// CommonJS, evaluated: nothing to resolve, bundled or not. A message is a list of byte views, hashed in order.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'digest') {
    parentPort.postMessage(hash.digest('hex'));
    hash = createHash('sha256');
  } else {
    for (const bytes of m) hash.update(bytes);
  }
});`;

let idle: Worker | undefined;

/** A worker of this process that is not hashing anything (kept for the next large commit, never keeping the process alive). */
function takeWorker(): Worker {
  const worker = idle ?? new Worker(WORKER_SOURCE, { eval: true });
  idle = undefined;
  worker.unref();
  return worker;
}

/** Buffers whose memory is their own (not a slice of Node's shared pool for small buffers): safe to move. */
const movable = (b: ArrayBufferLike): b is ArrayBuffer => b instanceof ArrayBuffer && b.byteLength > Buffer.poolSize;

/** Bytes handed to the worker per message: one message per 64 KiB chunk costs more than the hashing. */
const BATCH = 8 << 20;

export class StreamHash {
  /** what was updated since the last post, in order */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** the memory of released chunks that pending views point into: moved with the next post */
  #moving: ArrayBuffer[] = [];
  #total = 0;
  #worker: Worker | undefined;

  /** bytes: must not change until the next release() of the chunk they are part of (or the digest) */
  update(bytes: Buffer): void {
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    this.#total += bytes.length;
  }

  /**
   * The caller is done with chunk (every slice of it given to update is final, and it reads it no
   * more): past the threshold, its memory goes to the worker with the next batch.
   */
  release(chunk: Buffer): void {
    if (movable(chunk.buffer)) this.#moving.push(chunk.buffer);
    if (!this.#worker && this.#total < WORKER_THRESHOLD) return;
    this.#worker ??= takeWorker();
    if (this.#pendingBytes >= BATCH) this.#post(this.#worker);
  }

  #post(worker: Worker): void {
    if (!this.#pending.length) return;
    const moving = new Set<ArrayBufferLike>(this.#moving);
    // Views of anything else (headers, pooled slices) are copied; they are small.
    const views = this.#pending.map((b) => (moving.has(b.buffer) ? b : Buffer.from(b)));
    const transfer = [...moving].filter((buffer) => views.some((v) => v.buffer === buffer)) as ArrayBuffer[];
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#moving = [];
    worker.postMessage(views, transfer);
  }

  /** The hex digest of everything updated. */
  async digest(): Promise<string> {
    const worker = this.#worker;
    if (!worker) {
      const hash = createHash('sha256');
      for (const b of this.#pending) hash.update(b);
      this.#pending = [];
      return hash.digest('hex');
    }
    this.#post(worker);
    worker.ref();
    const hex = await new Promise<string>((resolve, reject) => {
      worker.once('message', (m: string) => resolve(m));
      worker.once('error', reject);
      worker.postMessage('digest');
    });
    worker.unref();
    worker.removeAllListeners('error');
    this.#worker = undefined;
    if (idle) void idle.terminate();
    idle = worker;
    return hex;
  }

  /** A hash given up on (a failed commit): its worker is ended. */
  discard(): void {
    if (this.#worker) void this.#worker.terminate();
    this.#worker = undefined;
    this.#pending = [];
    this.#moving = [];
  }
}
