// Added to Vitest's setupFiles by the environment: runs in each test file's
// context before the file itself, so the file's container is started from the
// merged options first, and checked (OOM, early exit) after the file's last test.
import { afterAll } from 'vitest';
import { FILE_SANDBOX } from '../current.ts';
import type { FileSandbox, FileResources } from './file-sandbox.ts';
import { currentWorkerState } from './worker-state.ts';

declare module 'vitest' {
  interface TaskMeta {
    container?: FileResources;
  }
}

interface EnvironmentHandle extends FileSandbox {
  optionsFor(file: string): Parameters<FileSandbox['start']>[0];
}

const sandbox = (globalThis as Record<symbol, EnvironmentHandle | undefined>)[FILE_SANDBOX];
const file = currentWorkerState()?.filepath;
if (sandbox && file) {
  await sandbox.start(sandbox.optionsFor(file), file);
  afterAll(async ({}, suite) => {
    const resources = await sandbox.finish(file);
    if (resources) suite.meta.container = resources;
  });
}
