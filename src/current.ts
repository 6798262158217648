// The test file's own sandbox, as test code reaches it: `import { container }`.
// It lives on globalThis under a Symbol.for key, so it crosses the module
// realms Vitest and Jest put between an environment and the tests.
import type { Container } from './runtime/container.ts';
import { ContainerError } from './errors.ts';

export const FILE_SANDBOX = Symbol.for('vitest-environment-container');

export interface FileSandboxHandle {
  /** The file's container once started. */
  container: Container | undefined;
  /** Resolves when the file's container is started and ready. */
  ready: Promise<Container>;
}

export function currentHandle(): FileSandboxHandle | undefined {
  return (globalThis as Record<symbol, FileSandboxHandle | undefined>)[FILE_SANDBOX];
}

/** The current test file's container; throws a clear error outside the container environment. */
export function currentContainer(): Container {
  const handle = currentHandle();
  if (!handle) {
    throw new ContainerError('NOT_IN_CONTAINER_ENVIRONMENT', 'this test file is not running in the container environment',
      { fix: "set environment: 'container' in vitest.config (or testEnvironment: 'vitest-environment-container/jest'), or add // @vitest-environment container to the file" });
  }
  if (!handle.container) {
    throw new ContainerError('CONTAINER_NOT_READY', 'the test file\'s container is still starting', { fix: 'await container.ready() (or use it inside a test or hook)' });
  }
  return handle.container;
}

/**
 * The test file's container. Every property is the live Container's; `await container.ready()`
 * waits until it is started (tests and hooks only run after that anyway).
 */
export const container: Container & { ready(): Promise<Container> } = new Proxy({} as Container & { ready(): Promise<Container> }, {
  get(_target, prop) {
    if (prop === 'ready') {
      return () => {
        const handle = currentHandle();
        return handle ? handle.ready : Promise.reject(new ContainerError('NOT_IN_CONTAINER_ENVIRONMENT', 'this test file is not running in the container environment'));
      };
    }
    if (prop === 'then') return undefined; // not a thenable
    const c = currentContainer();
    const value = Reflect.get(c, prop, c);
    return typeof value === 'function' ? value.bind(c) : value;
  },
});
