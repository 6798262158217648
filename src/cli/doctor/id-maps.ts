// newuidmap/newgidmap and /etc/subuid, /etc/subgid: without them a rootless
// sandbox maps only the user's own id (to root), so images that switch users
// (postgres, redis) cannot.
import { hostInfo } from '../../runtime/host.ts';
import { findOnPath } from '../../path.ts';
import type { CheckResult, DoctorContext } from './check.ts';

const ID = 'id-maps';
const TITLE = 'subordinate ids';

export function checkIdMaps(ctx: DoctorContext): CheckResult {
  if (!ctx.rootless) {
    const [uids] = hostInfo().uidMappings;
    return { id: ID, title: TITLE, status: 'ok', summary: `as root, sandbox ids 0-${uids!.size - 1} are the unprivileged host ids ${uids!.hostID}-${uids!.hostID + uids!.size - 1}` };
  }
  const missing = ['newuidmap', 'newgidmap'].filter((h) => !findOnPath(h));
  if (missing.length) {
    return { id: ID, title: TITLE, status: 'warn', code: 'ID_MAP_HELPERS_MISSING',
      summary: `${missing.join(' and ')} not found: sandboxes map only your own id, images that switch users will fail`,
      fix: 'sudo apt-get install uidmap (Fedora: sudo dnf install shadow-utils)' };
  }
  const host = hostInfo();
  const range = (maps: typeof host.uidMappings) => maps.find((m) => m.containerID === 1);
  const uids = range(host.uidMappings), gids = range(host.gidMappings);
  if (!uids || !gids) {
    return { id: ID, title: TITLE, status: 'warn', code: 'SUBORDINATE_IDS_MISSING',
      summary: `no ${!uids ? '/etc/subuid' : ''}${!uids && !gids ? ' and ' : ''}${!gids ? '/etc/subgid' : ''} range for ${ctx.userName}: sandboxes map only your own id, images that switch users will fail`,
      fix: `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${ctx.userName}` };
  }
  return { id: ID, title: TITLE, status: 'ok', summary: `newuidmap/newgidmap present; ids 1-${uids.size} map to ${uids.hostID}-${uids.hostID + uids.size - 1} (/etc/subuid)` };
}
