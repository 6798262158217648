// Vitest (4.1 and 5.x) gives an environment's setup() only the file's options: a
// `@vitest-environment-options` docblock replaces the config's instead of
// merging, and setup() cannot see the config or the test file. Vitest hands
// the worker its state (config + files) right after setup(), through
// Object.defineProperty(globalThis, '__vitest_worker__', ...). Watching that one
// call gives us the config's options (to merge) and lets us add a setup file
// that runs before each test file. Vitest's worker is internal API: this is
// checked against each supported Vitest (see version.ts) and tested on 4.1 and 5.x.

export interface VitestWorkerState {
  filepath?: string;
  config: { environmentOptions?: Record<string, unknown>; setupFiles: string[]; isolate?: boolean; root: string };
  ctx?: { files?: { filepath: string }[] };
}

const WORKER_STATE = '__vitest_worker__';

/** Calls fn with the worker state the moment Vitest provides it (once). Returns a function that stops watching. */
export function onWorkerState(fn: (state: VitestWorkerState) => void): () => void {
  const original = Object.defineProperty;
  const restore = () => {
    if (Object.defineProperty === patched) Object.defineProperty = original;
  };
  function patched<T>(target: T, key: PropertyKey, desc: PropertyDescriptor & ThisType<unknown>): T {
    const result = original(target, key, desc);
    if (target === globalThis && key === WORKER_STATE && desc.value) {
      restore();
      fn(desc.value as VitestWorkerState);
    }
    return result;
  }
  Object.defineProperty = patched as typeof Object.defineProperty;
  return restore;
}

export function currentWorkerState(): VitestWorkerState | undefined {
  return (globalThis as Record<string, unknown>)[WORKER_STATE] as VitestWorkerState | undefined;
}
