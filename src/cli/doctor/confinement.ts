// What confines this process: a container engine's seccomp profile, missing
// capabilities, a read-only cgroupfs, AppArmor's user-namespace restriction.
// Each is the cause behind some refusal the sandbox probe below may meet.
import { CONTAINER_FIX, confinement, containerName } from '../../runtime/confinement.ts';
import type { CheckResult } from './check.ts';

const ID = 'confinement';
const TITLE = 'confinement';

export function checkConfinement(): CheckResult {
  const c = confinement();
  const root = process.getuid!() === 0;
  const limits = [
    ...(c.seccompFiltered ? ['a seccomp filter (a container engine\'s default profile refuses namespaces, mounts and sethostname without CAP_SYS_ADMIN)'] : []),
    ...((root && !c.capSysAdmin) || !c.capSysAdminBounding ? ['no CAP_SYS_ADMIN (nor can setuid newuidmap get it)'] : []),
    ...(c.cgroupfsReadOnly ? ['/sys/fs/cgroup read-only'] : []),
    ...(c.procMasked && (c.engine || c.seccompFiltered) ? ['parts of /proc masked'] : []),
    ...(c.appArmorProfile ? [`AppArmor profile "${c.appArmorProfile}"`] : []),
  ];
  const inContainer = c.engine !== undefined && limits.length > 0;
  if (c.appArmorRestrictsUserNamespaces && !root) {
    return { id: ID, title: TITLE, status: 'warn', code: 'USER_NAMESPACES_RESTRICTED',
      summary: `AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)${limits.length ? `; also ${limits.join(', ')}` : ''}`,
      fix: 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or give node an AppArmor profile with "userns,")' };
  }
  if (!limits.length) return { id: ID, title: TITLE, status: 'ok', summary: 'no seccomp filter, no read-only cgroupfs' + (root ? ', all capabilities a sandbox needs' : '') };
  return { id: ID, title: TITLE, status: 'warn', code: inContainer || c.seccompFiltered ? 'CONTAINER_RESTRICTED' : undefined,
    summary: `${inContainer || c.seccompFiltered ? containerName(c) : 'this process'} has ${limits.join(', ')}`,
    ...(inContainer || c.seccompFiltered ? { fix: CONTAINER_FIX } : {}) };
}
