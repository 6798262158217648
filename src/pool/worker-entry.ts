// The pool's worker process: what runs as the main process of each worker sandbox.
// It is a Vitest worker built on Vitest's public worker API (`vitest/worker`: init,
// runBaseTests, setupEnvironment), which has this shape on 4.1 and 5.x, loaded from the
// very Vitest the main process runs (its dist/, named by the pool). Vitest's own
// dist/workers/forks.js is internal and changes between releases.
//
// It differs from a forks worker in one thing: the sandbox's writes are throwaway, so
// snapshot files are written by the main process (host-writes.ts).
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HOST_WRITE, isHostWriteReply, type HostWrite, type HostWriteReply } from './host-writes.ts';
import { VITEST_DIST_ENV } from '../vitest/version.ts';

type Message = Record<string, unknown>;
type WorkerState = { config: { snapshotEnvironment?: string; snapshotOptions: { snapshotEnvironment?: unknown } } };
interface SnapshotEnvironment {
  prepareDirectory(dirPath: string): Promise<void>;
  saveSnapshotFile(filepath: string, snapshot: string): Promise<void>;
  removeSnapshotFile(filepath: string): Promise<void>;
}
interface VitestWorkerModule {
  init(worker: Record<string, unknown>): void;
  runBaseTests(method: 'run' | 'collect', state: WorkerState, traces: unknown): Promise<void>;
  setupEnvironment(context: unknown): Promise<unknown>;
}

if (!process.send) throw new Error('the container pool worker must be started with a Node IPC channel');
const dist = process.env[VITEST_DIST_ENV];
if (!dist) throw new Error(`the container pool worker needs ${VITEST_DIST_ENV}`);

// Kept before tests can replace them.
const exit = process.exit.bind(process);
const send = process.send.bind(process) as (message: unknown) => boolean;
const on = process.on.bind(process);
const off = process.off.bind(process);

const vitest = await import(pathToFileURL(join(dist, 'worker.js')).href) as VitestWorkerModule;

// A main process that is gone, or its channel closed: nobody to report to.
const channelGone = (error: NodeJS.ErrnoException) => {
  if (error?.code === 'ERR_IPC_CHANNEL_CLOSED' || error?.code === 'EPIPE') exit(1);
};
const disconnected = () => exit(1);
on('error', channelGone);
on('disconnect', disconnected);

// --- snapshot files, written by the main process
let requests = 0;
const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
on('message', (message: unknown) => {
  if (!isHostWriteReply(message)) return;
  const p = pending.get((message as HostWriteReply).id);
  pending.delete((message as HostWriteReply).id);
  if (message.error) p?.reject(new Error(`vitest-environment-container: the pool could not write for the worker: ${message.error}`));
  else p?.resolve();
});
function hostWrite(request: HostWrite): Promise<void> {
  const id = ++requests;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    send({ ...request, [HOST_WRITE]: 'request', id });
  });
}

let snapshots: SnapshotEnvironment | undefined;
async function hostSnapshotEnvironment(): Promise<SnapshotEnvironment> {
  if (snapshots) return snapshots;
  const { VitestSnapshotEnvironment } = await import(pathToFileURL(join(dist!, 'runtime.js')).href) as { VitestSnapshotEnvironment: new () => SnapshotEnvironment };
  // Reads stay in the sandbox (it sees the host's files); writes go to the host.
  const env = new VitestSnapshotEnvironment();
  env.prepareDirectory = (path) => hostWrite({ op: 'mkdir', path });
  env.saveSnapshotFile = (path, content) => hostWrite({ op: 'write', path, content });
  env.removeSnapshotFile = (path) => hostWrite({ op: 'remove', path });
  snapshots = env;
  return env;
}

async function runTests(method: 'run' | 'collect', state: WorkerState, traces: unknown): Promise<void> {
  // A project's own snapshotEnvironment module is left alone.
  if (!state.config.snapshotEnvironment) state.config.snapshotOptions.snapshotEnvironment ??= await hostSnapshotEnvironment();
  try {
    await vitest.runBaseTests(method, state, traces);
  } finally {
    process.exit = exit; // Vitest guards process.exit while tests run; between files it is ours again
  }
}

vitest.init({
  post: (message: unknown) => send(message),
  on: (callback: (message: Message) => void) => on('message', callback),
  off: (callback: (message: Message) => void) => off('message', callback),
  teardown: () => {
    process.removeAllListeners('message');
    off('error', channelGone);
    off('disconnect', disconnected);
    process.exit = exit;
  },
  runTests: (state: WorkerState, traces: unknown) => runTests('run', state, traces),
  collectTests: (state: WorkerState, traces: unknown) => runTests('collect', state, traces),
  setup: vitest.setupEnvironment,
});
