// sha256 of a stream that the main thread is also busy writing to disk. A commit's layer is
// hashed (its diff_id) and unpacked from the same bytes; done in turn, on one thread, the two
// cost about as much as each other (~0.7 ms per MB each here), so past a few MB the hashing
// moves to a worker thread and the two run side by side. Small layers are hashed here: a
// worker costs more to start than they take.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Bytes below which hashing stays on this thread. */
const WORKER_THRESHOLD = 8 << 20;

// CommonJS, evaluated: nothing to resolve, bundled or not.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m === 'digest') {
    parentPort.postMessage(hash.digest('hex'));
    hash = createHash('sha256');
  } else {
    hash.update(m);
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

/** Bytes handed to the worker at once: one copy into a buffer of its own, then moved (not copied) across. */
const BATCH = 2 << 20;

export class StreamHash {
  #held: Buffer[] = [];
  #heldBytes = 0;
  #worker: Worker | undefined;

  /** bytes: must not change afterwards (they may be held until the digest) */
  update(bytes: Buffer): void {
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
    if (!this.#worker && this.#heldBytes >= WORKER_THRESHOLD) this.#worker = takeWorker();
    if (this.#worker && this.#heldBytes >= BATCH) this.#send(this.#worker);
  }

  #send(worker: Worker): void {
    const batch = Buffer.allocUnsafeSlow(this.#heldBytes);
    let o = 0;
    for (const b of this.#held) o += b.copy(batch, o);
    this.#held = [];
    this.#heldBytes = 0;
    worker.postMessage(batch, [batch.buffer]);
  }

  /** The hex digest of everything updated. */
  async digest(): Promise<string> {
    const worker = this.#worker;
    if (!worker) {
      const hash = createHash('sha256');
      for (const b of this.#held) hash.update(b);
      return hash.digest('hex');
    }
    if (this.#heldBytes) this.#send(worker);
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
    this.#held = [];
  }
}
