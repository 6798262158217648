// For code that needs an image (examples, the demo, tests): build it if missing or
// stale, else reuse it, and get its layout path.
//
//   import { ensureImage } from '../rootfs/index.ts';
//   const { layout } = await ensureImage('redis');   // <repo>/.cache/images/redis
import { buildImage, type BuildOptions, type BuildResult } from './lib/build-image.ts';
import { DEFAULT_CACHE_DIR, DEFAULT_OUT_DIR, loadRecipe } from './lib/load-recipe.ts';

export type { BuildOptions, BuildResult } from './lib/build-image.ts';
export type { Recipe, LayerSpec, ImageConfig } from './lib/recipe.ts';
export { defineRecipe } from './lib/recipe.ts';
export { AptUnreachableError } from './lib/apt.ts';
export { RootfsError, setQuiet } from './lib/log.ts';
export { DEFAULT_CACHE_DIR, DEFAULT_OUT_DIR } from './lib/load-recipe.ts';

/** `recipe`: a name from rootfs/recipes/ or the path of a recipe file. */
export async function ensureImage(recipe: string, opts: Partial<BuildOptions> = {}): Promise<BuildResult> {
  return buildImage(await loadRecipe(recipe), { outDir: DEFAULT_OUT_DIR, cacheDir: DEFAULT_CACHE_DIR, ...opts });
}
