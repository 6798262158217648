// Runs a fixture project through Vitest's or Jest's CLI, as a user would, and
// returns what it printed. Each run gets its own cgroup parent so a test can check that
// nothing was left behind in it.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let runs = 0;

export interface RunResult { code: number | null; output: string; cgroupParent: string }

/** `fixture`: a directory under test/fixtures, or an absolute path (e.g. an example project). */
function fixtureDir(fixture: string): string {
  return isAbsolute(fixture) ? fixture : join(repo, 'test', 'fixtures', fixture);
}

export function runVitest(fixture: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(fixture, [join(repo, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', fixtureDir(fixture), ...args], env);
}

export function runJest(fixture: string, args: string[] = [], env: Record<string, string> = {}): Promise<RunResult> {
  return run(fixture, [join(repo, 'node_modules', 'jest', 'bin', 'jest.js'), ...args], env);
}

function run(fixture: string, argv: string[], env: Record<string, string>): Promise<RunResult> {
  const cgroupParent = `/vitest-container-e2e-${process.pid}-${++runs}`;
  const child = spawn(process.execPath, argv, {
    cwd: fixtureDir(fixture),
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', VTC_CGROUP_PARENT: cgroupParent, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, output, cgroupParent })));
}

/** Sandbox cgroups still under the run's parent (in every hierarchy); removes the empty parent afterwards. */
export function leftoverCgroups(parent: string): string[] {
  const roots = ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset'].map((c) => `/sys/fs/cgroup/${c}`).filter(existsSync);
  if (!roots.length) roots.push('/sys/fs/cgroup');
  const left: string[] = [];
  for (const root of roots) {
    const dir = join(root, parent);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) left.push(join(dir, entry.name));
    if (!left.length) {
      try {
        rmdirSync(dir);
      } catch {
        // a v2 parent with its own files is removed once empty; nothing else to do
      }
    }
  }
  return left;
}
