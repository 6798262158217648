// The setup file for isolate: false. Vitest re-runs setup files for every test file, but a
// setup file inside node_modules (file-setup.ts, once installed) is imported natively, once
// per worker: with isolate: false, every file after the first would then share the first
// one's sandbox. So there the setup file is a copy outside node_modules, which Vite
// transforms and Vitest re-evaluates per file (which costs a transform: with one file per
// worker the packaged one is used). It lives in the image cache directory, which the pool's
// workers share with the main process (Vite reads it there).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// The layout module itself, not the image package's index: that would load the image code.
import { defaultCacheDir } from '../image/cache-layout.ts';

// file-setup.ts, compiled.
const STUB = `// Written by vitest-environment-container: Vitest runs this before each test file.
await globalThis[Symbol.for('vitest-environment-container')]?.fileSetup?.();
`;

/** The setup file's path, written if missing. */
export function setupStub(): string {
  const dir = join(defaultCacheDir(), 'setup');
  const stub = join(dir, 'file-setup-1.mjs'); // the number changes with STUB
  if (existsSync(stub) && readFileSync(stub, 'utf8') === STUB) return stub;
  mkdirSync(dir, { recursive: true });
  const tmp = `${stub}.${process.pid}.tmp`;
  writeFileSync(tmp, STUB);
  renameSync(tmp, stub); // atomic: workers starting together never read half a stub
  return stub;
}
