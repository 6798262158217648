// Vitest's config checks `environmentOptions.container` (a typo in an option's name, a wrong
// type) once this module's types are loaded: any import from this package in vitest.config.ts,
// or `/// <reference types="vitest-environment-container" />`. Type-only.
// Loaded as well as augmented: with the augmentation alone, TypeScript (7.0) did not apply it to
// Vitest 4.1's config types (Vitest 5's it did).
/// <reference types="vitest/node" preserve="true" />
import type { ContainerEnvironmentOptions } from './options.ts';

declare module 'vitest/node' {
  interface EnvironmentOptions {
    /** `environment: 'container'`: the sandbox every test file gets (a file's docblock options are merged over these). */
    container?: ContainerEnvironmentOptions;
  }
}

export type { ContainerEnvironmentOptions };
