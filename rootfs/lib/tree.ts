// A layer's staging tree: the unpacked .debs plus what their maintainer scripts
// would have done (accounts, directories with owners, config files, links), minus
// what a container never reads (docs, man pages, translations).
import { chmod, glob, lchown, lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { execa } from 'execa';
import type { Group, LayerSpec, User } from './recipe.ts';
import { RootfsError } from './log.ts';

/** Unpack .debs in the order given (later files win, as dpkg would overwrite). */
export async function unpackDebs(debs: string[], root: string): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const deb of debs) await execa('dpkg-deb', ['--extract', deb, root]);
}

/** `/etc/passwd` -> `<root>/etc/passwd`, refusing paths that climb out of the tree. */
export function inTree(root: string, path: string): string {
  const rel = normalize(path).replace(/^\/+/, '');
  if (rel === '' || rel.startsWith('..')) throw new RootfsError('RECIPE_PATH', `path ${JSON.stringify(path)} is not inside the image`);
  return join(root, rel);
}

// Copyright files stay (the licences ask for it); the rest of the docs goes.
const DEFAULT_PRUNE = ['usr/share/man', 'usr/share/info', 'usr/share/lintian', 'usr/share/linda', 'usr/share/bug', 'usr/share/locale'];

export async function prune(root: string, globs: string[] = []): Promise<void> {
  for (const path of DEFAULT_PRUNE) await rm(join(root, path), { recursive: true, force: true });
  const docs = join(root, 'usr/share/doc');
  for (const pkg of await readdir(docs).catch(() => [] as string[])) {
    const dir = join(docs, pkg);
    if (!(await lstat(dir)).isDirectory()) continue;
    for (const entry of await readdir(dir)) if (entry !== 'copyright') await rm(join(dir, entry), { recursive: true, force: true });
  }
  for (const pattern of globs) {
    for await (const match of glob(pattern.replace(/^\/+/, ''), { cwd: root })) {
      await rm(join(root, match), { recursive: true, force: true });
    }
  }
}

export interface Accounts {
  users: User[];
  groups: Group[];
}

function idOf(value: string | number | undefined, names: Map<string, number>, kind: string): number {
  if (value === undefined) return 0;
  if (typeof value === 'number') return value;
  const id = names.get(value);
  if (id === undefined) throw new RootfsError('RECIPE_OWNER', `unknown ${kind} ${JSON.stringify(value)}: declare it in this layer or a lower one`);
  return id;
}

export async function writeAccounts(root: string, { users, groups }: Accounts): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true, mode: 0o755 });
  const passwd = users.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.gecos ?? u.name}:${u.home}:${u.shell ?? '/usr/sbin/nologin'}\n`);
  const group = groups.map((g) => `${g.name}:x:${g.gid}:${(g.members ?? []).join(',')}\n`);
  // Locked passwords: nobody logs in, but tools that read shadow (su, login) find their entry.
  const shadow = users.map((u) => `${u.name}:${u.uid === 0 ? '*' : '!'}:0::::::\n`);
  await writeFile(join(root, 'etc/passwd'), passwd.join(''), { mode: 0o644 });
  await writeFile(join(root, 'etc/group'), group.join(''), { mode: 0o644 });
  await writeFile(join(root, 'etc/shadow'), shadow.join(''), { mode: 0o640 });
  await chmod(join(root, 'etc/shadow'), 0o640);
}

/** Dirs, files and symlinks of a layer spec; files' `source` must already be read into `content`. */
export async function applyFixups(root: string, spec: LayerSpec, accounts: Accounts): Promise<void> {
  const uids = new Map(accounts.users.map((u) => [u.name, u.uid]));
  const gids = new Map(accounts.groups.map((g) => [g.name, g.gid]));
  const own = async (path: string, owner: string | number | undefined, group: string | number | undefined) => {
    const uid = idOf(owner, uids, 'user');
    // A user's own group by default, as adduser --group would make it.
    const gid = group === undefined ? (accounts.users.find((u) => u.uid === uid)?.gid ?? 0) : idOf(group, gids, 'group');
    await lchown(path, uid, gid);
  };
  for (const d of spec.dirs ?? []) {
    const path = inTree(root, d.path);
    await mkdir(path, { recursive: true, mode: 0o755 });
    await chmod(path, d.mode ?? 0o755);
    await own(path, d.owner, d.group);
  }
  for (const f of spec.files ?? []) {
    const path = inTree(root, f.path);
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    await rm(path, { force: true });
    await writeFile(path, f.content ?? '');
    await chmod(path, f.mode ?? 0o644);
    await own(path, f.owner, f.group);
  }
  for (const s of spec.symlinks ?? []) await link(inTree(root, s.path), s.target);
}

async function link(path: string, target: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await rm(path, { force: true });
  await symlink(target, path);
}

/** What busybox's `--install -s` would do, minus running anything inside the image. */
export async function linkBusyboxApplets(root: string): Promise<number> {
  const busybox = join(root, 'bin/busybox');
  // busybox-static runs on any host of the same architecture, so ask it for its applets.
  const { stdout } = await execa(busybox, ['--list-full']);
  // Top-level names (linuxrc) are for initramfs, not for a container.
  const applets = stdout.split('\n').filter((a) => a.includes('/')).sort();
  for (const applet of applets) {
    const path = inTree(root, applet);
    if (await lstat(path).then(() => true, () => false)) continue; // a real file of the same name wins
    await link(path, '/bin/busybox');
  }
  return applets.length;
}
