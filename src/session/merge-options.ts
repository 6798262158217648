// How a test file's own container options combine with the runner's (small: a test worker
// loads it before anything of the runtime).
import type { ContainerOptions } from '../runtime/options.ts';

/**
 * The runner's options for every file with a file's own over them (a Vitest docblock would
 * replace them; Jest merges shallowly). `env` is the one option people extend per file.
 */
export function mergeOptions(config: ContainerOptions, file: ContainerOptions): ContainerOptions {
  const merged = { ...config, ...file };
  if (config.env && file.env) merged.env = { ...config.env, ...file.env };
  return merged;
}
