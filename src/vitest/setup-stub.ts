// The setup file the environment adds to Vitest's setupFiles. Vitest re-runs setup files
// for every test file, but a setup file inside node_modules is imported natively, once per
// worker: with isolate: false, every file after the first would then share the first one's
// sandbox. So the setup file is a two-line stub outside node_modules (which Vite transforms,
// and Vitest re-evaluates per file) that calls into this package. It lives in the image
// cache directory, which the pool's workers share with the main process (Vite reads it
// there), and is named after what it imports, so every copy of the package has its own.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The image cache directory (as src/image/cache-layout.ts has it; not imported: it loads the image code). */
function cacheDir(): string {
  if (process.env.VITEST_CONTAINER_CACHE) return process.env.VITEST_CONTAINER_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vitest-environment-container');
}

/** FNV-1a, 32 bits: a short stable name (node:crypto costs a test worker ~5 ms to load). */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** The stub that calls fileSetup() of `module` (a path), written if missing. */
export function setupStub(module: string): string {
  const url = pathToFileURL(module).href;
  const text = `// Written by vitest-environment-container: Vitest runs this before each test file.\nimport { fileSetup } from ${JSON.stringify(url)};\nawait fileSetup();\n`;
  const dir = join(cacheDir(), 'setup');
  const stub = join(dir, `${hash(url)}.mjs`);
  if (existsSync(stub) && readFileSync(stub, 'utf8') === text) return stub;
  mkdirSync(dir, { recursive: true });
  const tmp = `${stub}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, stub); // atomic: workers starting together never read half a stub
  return stub;
}
