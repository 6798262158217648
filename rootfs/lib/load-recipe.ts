// Finding a recipe by name (rootfs/recipes/<name>.ts) or by path (a user's own
// file), and reading the files it names with `source` so the recipe is plain data.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RootfsError } from './log.ts';
import type { Recipe } from './recipe.ts';

export const ROOTFS_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const REPO_DIR = dirname(ROOTFS_DIR);
export const RECIPES_DIR = join(ROOTFS_DIR, 'recipes');
export const DEFAULT_OUT_DIR = join(REPO_DIR, '.cache', 'images');
export const DEFAULT_CACHE_DIR = join(REPO_DIR, '.cache', 'rootfs');

async function isFile(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isFile(), () => false);
}

export async function recipeFile(nameOrPath: string): Promise<string> {
  const byName = join(RECIPES_DIR, `${nameOrPath}.ts`);
  if (/^[\w-]+$/.test(nameOrPath) && (await isFile(byName))) return byName;
  if (await isFile(resolve(nameOrPath))) return resolve(nameOrPath);
  throw new RootfsError('RECIPE_NOT_FOUND', `no recipe ${JSON.stringify(nameOrPath)}`, {
    fix: `name one of rootfs/recipes/*.ts (busybox, redis, postgres, example) or give the path of a recipe file`,
  });
}

export async function loadRecipe(nameOrPath: string): Promise<Recipe> {
  const file = await recipeFile(nameOrPath);
  const mod = (await import(pathToFileURL(file).href)) as { default?: Recipe };
  const recipe = mod.default;
  if (!recipe?.name || !Array.isArray(recipe.layers) || recipe.layers.length === 0) {
    throw new RootfsError('RECIPE_INVALID', `${file} must export default defineRecipe({ name, layers: [...], config })`);
  }
  const layers = await Promise.all(
    recipe.layers.map(async (layer) => ({
      ...layer,
      files: await Promise.all(
        (layer.files ?? []).map(async ({ source, ...f }) => (source === undefined ? f : { ...f, content: await readFile(resolve(dirname(file), source), 'utf8') })),
      ),
    })),
  );
  return { ...recipe, layers };
}
