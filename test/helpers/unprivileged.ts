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

/** The user the rootless tests run as: made by test/setup/global.ts (as root) with subordinate id ranges. */
export const ROOTLESS_USER = 'vtc-rootless';
/** Set by test/setup/global.ts to why that user cannot be had (the rootless tests are then skipped). */
export const ROOTLESS_SKIPPED = 'VTC_ROOTLESS_SKIPPED';

/** As root, with the rootless tests' user at hand. */
export const rootlessUserReady = process.getuid!() === 0 && !process.env[ROOTLESS_SKIPPED];

/** vtc-rootless (see ROOTLESS_USER). */
export function unprivilegedUser(): UnprivilegedUser {
  const id = (flag: string) => spawnSync('id', [flag, ROOTLESS_USER], { encoding: 'utf8' });
  const uid = id('-u');
  if (uid.status !== 0) throw new Error(`no user ${ROOTLESS_USER}: test/setup/global.ts makes it when the tests run as root (${process.env[ROOTLESS_SKIPPED] ?? 'it did not run'})`);
  return { uid: Number(uid.stdout), gid: Number(id('-g').stdout), name: ROOTLESS_USER };
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

/** The environment for a command run as the user: nothing of ours but PATH (with this Node first) and the run's TMPDIR. */
export function userEnv(user: UnprivilegedUser, home: string, extra: Record<string, string> = {}): string[] {
  return ['env', '-i', `HOME=${home}`, `USER=${user.name}`, `PATH=${dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    `TMPDIR=${tmpdir()}`, ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
}
