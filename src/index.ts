// vitest-environment-container: the default export is the Vitest environment
// (`environment: 'container'`); the named exports are the API for test code. A fresh test
// worker imports this module for every test file, so it loads only the environment and what
// is small; the runtime comes with the first call that needs it (api.ts). Everything of the
// runtime, classes included, is in 'vitest-environment-container/runtime'.
export { default } from './vitest/environment.ts';
export { container } from './current.ts';
export { createNetwork, provideSeededImage, seedImage, startContainer, withContainer } from './api.ts';
export { seededImage, seededImages, type SeedProject } from './seed/provide.ts';
export * from './errors.ts';
export type { Container, ContainerStats, ExecOptions, ExecProcess, ExecResult, ExitInfo } from './runtime/container.ts';
export type { Network } from './net/network.ts';
export type { ContainerOptions, DirectoryCopyOption, FileCopyOption, MountOption } from './runtime/options.ts';
export type { CommitOptions } from './runtime/commit.ts';
export type { CopySource, CopyToOptions } from './runtime/copy.ts';
export type { SeedImageOptions, SeededImage } from './seed/seed-image.ts';
export type { RuntimeSpec } from './runtime/spec.ts';
// Loads the augmentation of Vitest's config types (environmentOptions.container) with the package's.
export type { ContainerEnvironmentOptions } from './types/vitest.ts';
