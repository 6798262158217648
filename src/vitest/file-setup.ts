// What runs in each test file's context before the file itself (Vitest calls it through
// the setup file stub, see setup-stub.ts): the file's container is started from the merged
// options first, and checked (OOM, early exit) after the file's last test.
import { afterAll } from 'vitest';
import { FILE_SANDBOX } from '../current.ts';
import type { FileResources } from '../session/file-sandbox.ts';
import type { VitestFileSandbox } from './environment.ts';
import { currentWorkerState } from './worker-state.ts';

declare module 'vitest' {
  interface TaskMeta {
    container?: FileResources;
  }
}

export async function fileSetup(): Promise<void> {
  const sandbox = (globalThis as Record<symbol, VitestFileSandbox | undefined>)[FILE_SANDBOX];
  const file = currentWorkerState()?.filepath;
  if (!sandbox || !file) return;
  await sandbox.start(sandbox.optionsFor(file), file);
  afterAll(async ({}, suite) => {
    const resources = await sandbox.finish(file);
    if (resources) suite.meta.container = resources;
  });
}
