// Wait strategies: a sandbox counts as ready when its log shows a line, a port
// accepts connections inside it, a command exits 0, an HTTP endpoint answers,
// or the image's healthcheck passes. Each has a deadline; missing it, or the
// main process ending first, is an error that shows the last log lines.
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerExitedError, InvalidOptionsError, WaitTimeoutError } from '../errors.ts';
import { isListening } from '../net/listening.ts';
import type { Container } from './container.ts';

export type WaitFor =
  | { log: string | RegExp; times?: number }
  | { port: number }
  | { command: string[] }
  | { http: string; port: number; status?: number }
  | { healthcheck: true };

const POLL_MS = 25;

export function normalizeWaitFor(value: unknown): WaitFor[] {
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const w of list) {
    const ok = w && typeof w === 'object' && (
      ('log' in w && (typeof w.log === 'string' || w.log instanceof RegExp)) ||
      ('port' in w && !('http' in w) && Number.isInteger(w.port)) ||
      ('command' in w && Array.isArray(w.command) && w.command.length > 0) ||
      ('http' in w && typeof w.http === 'string' && Number.isInteger(w.port)) ||
      ('healthcheck' in w && w.healthcheck === true));
    if (!ok) {
      throw new InvalidOptionsError('INVALID_OPTIONS', `waitFor: ${JSON.stringify(w)} is not a wait strategy`,
        { fix: 'use { log: "ready" }, { port: 6379 }, { command: ["pg_isready"] }, { http: "/health", port: 8080 } or { healthcheck: true }' });
    }
  }
  return list as WaitFor[];
}

function describe(w: WaitFor): string {
  if ('log' in w) return `log line ${w.log instanceof RegExp ? w.log : JSON.stringify(w.log)}`;
  if ('http' in w) return `HTTP ${w.status ?? '2xx/3xx'} from port ${w.port}${w.http}`;
  if ('port' in w) return `port ${w.port} listening`;
  if ('command' in w) return `command ${JSON.stringify(w.command)} exiting 0`;
  return 'the image healthcheck passing';
}

async function httpStatus(port: number, path: string): Promise<number> {
  // node:http is loaded only when an HTTP wait is used: it costs every test file's start otherwise.
  const { request } = await import('node:http');
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => { req.destroy(); resolve(0); });
    req.end();
  });
}

function healthcheckCommand(c: Container): string[] {
  const test = c.image.config.Healthcheck?.Test;
  if (!test?.length || test[0] === 'NONE') {
    throw new InvalidOptionsError('INVALID_OPTIONS', `waitFor healthcheck: image ${c.image.reference} has no healthcheck`);
  }
  return test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', test.slice(1).join(' ')] : test[0] === 'CMD' ? test.slice(1) : test;
}

async function satisfied(c: Container, w: WaitFor): Promise<boolean> {
  if ('log' in w) {
    const times = w.times ?? 1;
    const logs = c.logs();
    if (typeof w.log === 'string') return logs.split(w.log).length - 1 >= times;
    return (logs.match(new RegExp(w.log.source, w.log.flags.includes('g') ? w.log.flags : `${w.log.flags}g`)) ?? []).length >= times;
  }
  if ('http' in w) {
    const status = await httpStatus(c.endpoint(w.port).port, w.http);
    return w.status ? status === w.status : status >= 200 && status < 400;
  }
  if ('port' in w) return isListening(c.pid, w.port);
  const cmd = 'command' in w ? w.command : healthcheckCommand(c);
  return (await c.exec(cmd)).exitCode === 0;
}

function lastLines(text: string, n = 20): string {
  const lines = text.trimEnd().split('\n').slice(-n);
  return lines.length && lines[0] ? lines.map((l) => `    ${l}`).join('\n') : '    (no output)';
}

/** Resolves when every strategy is satisfied; rejects on timeout or when the main process ends first. */
export async function waitUntilReady(c: Container, waits: WaitFor[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (const w of waits) {
    for (;;) {
      if (!c.running) {
        const exit = await c.wait();
        throw new ContainerExitedError('CONTAINER_EXITED',
          `the container's main process exited with code ${exit.exitCode}${exit.oomKilled ? ' (killed: out of memory)' : ''} while waiting for ${describe(w)}\n  last output:\n${lastLines(c.logs())}`,
          exit.exitCode);
      }
      // A check that blocks (a healthcheck that hangs) must not outlive the deadline either.
      const remaining = Math.max(0, deadline - performance.now());
      // (unref'd: a check that finished in time must not leave a timer holding the process open)
      const ok = await Promise.race([satisfied(c, w).catch(() => false), sleep(remaining, false, { ref: false })]);
      if (ok) break;
      if (performance.now() > deadline) {
        throw new WaitTimeoutError('WAIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${describe(w)}\n  last output:\n${lastLines(c.logs())}`,
          { fix: 'raise the `timeout` option, or check the wait strategy against the output above' });
      }
      await Promise.race([sleep(POLL_MS), c.wait()]);
    }
  }
}
