// User namespaces, for real: create one, write its uid map, mount in it.
// AppArmor (Ubuntu 23.10+) lets the unshare succeed and refuses later, so a
// probe that stops at unshare() would say yes where sandboxes fail.
import { userNamespaceError } from '../../runtime/host.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';
import { probeInNamespaces } from './namespace-probe.ts';

const ID = 'user-namespaces';
const TITLE = 'user namespaces';

export function checkUserNamespaces(ctx: DoctorContext): CheckResult {
  const r = probeInNamespaces(['--user', '--map-root-user', '--mount'], 'mount -t tmpfs vtc-doctor "$1"');
  if (r.noUnshare) {
    return { id: ID, title: TITLE, status: 'warn', summary: 'not probed: `unshare` (util-linux) is not installed; the sandbox probe below still checks', fix: 'apt-get install util-linux' };
  }
  if (r.status === 0) {
    return { id: ID, title: TITLE, status: 'ok', summary: 'can create one, write its uid map and mount in it' + (ctx.rootless ? '' : ' (not needed as root)') };
  }
  const err = userNamespaceError(r.stderr.replace(/^unshare: /, '') || `probe exited with ${r.status}`);
  // Root's sandboxes need no user namespace: only unprivileged users are affected.
  return ctx.rootless ? fromError(ID, TITLE, 'fail', err) : fromError(ID, TITLE, 'warn', err, 'not needed as root, but unprivileged users cannot run sandboxes: ');
}
