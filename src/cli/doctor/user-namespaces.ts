// User namespaces, for real: create one, write its uid map, mount in it.
// AppArmor (Ubuntu 23.10+) lets the unshare succeed and refuses later, so a
// probe that stops at unshare() would say yes where sandboxes fail.
import { runtimeError } from '../../runtime/errors-map.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';
import { probeInNamespaces } from './namespace-probe.ts';

const ID = 'user-namespaces';
const TITLE = 'user namespaces';

export function checkUserNamespaces(ctx: DoctorContext): CheckResult {
  const r = probeInNamespaces(['--user', '--map-root-user', '--mount'], 'mount -t tmpfs vtc-doctor "$1"');
  if (r.noUnshare) {
    return { id: ID, title: TITLE, status: 'warn', summary: 'not probed: `unshare` (util-linux) is not installed; the sandbox probe below still checks', fix: 'apt-get install util-linux' };
  }
  if (r.status === 0) return { id: ID, title: TITLE, status: 'ok', summary: 'can create one, write its uid map and mount in it' };
  // Every sandbox has one (root's too, its ids an unprivileged host range): the runtime would say the same.
  const detail = r.stderr.replace(/^unshare: /, '') || `probe exited with ${r.status}`;
  const code = /not permitted/i.test(detail) ? 'EPERM' : /no space/i.test(detail) ? 'ENOSPC' : 'EINVAL';
  return fromError(ID, TITLE, 'fail', runtimeError({ type: 'error', stage: 'userns', path: 'user namespace probe', errno: 0, code, message: detail }, ctx.rootless));
}
