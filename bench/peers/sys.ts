// The few system calls the peers' driver makes directly (through koffi), so
// that the overlay the bench prepares for crun/runc/bwrap costs what a
// container engine's snapshotter pays (a mount(2)), not a mount(8) process.
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const mount2 = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
const umount2 = libc.func('int umount2(const char *target, int flags)');
const prctl2 = libc.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)');

export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
const MNT_DETACH = 0x2;
const PR_SET_CHILD_SUBREAPER = 36;

function fail(what: string): never {
  const errno = koffi.errno();
  const name = Object.entries(koffi.os.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
  throw new Error(`${what}: ${name}`);
}

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  if (mount2(source, target, fstype, flags, data) !== 0) fail(`mount ${fstype ?? '(bind)'} ${source} on ${target}`);
}

/** Lazy unmount (MNT_DETACH): the mount goes at once even if something still holds it. */
export function umount(target: string): void {
  if (umount2(target, MNT_DETACH) !== 0) fail(`umount ${target}`);
}

/** Orphaned descendants (detached containers) are re-parented to this process, not to the host's pid 1. */
export function becomeSubreaper(): void {
  if (prctl2(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) !== 0) fail('prctl(PR_SET_CHILD_SUBREAPER)');
}
