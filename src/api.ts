// The test-facing functions of the package's main entry, loaded on first use. The main entry
// is also the Vitest environment, which a fresh worker process imports for every test file:
// the runtime behind these (~200 KB of code to compile) is only loaded by a file that starts
// sandboxes itself. Everything else is in 'vitest-environment-container/runtime'.
import type { Container } from './runtime/container.ts';
import type { ContainerOptions } from './runtime/options.ts';
import type { Network } from './net/network.ts';
import type { SeedImageOptions, SeededImage } from './seed/seed-image.ts';
import type { SeedProject } from './seed/provide.ts';

const runtime = () => import('./runtime/index.ts');

/** Starts a sandbox. Resolves once its main process is running; dispose it with `await using` or stop(). */
export async function startContainer(options: ContainerOptions = {}): Promise<Container> {
  return (await runtime()).startContainer(options);
}

/** Runs fn with a fresh sandbox and tears it down afterwards, even when fn throws. */
export async function withContainer<T>(options: ContainerOptions, fn: (container: Container) => Promise<T> | T): Promise<T> {
  return (await runtime()).withContainer(options, fn);
}

/** A private network: sandboxes started with `network` set to it reach each other by `alias`. */
export async function createNetwork(name?: string): Promise<Network> {
  return (await runtime()).createNetwork(name);
}

/** See seed/seed-image.ts. */
export async function seedImage(options: SeedImageOptions): Promise<SeededImage> {
  return (await runtime()).seedImage(options);
}

/** See seed/provide.ts. */
export async function provideSeededImage(project: SeedProject | undefined, name: string, options: SeedImageOptions): Promise<string> {
  return (await runtime()).provideSeededImage(project, name, options);
}
