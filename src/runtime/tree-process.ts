// `vtc-runtime tree` on a running sandbox: its writable layer (commit), a path in it read
// (copyFrom) or written (copyTo), as the record stream of tree-stream.ts. The process joins
// the sandbox's user namespace (and, for paths, its mount namespace) as its root: owners
// are the sandbox's ids, paths resolve inside its root, nothing is done through a symlink.
import type { Readable, Writable } from 'node:stream';
import type { ContainerError } from '../errors.ts';
import { onEvents, type RuntimeEvent } from './events.ts';
import { consumed, launchRuntime } from './launch.ts';

export type TreeErrorEvent = Extract<RuntimeEvent, { type: 'error' }>;

/** What the tree command needs to know of the sandbox. */
export interface TreeTarget {
  id: string;
  pid: number;
  pidNamespace: string;
  runRoot: string;
}

export interface TreeProcess {
  stdout: Readable;
  /** with `stdin`: the records to write */
  stdin: Writable | undefined;
  /** with --hold: resolves once the tree is open; go() then lets it read */
  ready: Promise<void>;
  go(): void;
  /** resolves once it exited 0 and its status was read; rejects with the error `fail` made of its error event */
  done: Promise<void>;
  /** once it ended: the error it reported, if it reported one (why a copy whose stream broke failed) */
  reported: Promise<ContainerError | undefined>;
  /** ends it now (a failed copy) */
  kill(): void;
}

/** target: a sandbox, or (only the run root) none: a host directory written with the caller's rights. */
export async function launchTree(target: TreeTarget | { runRoot: string }, args: string[], options: { stdin?: boolean; fail: (e: TreeErrorEvent | undefined) => ContainerError }): Promise<TreeProcess> {
  const sandbox = 'pid' in target ? ['--pid', String(target.pid), '--pidns', target.pidNamespace] : [];
  const child = await launchRuntime(['tree', ...sandbox, ...args], { runRoot: target.runRoot, stdin: options.stdin ?? false });
  let failure: TreeErrorEvent | undefined;
  let exitCode: number | undefined;
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  onEvents(child.status, (e) => {
    if (e.type === 'error') failure = e;
    if (e.type === 'exit') exitCode = e.code;
    if (e.type === 'ready') onReady();
  });
  child.control.on('error', () => {});
  child.stderr.resume(); // it says nothing there, but what is sent must be read
  const done = child.closed.then(() => consumed(child.status)).then(() => {
    if (exitCode !== 0 || failure) throw options.fail(failure);
  });
  done.catch(() => {});
  const reported = done.then(() => undefined, () => (failure ? options.fail(failure) : undefined));
  return {
    stdout: child.stdout, stdin: child.stdin, ready, done, reported,
    go: () => { child.control.write(Buffer.from([1])); },
    // It ends on its own, its status read to the end: stdin at its end (a write stops), stdout gone (a read
    // stops at EPIPE), the control channel half-closed (a hold gives up).
    kill: () => {
      child.stdin?.destroy();
      child.control.end();
      child.release();
    },
  };
}
