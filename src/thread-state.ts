// State that must exist once per thread of this process, however many copies of this
// package are loaded: its ESM and its CommonJS build side by side, and a fresh copy in every
// module realm a test runner makes (Jest evaluates node_modules again in each test file's
// vm context, with a globalThis and a `process` of its own; Vitest's vm pools do the same).
// A counter per copy gave two sandboxes one id (EEXIST on the bundle directory when a Jest
// test started one), and a registry per copy hid a test's sandboxes from the environment
// that stops them at file end.
//
// globalThis differs per realm, so the state hangs off an object every realm gets by
// reference: a Node built-in module (test runners hand test code the real ones; Jest's
// only stand-ins are `process` and `module`). node:worker_threads, because its object is
// one per thread, as this state must be: a worker thread has sandboxes of its own.
//
// Keys are part of a contract between versions of this package loaded in one process: a
// value's shape only ever changes under a new name.
import workerThreads from 'node:worker_threads';

const anchor = workerThreads as unknown as Record<symbol, unknown>;

/** The value named `name` for this thread, made by `create` the first time any copy asks. */
const keyOf = (name: string): symbol => Symbol.for(`vitest-environment-container.${name}`);

export function threadState<T>(name: string, create: () => T): T {
  return (anchor[keyOf(name)] ??= create()) as T;
}

/** The next number of the sequence `name`: unique within this thread, whichever copy asks. */
export function nextInSequence(name: string): number {
  const counters = threadState('sequences', () => new Map<string, number>());
  const next = (counters.get(name) ?? 0) + 1;
  counters.set(name, next);
  return next;
}

/** The value named `name` for this thread if some copy made it already, without making it. */
export function peekThreadState<T>(name: string): T | undefined {
  return anchor[keyOf(name)] as T | undefined;
}
