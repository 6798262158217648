// What this host gives a sandbox: who we are (root or not), which ids a user
// namespace can map, where run directories live. Probed once per process.
import { readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { findOnPath } from '../path.ts';
import { HostCapabilityError } from '../errors.ts';
import { ownNamespaceIds, rootSandboxIdRanges, SANDBOX_ID_COUNT, subordinateRange, type IdRange } from '../id-range.ts';

/** Set in a pool worker's environment: the run root its sandbox has made for it. */
export const RUN_ROOT_ENV = 'VITEST_CONTAINER_RUN_ROOT';

export interface IdMapping { containerID: number; hostID: number; size: number }

export interface HostInfo {
  /** Not root: sandboxes map the caller (and its subordinate ids) instead of the root range. */
  rootless: boolean;
  /** A sandbox's user namespace maps: rootless, the caller as 0 (+ subordinate ids); as root, the range of id-range.ts. */
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** Where bundles (config.json + an empty rootfs mount point) are written. */
  runRoot: string;
}

function onPath(binary: string): boolean {
  return findOnPath(binary) !== undefined;
}

function mappings(self: number, file: string, helper: string, name: string): IdMapping[] {
  const own: IdMapping = { containerID: 0, hostID: self, size: 1 };
  const range = onPath(helper) ? subordinateRange(file, [name, String(self)]) : undefined;
  // With subordinate ids, images that switch users (postgres, redis) have their users mapped too.
  return range ? [own, { containerID: 1, hostID: range.start, size: Math.min(range.count, 65536) }] : [own];
}

let cached: HostInfo | undefined;

/** Where bundles are written, for a process that needs no more than that (a test worker: hostInfo() costs ~1 ms). */
export function hostRunRoot(): string {
  return cached?.runRoot ?? runRootFor(process.getuid!(), isRootless(ownNamespaceIds('uid')));
}

/** uid 0 in a user namespace of the caller's (a rootless pool worker) is not root: it may map only what its namespace maps, and the host's root-only places are not its. */
function isRootless(nestedUids: IdRange[] | undefined): boolean {
  return process.getuid!() !== 0 || nestedUids !== undefined;
}

function runRootFor(uid: number, rootless: boolean): string {
  // A pool worker is told its own (a tmpfs its sandbox has at that path; see spec.ts, privileged).
  return process.env[RUN_ROOT_ENV] ? process.env[RUN_ROOT_ENV]
    : !rootless ? '/run/vitest-container'
    : process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'vitest-container')
    : join(tmpdir(), `vitest-container-${uid}`);
}

export function hostInfo(): HostInfo {
  if (cached) return cached;
  const uid = process.getuid!(), gid = process.getgid!();
  const nested = { uids: ownNamespaceIds('uid'), gids: ownNamespaceIds('gid') };
  const rootless = isRootless(nested.uids);
  const name = userInfo().username;
  const runRoot = runRootFor(uid, rootless);
  // As root, the sandbox's ids are an unprivileged host range (see id-range.ts), never host root's.
  const range = rootSandboxIdRanges();
  // Inside a rootless pool worker: its own ids, extent by extent, up to a sandbox's 65536.
  const same = (extents: IdRange[]): IdMapping[] => extents.filter((e) => e.start < SANDBOX_ID_COUNT)
    .map((e) => ({ containerID: e.start, hostID: e.start, size: Math.min(e.count, SANDBOX_ID_COUNT - e.start) }));
  cached = {
    rootless,
    uidMappings: nested.uids && uid === 0 ? same(nested.uids) : rootless ? mappings(uid, '/etc/subuid', 'newuidmap', name) : [{ containerID: 0, hostID: range.uids.start, size: range.uids.count }],
    gidMappings: nested.gids && gid === 0 ? same(nested.gids) : rootless ? mappings(gid, '/etc/subgid', 'newgidmap', name) : [{ containerID: 0, hostID: range.gids.start, size: range.gids.count }],
    runRoot,
  };
  return cached;
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Explains why the kernel refused to create (or, under AppArmor's restriction, use) a user namespace,
 * with the command that fixes it. appArmorRestricted: already known (errors-map.ts decides it from
 * the process's confinement), else read from the sysctl.
 */
export function userNamespaceError(cause: string, { appArmorRestricted }: { appArmorRestricted?: boolean } = {}): HostCapabilityError {
  if (!appArmorRestricted && readSysctl('/proc/sys/user/max_user_namespaces') === '0') {
    return new HostCapabilityError('USER_NAMESPACES_DISABLED', `user namespaces are disabled on this host (user.max_user_namespaces=0): ${cause}`,
      { fix: 'sudo sysctl -w user.max_user_namespaces=15000' });
  }
  if (!appArmorRestricted && readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
    return new HostCapabilityError('USER_NAMESPACES_DISABLED', `unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): ${cause}`,
      { fix: 'sudo sysctl -w kernel.unprivileged_userns_clone=1' });
  }
  if (appArmorRestricted ?? readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
    return new HostCapabilityError('USER_NAMESPACES_RESTRICTED', `AppArmor restricts unprivileged user namespaces on this host (Ubuntu 23.10+): ${cause}`,
      { fix: 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or give node an AppArmor profile with "userns,")' });
  }
  return new HostCapabilityError('USER_NAMESPACES_UNAVAILABLE', `the kernel refused to create a user namespace: ${cause}`,
    { fix: 'run as root, or enable unprivileged user namespaces (sysctl user.max_user_namespaces)' });
}
