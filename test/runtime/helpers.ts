// What the runtime tests share: reading streams, polling, and a gate the test opens
// from outside a sandbox, to show that a wait really waits.
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { startContainer, type Container, type ContainerOptions } from '../../src/runtime/index.ts';

/** Everything a stream has said so far. */
export function collect(stream: Readable): { text: () => string } {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { text: () => Buffer.concat(chunks).toString() };
}

/** Polls until check() holds; the deadline is only there to fail with a message instead of the test timeout. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  for (const deadline = performance.now() + timeoutMs; !(await check());) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface Gate { options: ContainerOptions; booted: () => boolean; open: () => void; remove: () => void }

/**
 * A main process that says it is up on a host directory (/gate, bound in), then waits for the
 * test's go before it runs `command` (e.g. logs "ready"), then sleeps. A wait that returned early
 * resolves before the go.
 */
export function gated(command: string, shell = 'sh'): Gate {
  const dir = mkdtempSync(join(tmpdir(), 'vtc-gate-'));
  chmodSync(dir, 0o777); // the sandbox's root need not be the host's
  return {
    options: { mounts: [{ source: dir, target: '/gate' }],
      cmd: [shell, '-c', `touch /gate/booted; until [ -e /gate/go ]; do sleep 0.02; done; ${command}; exec sleep 3600`] },
    booted: () => existsSync(join(dir, 'booted')),
    open: () => writeFileSync(join(dir, 'go'), ''),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Starts with the gate's options under `options`; asserts that the start has not resolved before the gate opens. */
export async function startsOnlyAfterGate(gate: Gate, options: ContainerOptions): Promise<Container> {
  let resolved = false;
  const starting = startContainer({ ...gate.options, ...options }).finally(() => { resolved = true; });
  starting.catch(() => {});
  try {
    await until('the main process to start', gate.booted);
    await sleep(200); // room for a wait that does not wait to resolve
    expect(resolved).toBe(false);
    gate.open();
    return await starting;
  } finally {
    gate.remove();
  }
}
