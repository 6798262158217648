// node rootfs/build.ts [--out DIR] [--cache DIR] [--force] [--quiet] <recipe|path.ts>...
// Builds each recipe into <out>/<name> (default <repo>/.cache/images), reusing the
// existing layout when its packages and recipe are unchanged.
import { parseArgs } from 'node:util';
import { buildImage } from './lib/build-image.ts';
import { DEFAULT_CACHE_DIR, DEFAULT_OUT_DIR, loadRecipe } from './lib/load-recipe.ts';
import { RootfsError, setQuiet } from './lib/log.ts';

const USAGE = 'usage: node rootfs/build.ts [--out DIR] [--cache DIR] [--force] [--quiet] <busybox|redis|postgres|example|path/to/recipe.ts>...';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      cache: { type: 'string' },
      force: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  setQuiet(values.quiet ?? false);
  for (const name of positionals) {
    await buildImage(await loadRecipe(name), {
      outDir: values.out ?? DEFAULT_OUT_DIR,
      cacheDir: values.cache ?? DEFAULT_CACHE_DIR,
      force: values.force,
    });
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof RootfsError ? `error: ${err.message}` : err);
    process.exit(1);
  },
);
