// How a Jest test file's resources reach the reporter: Jest's reporter runs in the main
// process, the environment in a worker, and a test result carries nothing of the
// environment's. The reporter makes a directory and names it in the environment, which the
// workers Jest starts afterwards inherit; each file's environment leaves a JSON file there.
import { createHash } from '../lazy-crypto.ts';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileResources } from '../session/file-sandbox.ts';

export const RESOURCES_DIR_ENV = 'VITEST_CONTAINER_RESOURCES_DIR';

/** In a test worker: leaves a file's resources for the reporter, when one asked for them. */
export function leaveForReporter(testPath: string, resources: FileResources): void {
  const dir = process.env[RESOURCES_DIR_ENV];
  if (!dir) return;
  const name = createHash('sha256').update(testPath).digest('hex').slice(0, 32);
  try {
    writeFileSync(join(dir, `${name}.json`), JSON.stringify({ testPath, resources }));
  } catch { /* the reporter's run is over (its directory gone): nothing to report to */ }
}

/** In the reporter: every file's resources left so far, by test path. */
export function collectLeft(dir: string): Map<string, FileResources> {
  const found = new Map<string, FileResources>();
  for (const name of readdirSync(dir)) {
    try {
      const { testPath, resources } = JSON.parse(readFileSync(join(dir, name), 'utf8')) as { testPath: string; resources: FileResources };
      found.set(testPath, resources);
    } catch { /* half-written by a worker that was killed */ }
  }
  return found;
}
