// The native runtime's status channel: one JSON object per line.
import type { Readable } from 'node:stream';

export type RuntimeEvent =
  | { type: 'created'; pid: number }
  | { type: 'port'; port: number; hostPort: number }
  | { type: 'started' }
  /** pid 1 keeps the scratch tmpfs (upper/ is the writable layer) open as this fd: what a commit reads */
  | { type: 'rootfs'; scratchFd: number }
  /** the root is ready and the main process waits for SIGCONT (files are copied in meanwhile) */
  | { type: 'held' }
  /** a `tree --hold` has its tree open and waits for a byte on its control channel */
  | { type: 'ready' }
  | { type: 'exec-failed'; errno: number; code: string; path: string }
  | { type: 'exit'; code: number; signal?: number }
  | { type: 'stopped'; code: number; signal?: number }
  | { type: 'error'; stage: string; path: string; errno: number; code: string; message: string }
  /** Something the sandbox runs without (an idmapped mount the file system cannot give): logged, not fatal. */
  | { type: 'warning'; stage: string; errno: number; code?: string; path?: string; message: string };

/** Splits a stream of JSON lines (the runtime's status channel, the sandbox service's socket) and hands each parsed object on. */
export function onJsonLines<T>(stream: NodeJS.ReadableStream, handler: (value: T) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line) handler(JSON.parse(line) as T);
    }
  });
}

export function onEvents(stream: Readable, handler: (event: RuntimeEvent) => void): void {
  onJsonLines(stream, handler);
}
