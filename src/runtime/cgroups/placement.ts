// Where sandbox cgroups go on cgroup v2 when the options name no parent.
//
// A user may manage a cgroup subtree whose directory and cgroup.procs they may
// write: systemd delegates user@UID.service to each user with a session (and a
// `systemd-run --user --scope -p Delegate=yes` scope inside it). Sandboxes go
// in a child of the highest such cgroup above this process that holds no
// process itself: cgroup v2 passes controllers on only from cgroups without
// processes of their own (the root excepted), so never from the cgroup the
// test runner itself sits in. Root manages the whole tree: its sandboxes go
// under the root.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PARENT_NAME } from './types.ts';

/** A cgroup2 mount: where it is, and which cgroup (from the namespace's root) it shows. */
export interface UnifiedMount { mountPoint: string; root: string }

function readable(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** This process's cgroup v2, as a path under the mount (undefined when the mount does not show it). */
export function ownCgroup(mount: UnifiedMount): string | undefined {
  const line = readable('/proc/self/cgroup')?.split('\n').find((l) => l.startsWith('0::'));
  if (!line) return undefined;
  const path = line.slice(3);
  const root = mount.root === '/' ? '' : mount.root;
  if (path !== root && !path.startsWith(`${root}/`)) return undefined;
  return path.slice(root.length) || '/';
}

function mayWrite(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The root cgroup has no cgroup.type; it alone may hold processes and pass controllers on. */
export function isRootCgroup(dir: string): boolean {
  return !existsSync(join(dir, 'cgroup.type'));
}

export function holdsProcesses(dir: string): boolean {
  return (readable(join(dir, 'cgroup.procs')) ?? '').trim() !== '';
}

/**
 * The highest cgroup above this process (or its own, when that is the root) that it may create
 * cgroups in and move processes into, and that may pass controllers on; undefined when there is none.
 */
export function managedSubtree(mount: UnifiedMount): string | undefined {
  const own = ownCgroup(mount);
  const parts = (own ?? '/').split('/').filter(Boolean);
  for (let depth = 0; depth <= parts.length; depth++) {
    const path = `/${parts.slice(0, depth).join('/')}`;
    const dir = join(mount.mountPoint, path);
    const isOwn = depth === parts.length;
    if (!mayWrite(dir) || !mayWrite(join(dir, 'cgroup.procs'))) continue;
    if (isRootCgroup(dir)) return path;
    // The process's own cgroup holds it; any other may hold none.
    if (!isOwn && !holdsProcesses(dir)) return path;
  }
  return undefined;
}

/** The default parent: DEFAULT_PARENT_NAME in the managed subtree, or at the root (where making it will fail, and say why). */
export function defaultParentV2(mount: UnifiedMount): string {
  return join(managedSubtree(mount) ?? '/', DEFAULT_PARENT_NAME);
}
