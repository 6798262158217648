// The bench's side of a peers' driver: starts it in a private mount namespace
// and sends it requests, one at a time.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DriverOptions, Reply, Request } from './protocol.ts';

const driverPath = join(dirname(fileURLToPath(import.meta.url)), 'driver.ts');

type Body = Request extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class Driver {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (r: Reply) => void>();
  readonly #ready: Promise<void>;
  readonly #exited: Promise<number | null>;
  #next = 1;
  #stderr = '';

  constructor(name: string, options: DriverOptions) {
    this.name = name;
    // --kill-child: should the driver's unshare parent die, the driver (and its namespace) goes too.
    this.#child = spawn('unshare', ['--mount', '--propagation', 'private', '--kill-child',
      process.execPath, ...process.execArgv, driverPath, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr!.on('data', (c: Buffer) => {
      this.#stderr = (this.#stderr + c.toString('utf8')).slice(-4000);
    });
    let markReady!: () => void, failReady!: (e: Error) => void;
    this.#ready = new Promise((res, rej) => { markReady = res; failReady = rej; });
    this.#exited = new Promise((resolve) => this.#child.on('close', (code) => {
      failReady(new Error(`driver ${name} exited (${code}): ${this.#stderr.trim()}`));
      for (const [id, settle] of this.#pending) settle({ id, ok: false, error: `driver ${name} exited (${code}): ${this.#stderr.trim()}` });
      this.#pending.clear();
      resolve(code);
    }));
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Reply | { ready: true };
      if ('ready' in msg) return markReady();
      this.#pending.get(msg.id)?.(msg);
      this.#pending.delete(msg.id);
    });
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  request(body: Body): Promise<Reply> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin!.write(`${JSON.stringify({ ...body, id })}\n`);
    });
  }

  /** Closes its stdin: it tears down what it started and exits, and its mount namespace goes with it. */
  async close(timeoutMs = 30_000): Promise<void> {
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
  }
}
