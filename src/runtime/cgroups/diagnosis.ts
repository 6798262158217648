// Why a sandbox cannot have a cgroup here, and the one command that changes
// that. The runtime's errors and `doctor` both come from these functions.
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { HostCapabilityError } from '../../errors.ts';
import { CONTAINER_FIX, confinement, containerName } from '../confinement.ts';
import { holdsProcesses, isRootCgroup } from './placement.ts';
import type { CgroupDriver } from './types.ts';
import type { CgroupV1Driver } from './v1.ts';
import type { CgroupV2Driver } from './v2.ts';

/** systemd is the init system (sd_booted()). */
export function systemdBooted(): boolean {
  return existsSync('/run/systemd/system');
}

/** The command that ran the tests, as far as npm says (fixes that wrap it show it). */
export function testCommand(): string {
  const event = process.env.npm_lifecycle_event;
  if (event === 'test') return 'npm test';
  return event ? `npm run ${event}` : '<your test command>';
}

function words(file: string): Set<string> {
  try {
    return new Set(readFileSync(file, 'utf8').trim().split(/\s+/));
  } catch {
    return new Set();
  }
}

/** The controllers sandboxes are given when the kernel has them (and a limit may ask for). */
const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids'];

/**
 * For a host without systemd: a cgroup the user owns (as systemd makes user@UID.service), the
 * shell moved into a leaf of it, then the tests. Sandboxes then go in <that cgroup>/vitest-container.
 */
export function delegationCommand(root: string, user: string): string {
  const dir = join(root, `vtc-${user}`);
  const missing = LIMIT_CONTROLLERS.filter((c) => words(join(root, 'cgroup.controllers')).has(c) && !words(join(root, 'cgroup.subtree_control')).has(c));
  const enable = missing.length ? ` && echo "${missing.map((c) => `+${c}`).join(' ')}" > ${join(root, 'cgroup.subtree_control')}` : '';
  return `sudo sh -c 'mkdir -p ${dir}/session && chown ${user} ${dir} ${dir}/cgroup.procs ${dir}/cgroup.subtree_control ${dir}/session ${dir}/session/cgroup.procs${enable}'`
    + ` && echo $$ | sudo tee ${dir}/session/cgroup.procs && ${testCommand()}`;
}

const SYSTEMD_DELEGATE = 'sudo mkdir -p /etc/systemd/system/user@.service.d && printf \'[Service]\\nDelegate=cpu cpuset io memory pids\\n\' '
  + '| sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload, then log in again';

/** A sandbox's cgroup could not be made under parent (errno code) and limits were asked for. */
export function cannotCreate(driver: CgroupDriver, parent: string, code: string, cause: unknown): HostCapabilityError {
  const { version } = driver;
  const root = version === 2 ? (driver as CgroupV2Driver).root : (driver as CgroupV1Driver).roots.memory;
  const c = confinement();
  const user = userInfo().username;
  const rootless = process.getuid!() !== 0;
  const where = `cannot create a cgroup under ${parent}`;
  if (code === 'EROFS' || (c.cgroupfsReadOnly && (c.engine || c.seccompFiltered))) {
    return new HostCapabilityError('CGROUPS_READ_ONLY',
      `${where}: /sys/fs/cgroup is mounted read-only${c.engine || c.seccompFiltered ? ` by ${containerName(c)}` : ''}, so the requested limits cannot be enforced`,
      { fix: `${CONTAINER_FIX}; or ask for no limits (memory, cpus, cpuset, pids): sandboxes without limits need no cgroup`, cause });
  }
  if (!rootless) {
    return new HostCapabilityError('CGROUP_DELEGATION_MISSING', `${where} (${code}) as root, so the requested limits cannot be enforced`,
      { fix: c.engine ? CONTAINER_FIX : `check who may write ${join(root, parent)} (an LSM policy, or a user namespace without the host's root)`, cause });
  }
  if (version === 1) {
    return new HostCapabilityError('CGROUP_DELEGATION_MISSING',
      `${where}: this host has cgroup v1, which lets no unprivileged user (${user}) create cgroups, so the requested limits cannot be enforced`,
      { fix: `run the tests as root, or boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1 on the kernel command line) and run them with: systemd-run --user --scope -p Delegate=yes ${testCommand()}`, cause });
  }
  const message = `${where}: no cgroup above this process is delegated to ${user}, so the requested limits cannot be enforced`;
  if (!systemdBooted()) return new HostCapabilityError('CGROUP_DELEGATION_MISSING', message, { fix: delegationCommand(root, user), cause });
  const uid = process.getuid!();
  const manager = join(root, `user.slice/user-${uid}.slice/user@${uid}.service`);
  const run = `systemd-run --user --scope -p Delegate=yes ${testCommand()}`;
  return new HostCapabilityError('CGROUP_DELEGATION_MISSING', message,
    { fix: existsSync(manager) ? `run the tests in your user manager's delegated cgroup: ${run}` : `sudo loginctl enable-linger ${user}, then: ${run}`, cause });
}

/**
 * Cgroups we may not change do not pass on controllers that the limits asked for need: levels[0]
 * (and maybe the levels below it, on the way to the sandboxes' parent).
 */
export function controllersMissing(root: string, levels: string[], missing: string[], refused?: string): HostCapabilityError {
  const dir = levels[0]!;
  const list = missing.join(', ');
  const message = `cgroup ${dir} does not pass the ${list} controller(s) to its children${refused ? ` and ${refused}` : ''}, so the limits that need them cannot be enforced`;
  const plus = (cs: string[]) => `"${cs.map((c) => `+${c}`).join(' ')}"`;
  if (dir === root && !isRootCgroup(dir) && holdsProcesses(dir)) {
    // The root of a cgroup namespace (a container's /sys/fs/cgroup) that holds the container's processes.
    return new HostCapabilityError('CGROUP_CONTROLLERS_MISSING', `${message}: it holds processes, and cgroup v2 passes controllers on only from a cgroup without any`,
      { fix: `move them into a child cgroup first, then enable the controllers (as docker:dind's entrypoint does), as root: mkdir -p ${dir}/init && `
        + `for p in $(cat ${dir}/cgroup.procs); do echo $p > ${dir}/init/cgroup.procs; done && echo ${plus(missing)} > ${dir}/cgroup.subtree_control` });
  }
  if (systemdBooted() && `/${relative(root, dir)}`.startsWith('/user.slice')) {
    return new HostCapabilityError('CGROUP_CONTROLLERS_MISSING', `${message} (systemd delegates only some controllers to users)`, { fix: SYSTEMD_DELEGATE });
  }
  const steps = levels.flatMap((level) => {
    const lacking = missing.filter((c) => !words(join(level, 'cgroup.subtree_control')).has(c));
    return lacking.length ? [`echo ${plus(lacking)} > ${join(level, 'cgroup.subtree_control')}`] : [];
  });
  return new HostCapabilityError('CGROUP_CONTROLLERS_MISSING', message, { fix: `enable them once, as root: ${steps.join(' && ')}` });
}
