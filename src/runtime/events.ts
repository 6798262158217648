// The native runtime's status channel: one JSON object per line.
import type { Readable } from 'node:stream';

export type RuntimeEvent =
  | { type: 'created'; pid: number }
  | { type: 'port'; port: number; hostPort: number }
  | { type: 'started' }
  | { type: 'exec-failed'; errno: number; code: string; path: string }
  | { type: 'exit'; code: number; signal?: number }
  | { type: 'stopped'; code: number; signal?: number }
  | { type: 'error'; stage: string; path: string; errno: number; code: string; message: string }
  /** Something the sandbox runs without (an idmapped mount the file system cannot give): logged, not fatal. */
  | { type: 'warning'; stage: string; errno: number; message: string };

export function onEvents(stream: Readable, handler: (event: RuntimeEvent) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line) handler(JSON.parse(line) as RuntimeEvent);
    }
  });
}
