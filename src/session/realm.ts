// Jest runs test code in a vm context of its own, with its own module registry: a test
// that imports this package gets a second copy of it, whose process-wide registries
// (sandbox ids, live sandboxes, spawners, networks) would start empty. Two copies then
// pick the same sandbox ids (EEXIST on the run directory), and sandboxes a test started
// would not be stopped with its file. Every copy keeps those registries on its realm's
// globalThis under Symbol.for keys, so handing the environment's own to the test's
// global makes every copy use the same ones.
const PREFIX = 'vitest-environment-container.';

export function shareRegistries(target: object): void {
  const source = globalThis as Record<symbol, unknown>;
  for (const key of Object.getOwnPropertySymbols(source)) {
    if (key.description?.startsWith(PREFIX) && Symbol.for(key.description) === key) {
      Object.defineProperty(target, key, { value: source[key], configurable: true, enumerable: false, writable: true });
    }
  }
}
