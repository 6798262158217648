// Runs the CLI as a subprocess, as root or as an unprivileged user, the way a
// user would run `npx vitest-environment-container ...`.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { sandboxCgroups } from '../helpers/host.ts';
import { unprivilegedUser as rootlessUser } from '../helpers/unprivileged.ts';

export { rootlessUserReady } from '../helpers/unprivileged.ts';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODE = process.execPath;

export interface CliResult { status: number | null; stdout: string; stderr: string; pid?: number }

function result(r: SpawnSyncReturns<string>): CliResult {
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

/** The CLI from source (Node 24 strips the types), as the current user. */
export function cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): CliResult {
  return result(spawnSync(NODE, [join(repo, 'src/cli/main.ts'), ...args], {
    input: opts.input ?? '', encoding: 'utf8', timeout: 60_000, env: { ...process.env, NO_COLOR: '1', ...opts.env },
  }));
}

export interface UnprivilegedUser { uid: number; gid: number; name: string; home: string; root: string }

const homes: string[] = [];
afterAll(() => {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

function readableBy(uid: number, gid: number, path: string): boolean {
  return spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', 'test', '-r', path]).status === 0;
}

/** The rootless tests' user (see test/helpers/unprivileged.ts), with a scratch home and a checkout it can read (copied when the repo is private). */
export function unprivilegedUser(): UnprivilegedUser {
  const { uid, gid, name } = rootlessUser();
  const home = mkdtempSync(join(tmpdir(), 'vtc-cli-'));
  homes.push(home);
  chmodSync(home, 0o777);
  let root = repo;
  if (!readableBy(uid, gid, join(repo, 'package.json'))) {
    root = join(home, 'repo');
    for (const part of ['package.json', 'src', 'native', 'node_modules']) {
      if (existsSync(join(repo, part))) cpSync(join(repo, part), join(root, part), { recursive: true, verbatimSymlinks: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', home]);
  }
  return { uid, gid, name, home, root };
}

/** The command line that runs the CLI as that user, with a clean environment. */
export function asUser(user: UnprivilegedUser, args: string[]): string[] {
  return ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--',
    'env', '-i', `HOME=${user.home}`, `USER=${user.name}`, `TMPDIR=${tmpdir()}`, 'NO_COLOR=1', `PATH=${dirname(NODE)}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    NODE, join(user.root, 'src/cli/main.ts'), ...args];
}

export function cliAsUser(user: UnprivilegedUser, args: string[]): CliResult {
  const [cmd, ...rest] = asUser(user, args);
  return result(spawnSync(cmd!, rest, { encoding: 'utf8', timeout: 60_000, input: '' }));
}

/**
 * Runs argv in a new user namespace (identity-mapped, so everyone is who they
 * were) whose user.max_user_namespaces is 0: nothing in it can create a user
 * namespace. The limit is the namespace's own copy; the host's stays as it is.
 */
export async function withUserNamespacesDisabled(argv: string[]): Promise<CliResult> {
  // The first shell waits until its maps are written; the exec after that gives it
  // root's capabilities in the namespace, which writing the limit needs.
  const child = spawn('unshare', ['--user', '--', 'sh', '-c', 'read go && exec "$@"', 'sh',
    'sh', '-c', 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', 'sh', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
  child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const own = readlinkSync('/proc/self/ns/user');
  for (let i = 0; i < 500; i++) {
    try {
      if (readlinkSync(`/proc/${child.pid}/ns/user`) !== own) break;
    } catch {
      break; // it is gone already: the output says why
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  try {
    writeFileSync(`/proc/${child.pid}/uid_map`, '0 0 4294967295');
    writeFileSync(`/proc/${child.pid}/gid_map`, '0 0 4294967295');
  } finally {
    child.stdin.end('go\n');
  }
  return { status: await closed, stdout, stderr };
}

/** What a CLI process (by pid) left running: sandbox ids start with c<pid>- (src/runtime/reaper.ts). */
export function leftoversOf(pid: number): { runtimes: number[]; cgroups: string[]; bundles: string[] } {
  const id = `c${pid}-`;
  const runtimes = readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
      return cmd.includes('vtc-runtime') && cmd.includes(`/${id}`);
    } catch {
      return false;
    }
  });
  const bundles = existsSync('/run/vitest-container') ? readdirSync('/run/vitest-container').filter((n) => n.startsWith(id)) : [];
  return { runtimes, cgroups: sandboxCgroups().filter((d) => d.split('/').pop()!.startsWith(id)), bundles };
}
