// A sandbox's cgroup, or a typed error that says why it cannot have one.
// Without limits a sandbox that cannot have a cgroup simply runs without one
// (rootless without delegation, root with a read-only cgroupfs): its pid
// namespace and its monitor still end every process of it. With limits, that
// would be a silent downgrade: an error instead.
import { HostCapabilityError, type ContainerError } from '../../errors.ts';
import { cannotCreate } from './diagnosis.ts';
import { DEFAULT_CGROUP_PARENT, type CgroupDriver, type Limits, type SandboxCgroup } from './types.ts';

function asksForLimits(l: Limits): boolean {
  return l.memoryBytes !== undefined || l.cpus !== undefined || l.cpuset !== undefined || l.pidsMax !== undefined;
}

const CGROUP_REFUSALS = new Set(['CGROUP_CONTROLLERS_MISSING']);
const DENIED = new Set(['EACCES', 'EPERM', 'EROFS']);

export function createSandboxCgroup(driver: CgroupDriver | null, parent: string, name: string, limits: Limits): SandboxCgroup | undefined {
  const limited = asksForLimits(limits);
  if (!driver) {
    if (!limited) return undefined;
    throw new HostCapabilityError('CGROUPS_UNAVAILABLE', 'no usable cgroup hierarchy with the memory, cpu and pids controllers was found, so limits cannot be enforced',
      { fix: 'mount cgroup2 at /sys/fs/cgroup (or the v1 memory, cpu, cpuacct, pids and cpuset hierarchies)' });
  }
  try {
    return driver.create(parent, name, limits);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // The kernel refusing a value it was given: EINVAL and the like, or for cpuset CPUs outside the
    // parent's, "permission denied" (v1) — not a delegation problem, the cgroup was just made.
    const limitFile = (err as { limitFile?: string }).limitFile;
    if (limitFile && (['EINVAL', 'EBUSY', 'ERANGE'].includes(code) || (DENIED.has(code) && /\/cpuset\.(cpus|mems)$/.test(limitFile)))) {
      throw new HostCapabilityError('CGROUP_LIMIT_REJECTED', `the kernel rejected a limit: ${limitFile} (${code})`,
        { fix: 'ask for a value this host has: cpuset within the CPUs this process may use (see `nproc` and the parent cgroup\'s cpuset.cpus), cpus at most that many, memory at least 6 MiB', cause: err });
    }
    if (!limited && (CGROUP_REFUSALS.has(code) || DENIED.has(code))) return undefined;
    if (CGROUP_REFUSALS.has(code)) throw err as ContainerError;
    if (DENIED.has(code)) throw cannotCreate(driver, parent === DEFAULT_CGROUP_PARENT ? driver.defaultParent() : parent, code, err);
    if (code === 'EINVAL' || code === 'EBUSY' || code === 'ERANGE') {
      throw new HostCapabilityError('CGROUP_LIMIT_REJECTED', `the kernel rejected a limit: ${(err as Error).message}`,
        { fix: 'ask for a value this host has: cpuset within the CPUs this process may use (see `nproc`), cpus at most that many, memory at least 6 MiB', cause: err });
    }
    throw err;
  }
}
