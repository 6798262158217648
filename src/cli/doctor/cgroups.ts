// cgroup version, and whether this user can create the sandboxes' cgroups
// (and so have limits enforced). Read-only: nothing is created to find out.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostCapabilityError } from '../../errors.ts';
import { cgroupDriver } from '../../runtime/cgroups/index.ts';
import { V1_CONTROLLERS, type CgroupV1Driver } from '../../runtime/cgroups/v1.ts';
import type { CgroupV2Driver } from '../../runtime/cgroups/v2.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';
import { wantsLimits } from '../container-flags.ts';

const ID = 'cgroups';
const TITLE = 'cgroups';
// What the v2 driver enables for sandboxes (src/runtime/cgroups/v2.ts).
const V2_CONTROLLERS = ['memory', 'cpu', 'pids', 'cpuset'];

function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directory itself when it exists, else its closest existing ancestor (where mkdir would happen). */
function nearestExisting(path: string): string {
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  return path;
}

function words(file: string): Set<string> {
  try {
    return new Set(readFileSync(file, 'utf8').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

function hasUnifiedMount(): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup2 ');
}

/** Where cgroup creation would fail for this user: the dirs that are not writable, or a v2 root that does not pass controllers down. */
function blocker(ctx: DoctorContext, parent: string): { version: 1 | 2; error?: HostCapabilityError } | undefined {
  const driver = cgroupDriver();
  if (!driver) return undefined;
  const delegation = (where: string): HostCapabilityError => new HostCapabilityError('CGROUP_DELEGATION_MISSING',
    `cannot create a cgroup under ${parent}: ${where} is not writable by ${ctx.userName}, so limits cannot be enforced`,
    { fix: driver.version === 1
      ? 'run as root (cgroup v1 has no delegation to unprivileged users), or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1) and use: systemd-run --user --scope -p Delegate=yes <test command>'
      : 'run as root, or give this user a delegated cgroup: systemd-run --user --scope -p Delegate=yes <test command>, and set cgroupParent to it' });
  if (driver.version === 1) {
    const roots = (driver as CgroupV1Driver).roots;
    const [first, ...others] = V1_CONTROLLERS.filter((c) => !writable(nearestExisting(join(roots[c], parent))));
    if (!first) return { version: 1 };
    const where = nearestExisting(join(roots[first], parent)) + (others.length ? ` (and the same in the ${others.join(', ')} hierarchies)` : '');
    return { version: 1, error: delegation(where) };
  }
  const root = (driver as CgroupV2Driver).root;
  const missing = V2_CONTROLLERS.filter((c) => !words(join(root, 'cgroup.subtree_control')).has(c));
  if (missing.length) {
    return { version: 2, error: new HostCapabilityError('CGROUP_CONTROLLERS_MISSING',
      `cgroup ${root} does not pass the ${missing.join(', ')} controller(s) to its children, so limits cannot be enforced`,
      { fix: `enable them once as root: echo "${missing.map((c) => `+${c}`).join(' ')}" > ${join(root, 'cgroup.subtree_control')}` }) };
  }
  const dir = nearestExisting(join(root, parent));
  const ok = writable(dir) && (dir !== join(root, parent) || writable(join(dir, 'cgroup.subtree_control')));
  return { version: 2, ...(ok ? {} : { error: delegation(dir) }) };
}

export function checkCgroups(ctx: DoctorContext, parent: string): CheckResult {
  const limits = wantsLimits(ctx.options);
  const found = blocker(ctx, parent);
  if (!found) {
    const err = new HostCapabilityError('CGROUPS_UNAVAILABLE', 'no usable cgroup hierarchy with the memory, cpu and pids controllers was found, so limits cannot be enforced',
      { fix: 'mount cgroup2 at /sys/fs/cgroup (or the v1 memory, cpu, cpuacct, pids and cpuset hierarchies)' });
    return fromError(ID, TITLE, limits ? 'fail' : 'warn', err);
  }
  const version = found.version === 1 ? `v1${hasUnifiedMount() ? ' (hybrid)' : ''}` : 'v2';
  if (!found.error) return { id: ID, title: TITLE, status: 'ok', summary: `cgroup ${version}: memory, cpu and pids limits can be enforced under ${parent}` };
  // Without limits requested a sandbox simply runs without a cgroup: worth knowing, not a failure.
  return fromError(ID, TITLE, limits ? 'fail' : 'warn', found.error, `cgroup ${version}: `);
}
