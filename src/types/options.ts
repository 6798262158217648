// The types users write options with in runner configs: Vitest's environmentOptions.container,
// a file's docblock options, Jest's testEnvironmentOptions. Type-only: nothing here runs.
import type { ContainerOptions } from '../runtime/options.ts';

/**
 * Options as a runner's config or a file's docblock give them: JSON data, since they travel to
 * the test worker, so a network is named rather than passed as an object. The same options as
 * startContainer() otherwise; unknown keys and impossible values are refused at run time too.
 */
export type ContainerEnvironmentOptions = Omit<ContainerOptions, 'network'> & {
  /** A network shared with other sandboxes of this file, by name (created on first use). */
  network?: string;
};

/** Jest's `testEnvironmentOptions` for `testEnvironment: 'vitest-environment-container/jest'`: the container's options, and jest-environment-node's own. */
export type JestEnvironmentOptions = ContainerEnvironmentOptions & {
  /** jest-environment-node: the conditions `exports` maps are resolved with (default ['node', 'node-addons']). */
  customExportConditions?: string[];
  /** jest-environment-node: what happens to globals a test file leaves behind. */
  globalsCleanup?: 'on' | 'soft' | 'off';
};
