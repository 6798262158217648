// Handing a seeded image from globalSetup to the test files. The reference goes into the
// environment of the process (VITEST_CONTAINER_SEEDED_<name>), which the test workers both
// runners start afterwards inherit, and, for Vitest, also through provide()/inject(). In a
// test file or a config, `image: 'seeded:<name>'` (or seededImage('<name>')) names it.
import { InvalidOptionsError } from '../errors.ts';
// seed-image.ts (which starts sandboxes) is loaded when used: a test worker reads only seededImage() here.
import type { SeedImageOptions } from './seed-image.ts';

/** The part of Vitest's TestProject (a globalSetup's argument) this needs. */
export interface SeedProject {
  provide(key: never, value: never): void;
  onTestsRerun?(cb: () => Promise<void> | void): void;
}

const PREFIX = 'VITEST_CONTAINER_SEEDED_';
const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function envName(name: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidOptionsError('INVALID_SEED_OPTIONS', `seeded image name ${JSON.stringify(name)} must be a letter followed by letters, digits or _ (it names an inject() key and an environment variable)`);
  }
  return `${PREFIX}${name}`;
}

/**
 * In a globalSetup: the seeded image for `options` (made, or reused while its inputs are unchanged),
 * handed to the test files as `name`. Vitest: pass the globalSetup's project, and it is also
 * provided (inject(name)), and in watch mode seeded again before a rerun when an input changed.
 * Jest: `module.exports = () => provideSeededImage(undefined, 'postgres', { ... })`.
 * Resolves to the image's reference.
 */
export async function provideSeededImage(project: SeedProject | undefined, name: string, options: SeedImageOptions): Promise<string> {
  const variable = envName(name);
  const { seedImage } = await import('./seed-image.ts');
  let current = (await seedImage({ name, ...options })).reference;
  const hand = (reference: string) => {
    process.env[variable] = reference;
    (project?.provide as ((key: string, value: unknown) => void) | undefined)?.call(project, name, reference);
  };
  hand(current);
  // Watch mode: the key is computed again (the inputs read again) before each rerun; unchanged, nothing runs.
  project?.onTestsRerun?.(async () => {
    const next = (await seedImage({ name, ...options })).reference;
    if (next !== current) {
      current = next;
      hand(next);
    }
  });
  return current;
}

/** Hands this process the seeded image `name` (the run's sandbox service: as its test workers know it). */
export function handSeededImage(name: string, reference: string): void {
  process.env[envName(name)] = reference;
}

/** Every seeded image handed to this process, by the name given to provideSeededImage. */
export function seededImages(): Record<string, string> {
  const images: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith(PREFIX) && value) images[key.slice(PREFIX.length)] = value;
  }
  return images;
}

/** The reference of the seeded image handed over as `name` (`image: 'seeded:<name>'` means the same). */
export function seededImage(name: string): string {
  const reference = process.env[envName(name)] ?? providedByVitest(name);
  if (!reference) {
    throw new InvalidOptionsError('SEEDED_IMAGE_NOT_PROVIDED', `no seeded image "${name}" was handed to this process`, {
      fix: `call provideSeededImage(project, '${name}', { image, seed, inputs }) in a globalSetup (Vitest: globalSetup, Jest: globalSetup) of this run`,
    });
  }
  return reference;
}

/** Vitest's provided values in a test worker (inject()), when the environment variable did not reach it. */
function providedByVitest(name: string): string | undefined {
  const state = (globalThis as Record<string, unknown>).__vitest_worker__ as { providedContext?: Record<string, unknown> } | undefined;
  const value = state?.providedContext?.[name];
  return typeof value === 'string' ? value : undefined;
}
