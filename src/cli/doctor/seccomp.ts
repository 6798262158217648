// Which seccomp filter the sandboxes of these options get: the default profile (what it refuses),
// none ('unconfined'), or the user's profile (its default action and rule count).
import { ContainerError } from '../../errors.ts';
import { normalizeOptions } from '../../runtime/options.ts';
import { DEFAULT_CAPABILITIES } from '../../runtime/spec.ts';
import { defaultSeccompProfile } from '../../runtime/seccomp.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';

const ID = 'seccomp';
const TITLE = 'sandbox seccomp';

export function checkSeccomp(ctx: DoctorContext): CheckResult {
  let chosen;
  try {
    chosen = normalizeOptions(ctx.options).seccomp;
  } catch (err) {
    if (err instanceof ContainerError) return fromError(ID, TITLE, 'fail', err);
    throw err;
  }
  if (chosen === 'unconfined') {
    return { id: ID, title: TITLE, status: 'warn', summary: 'unconfined: no filter, every system call the kernel allows a user namespace reaches it (keyring, io_uring, bpf, ...)' };
  }
  if (chosen === 'default') {
    const allowed = defaultSeccompProfile(DEFAULT_CAPABILITIES).syscalls?.[0]?.names.length ?? 0;
    return { id: ID, title: TITLE, status: 'ok', summary: `the default profile: ${allowed} system calls allowed; keyring, io_uring, userfaultfd, perf_event_open, bpf, kexec, modules, setting clocks, namespaces and mounts refused (EPERM), clone3 ENOSYS` };
  }
  return { id: ID, title: TITLE, status: 'ok', summary: `your profile: default action ${chosen.defaultAction}, ${chosen.syscalls?.length ?? 0} rules` };
}
