// The types of `vitest-environment-container/jest`: the environment, the options Jest's config
// gives it, and the global `container` its tests get. Listing the entry in a tsconfig's
// "types" (or `/// <reference types="vitest-environment-container/jest" />`) declares the global.
import type { FileContainer } from '../current.ts';

export { default } from '../jest/environment.ts';
export type { JestEnvironmentOptions } from './options.ts';

declare global {
  /** The test file's own sandbox (testEnvironment: 'vitest-environment-container/jest'). */
  var container: FileContainer;
}
