// When a test file's sandboxes go. A file's code may leave clients connected to them
// (a Redis client opened at import and never closed, as many real suites do). Stopping
// such a sandbox while the process still runs makes those clients fail ("Socket closed
// unexpectedly") and the runner reports their errors against the file, or the next one.
// A service shared by the whole run has no such problem: it outlives the workers. So a
// sandbox that a client of this process is still connected to outlives the process's
// use of the file: it is killed when the process ends (the runner is done with it by
// then and listens for nothing), synchronously, before any client can notice. A sandbox
// nobody is connected to is stopped at once, so long-lived workers (Jest's, Vitest's with
// isolate: false) do not pile them up.
import { readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { logger } from '../log.ts';
import type { Container } from '../runtime/container.ts';
import { liveContainers } from '../runtime/container.ts';
import { POOL_WORKER_ENV } from '../runtime/start.ts';

const log = logger('session');

// Shared by every copy of this module in the process (test runners load it more than once).
const lingering: Set<Destroyable> = ((globalThis as Record<symbol, unknown>)[Symbol.for('vitest-environment-container.lingering')] ??= new Set<Destroyable>()) as Set<Destroyable>;

/** A sandbox as this process can end it at its own end: synchronously. */
interface Destroyable { destroyNow(): void }

/** Host ports (hex, as /proc/net/tcp writes them) that some socket of this network namespace is connected to. */
function connectedPorts(): Set<string> {
  const ports = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const [, , remote, state] = line.trim().split(/\s+/);
      // 01 ESTABLISHED, 02 SYN_SENT, 03 SYN_RECV: a live client connection
      if (remote && (state === '01' || state === '02' || state === '03')) ports.add(remote.slice(remote.lastIndexOf(':') + 1));
    }
  }
  return ports;
}

/** Whether a client of this host (this process, in practice) is connected to one of the sandbox's forwarded ports. */
function hasClients(c: Container, connected: () => Set<string>): boolean {
  if (!c.ports.size || !c.running) return false;
  const ports = connected();
  return [...c.ports.values()].some((hostPort) => ports.has(hostPort.toString(16).toUpperCase().padStart(4, '0')));
}

/**
 * In a pool worker's sandbox, everything the worker started ends with the worker (the pool
 * kills the worker's whole sandbox once Vitest is done with it), so nothing is stopped early.
 * Worker threads cannot be outlived that way (no signals, no exit of their own): they stop.
 */
function endsWithProcess(): boolean {
  return process.env[POOL_WORKER_ENV] === '1';
}

let hooked = false;

/** Kills what lingers when the process is told to end (Vitest's forks end their workers with SIGTERM). */
function hookSignals(): void {
  if (hooked) return;
  hooked = true;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = () => {
      destroyLingering();
      process.off(signal, onSignal);
      // The signal's own meaning once we are done, unless the program handles it itself.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
  // A process.exit() (Jest's workers, Vitest's with --no-isolate at the end), or the last code having run.
  process.once('exit', destroyLingering);
}

function destroyLingering(): void {
  for (const c of lingering) c.destroyNow();
  lingering.clear();
}

/**
 * A sandbox another process (the run's sandbox service) kept for this one because a client of
 * this process is still connected to it: this process ends it when it ends itself, as its own.
 */
export function killAtExit(sandbox: Destroyable): void {
  lingering.add(sandbox);
  hookSignals();
}

function linger(c: Container): void {
  log('%s keeps running until this process ends: a client is still connected to it', c.id);
  c.unref();
  lingering.add(c);
  hookSignals();
}

/**
 * Ends a test file's use of these sandboxes (its own, those its tests started and forgot):
 * stopped now, or, when a client is still connected, handed to `keep`: by default they run
 * until this process ends (the sandbox service keeps them until the test worker ends).
 */
export async function releaseSandboxes(containers: Iterable<Container>, keep: (c: Container) => void = linger): Promise<void> {
  let ports: Set<string> | undefined;
  const connected = () => (ports ??= connectedPorts());
  const stops: Promise<unknown>[] = [];
  for (const c of containers) {
    if (lingering.has(c) || !c.running) continue;
    if (isMainThread && (endsWithProcess() || hasClients(c, connected))) keep(c);
    else stops.push(c.stop());
  }
  await Promise.all(stops);
}

/** Every sandbox of this process that a finished file left (lingering ones excepted). */
export function releaseAll(): Promise<void> {
  return releaseSandboxes([...liveContainers]);
}
