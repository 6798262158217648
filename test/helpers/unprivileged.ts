// Running parts of the suite as an unprivileged user. A checkout under a
// private home (CI clones into one) is out of that user's reach: it then gets
// a copy of what the tests need.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface UnprivilegedUser { uid: number; gid: number; name: string }

/** vtc-rootless (made by .ci/run, with /etc/subuid ranges) when it exists, else nobody. */
export function unprivilegedUser(): UnprivilegedUser {
  const r = spawnSync('id', ['-u', 'vtc-rootless']);
  if (r.status === 0) {
    return { uid: Number(r.stdout.toString()), gid: Number(spawnSync('id', ['-g', 'vtc-rootless']).stdout.toString()), name: 'vtc-rootless' };
  }
  return { uid: 65534, gid: 65534, name: 'nobody' };
}

function readableBy(user: UnprivilegedUser, path: string): boolean {
  return spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', 'test', '-r', path]).status === 0;
}

export interface Workspace { home: string; root: string; remove(): void }

/** A home for the user and a repository root it can read (the checkout itself, or a copy). */
export function workspaceFor(user: UnprivilegedUser): Workspace {
  const home = mkdtempSync(join(tmpdir(), 'vtc-unprivileged-'));
  chmodSync(home, 0o777);
  let root = repo;
  if (!readableBy(user, join(repo, 'package.json'))) {
    root = join(home, 'repo');
    for (const part of ['package.json', 'tsconfig.json', 'vitest.config.ts', 'src', 'dist', 'test', 'native', 'node_modules']) {
      if (existsSync(join(repo, part))) cpSync(join(repo, part), join(root, part), { recursive: true, verbatimSymlinks: true });
    }
    spawnSync('chmod', ['-R', 'a+rX', home]);
  }
  return { home, root, remove: () => rmSync(home, { recursive: true, force: true }) };
}

/** The environment for a command run as the user: nothing of ours but PATH (with this Node first). */
export function userEnv(user: UnprivilegedUser, home: string, extra: Record<string, string> = {}): string[] {
  return ['env', '-i', `HOME=${home}`, `USER=${user.name}`, `PATH=${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
}
