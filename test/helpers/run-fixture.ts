// Runs a fixture project through Vitest's or Jest's CLI, as a user would, and
// returns what it printed. Each run gets its own cgroup parent so a test can check that
// nothing was left behind in it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { hostInfo } from '../../src/runtime/host.ts';
import { cgroupParentNamed, sharedSpawners } from './host.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let runs = 0;
const runCgroupParent = (n: number) => cgroupParentNamed(`vitest-container-e2e-${process.pid}-${n}`);
const nextCgroupParent = () => runCgroupParent(++runs);

/** The cgroup parent the next run of this file gets (to watch it while the run goes on). */
export function nextRunCgroupParent(): string {
  return runCgroupParent(runs + 1);
}

/** pid: the runner's main process (the test run's owner). */
export interface RunResult { code: number | null; output: string; cgroupParent: string; pid: number }

/** `fixture`: a directory under test/fixtures, or an absolute path (e.g. an example project). */
function fixtureDir(fixture: string): string {
  return isAbsolute(fixture) ? fixture : join(repo, 'test', 'fixtures', fixture);
}

export function runVitest(fixture: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(fixture, [join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', fixtureDir(fixture), ...args], env);
}

/**
 * What Jest needs in its environment to require() this package from a CommonJS test: nothing
 * once the package has a CommonJS build (an exports "require" condition); until then Jest's
 * require of an ES module, which works only with Node's vm modules.
 */
export function jestRequireEnv(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { exports: Record<string, Record<string, unknown>> };
  return pkg.exports['.']?.require ? {} : { NODE_OPTIONS: '--experimental-vm-modules' };
}

export function runJest(fixture: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(fixture, [join(repo, 'node_modules', 'jest', 'bin', 'jest.js'), ...args], env);
}

// Every run's cgroup parent goes, even when a test fails or times out before it checks it.
const parents: string[] = [];
afterAll(() => {
  for (const parent of parents) removeCgroups(parent);
});

/** `node <argv>` in the fixture's directory with a cgroup parent of its own (e.g. the Vitest of an installed project). */
export function run(fixture: string, argv: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const cgroupParent = nextCgroupParent();
  parents.push(cgroupParent);
  const child = spawn(process.execPath, argv, {
    cwd: fixtureDir(fixture),
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', VTC_CGROUP_PARENT: cgroupParent, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output, cgroupParent, pid: child.pid! })));
}

export interface WatchRun {
  child: ChildProcess;
  cgroupParent: string;
  /** Everything Vitest printed so far. */
  output(): string;
  /** Resolves once `test(output)` holds; rejects after `timeoutMs` or when Vitest exits first. */
  waitFor(test: (output: string) => boolean, timeoutMs: number): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code once the process is gone. */
  stop(graceMs?: number): Promise<number | null>;
}

/** `vitest watch --root <dir>` as a user would start it, with run-fixture's env conventions (own cgroup parent). */
export function startVitestWatch(dir: string, args: string[] = [], env: Record<string, string> = {}): WatchRun {
  const cgroupParent = nextCgroupParent();
  parents.push(cgroupParent);
  const child = spawn(process.execPath, [join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'watch', '--root', dir, ...args], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', VTC_CGROUP_PARENT: cgroupParent, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => { exited = code; resolve(code); }));
  child.stdout!.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { output += c.toString(); });
  return {
    child,
    cgroupParent,
    output: () => output,
    waitFor: (test, timeoutMs) => new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const poll = setInterval(() => {
        if (test(output)) { clearInterval(poll); resolve(); }
        else if (exited !== undefined) { clearInterval(poll); reject(new Error(`vitest exited (${exited}) before the expected output:\n${output.slice(-4000)}`)); }
        else if (Date.now() > deadline) { clearInterval(poll); reject(new Error(`timed out after ${timeoutMs} ms waiting for vitest:\n${output.slice(-4000)}`)); }
      }, 50);
    }),
    stop: async (graceMs = 5_000) => {
      if (exited !== undefined) return exited;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try { return await exit; } finally { clearTimeout(killer); }
    },
  };
}

const cgroupRoots = (): string[] => {
  const roots = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'].map((c) => `/sys/fs/cgroup/${c}`).filter(existsSync);
  return roots.length ? roots : ['/sys/fs/cgroup'];
};

/**
 * Sandbox cgroups still under the run's parent (in every hierarchy). Whatever the answer, it then
 * removes them (killing what is in them) and the parent, so a failing run leaves nothing either.
 * A parent that is not there at all is reported too: the run's sandboxes all have limits, and a
 * parent the user names is left in place after its last sandbox, so its absence means the run's
 * cgroupParent never took effect (and "nothing left in it" would prove nothing).
 */
export function leftoverCgroups(parent: string): string[] {
  // (cgroup v1: a sandbox not pinned to CPUs has no cpuset cgroup, so no parent there either)
  const missing = cgroupRoots().filter((root) => !root.endsWith('/cpuset')).map((root) => join(root, parent)).filter((dir) => !existsSync(dir));
  // The run's sandbox service ends a moment after the run does, and with it the spare it started
  // ahead (src/service/spares.ts): like the spawner (leftoverSpawners), it gets 3 s to go.
  for (let waited = 0; sandboxCgroupsUnder(parent).length && waited < 3000; waited += 20) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  const left = [...missing.map((dir) => `${dir}: never created (the run's cgroupParent did not take effect)`), ...sandboxCgroupsUnder(parent)];
  removeCgroups(parent);
  return left;
}

/** Sandbox cgroups under parent right now, in every hierarchy (nothing is removed). */
export function sandboxCgroupsUnder(parent: string): string[] {
  return cgroupRoots().map((root) => join(root, parent)).filter(existsSync)
    .flatMap((dir) => readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name)));
}

function removeCgroups(parent: string): void {
  for (const dir of [...sandboxCgroupsUnder(parent), ...cgroupRoots().map((root) => join(root, parent))]) removeCgroupDir(dir);
}

function removeCgroupDir(dir: string): void {
  if (!existsSync(dir)) return;
  for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 100; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); // its last processes are exiting
    }
  }
}

/**
 * What a finished run's shared spawner and sandbox service left: the spawner's process (still
 * running with `--owner <pid>`), or their sockets and lock in the run root (named for the owner:
 * c<pid>-…). They end when the run's main process does (the service once the spawner has): on a
 * busy machine that can take a moment after the run's exit, so they get 3 s to be gone.
 */
export function leftoverSpawners(ownerPid: number, runRoot = hostInfo().runRoot): string[] {
  for (let waited = 0; ; waited += 20) {
    const left = sharedSpawners(ownerPid).map((pid) => `process ${pid}: spawner --owner ${ownerPid}`);
    if (existsSync(runRoot)) left.push(...readdirSync(runRoot).filter((f) => f.startsWith(`c${ownerPid}-`)).map((f) => join(runRoot, f)));
    if (!left.length || waited >= 3000) return left;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}
