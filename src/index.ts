// vitest-environment-container: the default export is the Vitest environment
// (`environment: 'container'`); the named exports are the API for test code.
export { default } from './vitest/environment.ts';
export { container } from './current.ts';
export * from './runtime/index.ts';
// Loads the augmentation of Vitest's config types (environmentOptions.container) with the package's.
export type { ContainerEnvironmentOptions } from './types/vitest.ts';
