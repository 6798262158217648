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

const notInEnvironment = () => new ContainerError('NOT_IN_CONTAINER_ENVIRONMENT', 'this test file is not running in the container environment',
  { fix: "set environment: 'container' in vitest.config (or testEnvironment: 'vitest-environment-container/jest'), or add // @vitest-environment container to the file" });

export type FileContainer = Container & { ready(): Promise<Container> };

/** A stand-in for the container of whatever handle `lookup` finds: every property is the live Container's. */
export function containerProxy(lookup: () => FileSandboxHandle | undefined): FileContainer {
  return new Proxy({} as FileContainer, {
    get(_target, prop) {
      const handle = lookup();
      if (prop === 'ready') return () => (handle ? handle.ready : Promise.reject(notInEnvironment()));
      if (prop === 'then' || typeof prop === 'symbol') return undefined; // not a thenable; no hidden protocols
      if (!handle) throw notInEnvironment();
      const c = handle.container;
      if (!c) throw new ContainerError('CONTAINER_NOT_READY', "the test file's container is still starting", { fix: 'await container.ready() first' });
      const value = Reflect.get(c, prop, c);
      return typeof value === 'function' ? value.bind(c) : value;
    },
  });
}

/**
 * The current test file's container (Vitest). Every property is the live Container's;
 * tests and hooks only run once it is started.
 */
export const container: FileContainer = containerProxy(currentHandle);
