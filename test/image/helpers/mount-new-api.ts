// Mounts an overlay with the new mount API, one `lowerdir+` per layer (no
// page-size limit on the option string), then lists a few paths. Run it inside
// `unshare -m` so the mount dies with the namespace.
// usage: mount-new-api.ts TARGET OPTIONS(comma list or '-') LOWER... -- PATH...
import koffi from 'koffi';
import { readdirSync } from 'node:fs';

const libc = koffi.load('libc.so.6');
const fsopen = libc.func('int fsopen(const char *fsname, unsigned int flags)');
const fsconfig = libc.func('int fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux)');
const fsmount = libc.func('int fsmount(int fd, unsigned int flags, unsigned int attr)');
const moveMount = libc.func('int move_mount(int from_dfd, const char *from, int to_dfd, const char *to, unsigned int flags)');
const FSCONFIG_SET_FLAG = 0, FSCONFIG_SET_STRING = 1, FSCONFIG_CMD_CREATE = 6;
const MOUNT_ATTR_RDONLY = 1, MOVE_MOUNT_F_EMPTY_PATH = 4, AT_FDCWD = -100;

const args = process.argv.slice(2);
const sep = args.indexOf('--');
const [target, options, ...lowers] = args.slice(0, sep);
const check = (rc: number, what: string): number => {
  if (rc < 0) throw new Error(`${what} failed: errno ${koffi.errno()}`);
  return rc;
};
const fd = check(fsopen('overlay', 1), 'fsopen');
for (const lower of lowers) check(fsconfig(fd, FSCONFIG_SET_STRING, 'lowerdir+', lower, 0), `lowerdir+ ${lower}`);
for (const flag of options === '-' ? [] : options!.split(',')) check(fsconfig(fd, FSCONFIG_SET_FLAG, flag, null, 0), flag);
check(fsconfig(fd, FSCONFIG_CMD_CREATE, null, null, 0), 'create');
const mfd = check(fsmount(fd, 1, MOUNT_ATTR_RDONLY), 'fsmount');
check(moveMount(mfd, '', AT_FDCWD, target!, MOVE_MOUNT_F_EMPTY_PATH), 'move_mount');
const out: Record<string, string[]> = {};
for (const path of args.slice(sep + 1)) out[path] = readdirSync(`${target}/${path}`).sort();
process.stdout.write(JSON.stringify(out));
