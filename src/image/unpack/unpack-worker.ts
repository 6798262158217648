// Entry of a layer's worker thread (started by layer-thread.ts): the blob's
// bytes arrive as messages, writeLayer() turns them into the layer directory,
// and one message reports the outcome. Each chunk is acknowledged once it has
// been handed on, so the main thread never has more than a few MiB in flight.
import { parentPort, workerData } from 'node:worker_threads';
import { asImageError, toErrorMessage } from './layer-errors.ts';
import { writeLayer } from './write-layer.ts';
import type { LayerJob } from './write-layer.ts';
import type { ThreadReply } from './layer-thread.ts';

const port = parentPort!;
const { job, what } = workerData as { job: LayerJob; what: string };
const reply = (m: ThreadReply): void => port.postMessage(m);

/** Chunks as they come; null is the end of the blob. */
const queue: (Buffer | null)[] = [];
let wake: (() => void) | undefined;
port.on('message', (m: Uint8Array | null) => {
  queue.push(m && Buffer.from(m.buffer, m.byteOffset, m.byteLength));
  wake?.();
});

async function* incoming(): AsyncGenerator<Buffer> {
  for (;;) {
    while (!queue.length) await new Promise<void>((resolve) => (wake = resolve));
    const chunk = queue.shift()!;
    if (chunk === null) return;
    yield chunk;
    reply({ consumed: chunk.length }); // asked for the next one: this one is in zlib's hands
  }
}

try {
  reply({ done: await writeLayer(incoming(), job) });
} catch (err) {
  reply({ failed: toErrorMessage(asImageError(err, what)) });
}
port.unref(); // nothing more to do: the thread ends
