// Resolves one image in a fresh process and prints the result (or the error)
// as JSON: used to race several processes and to run as an unprivileged user.
import { resolveImage } from '../../../src/image/index.ts';

const [ref, cacheDir] = process.argv.slice(2);
try {
  const image = await resolveImage(ref!, { cacheDir, progress: false });
  process.stdout.write(JSON.stringify(image));
} catch (err) {
  const e = err as { code?: string; message?: string };
  process.stdout.write(JSON.stringify({ error: e.code ?? 'UNKNOWN', message: e.message }));
  process.exitCode = 1;
}
