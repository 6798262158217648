// Overlayfs where sandboxes mount it: in a private mount namespace as root, in
// a user namespace (with userxattr, as rootless image layers use) otherwise.
import { runtimeError } from '../../runtime/errors-map.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';
import { probeInNamespaces, sandboxLikeFlags } from './namespace-probe.ts';

const ID = 'overlay';
const TITLE = 'overlayfs';

const script = (options: string): string => `
mkdir "$1/lower" "$1/t"
mount -t tmpfs vtc-doctor "$1/t" || exit 10
mkdir "$1/t/upper" "$1/t/work" "$1/t/merged"
mount -t overlay vtc-doctor -o "lowerdir=$1/lower,upperdir=$1/t/upper,workdir=$1/t/work${options}" "$1/t/merged" || exit 11
echo probe > "$1/t/merged/probe" || exit 12`;

export function checkOverlay(ctx: DoctorContext, userNamespacesWork: boolean): CheckResult {
  const where = ctx.rootless ? 'in a user namespace' : 'in a private mount namespace';
  if (ctx.rootless && !userNamespacesWork) {
    return { id: ID, title: TITLE, status: 'fail', summary: `not probed: rootless sandboxes mount it ${where}, which failed above`, code: 'USER_NAMESPACES_UNAVAILABLE' };
  }
  const options = ctx.rootless ? ',userxattr' : '';
  const r = probeInNamespaces(sandboxLikeFlags(ctx.rootless), script(options));
  if (r.noUnshare) return { id: ID, title: TITLE, status: 'warn', summary: 'not probed: `unshare` (util-linux) is not installed', fix: 'apt-get install util-linux' };
  if (r.status === 0) return { id: ID, title: TITLE, status: 'ok', summary: `mounts and writes ${where}` };
  const code = /unknown filesystem/i.test(r.stderr) ? 'ENODEV' : /permission denied|not permitted/i.test(r.stderr) ? 'EPERM' : 'EIO';
  const stage = r.status === 11 ? 'overlay' : 'rootfs';
  const err = runtimeError({ type: 'error', stage, path: 'overlay probe', errno: 0, code, message: r.stderr || `probe exited with ${r.status}` }, ctx.rootless);
  return fromError(ID, TITLE, 'fail', err);
}
