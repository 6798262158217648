// A sandbox's bundle on the host: <runRoot>/<id>/config.json and an empty
// rootfs/ mount point (the mounts themselves live only in the sandbox's own
// mount namespace). Made and removed on every start, so without recursion.
import { lstatSync, mkdirSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HostCapabilityError } from '../errors.ts';

let runRootMade = '';

/**
 * Makes the run root (once per process) and checks it is ours alone: a rootless run root in a
 * shared /tmp could have been made by another user, who could then swap our config.json.
 */
export function ensureRunRoot(runRoot: string): void {
  if (runRootMade === runRoot) return;
  mkdirSync(runRoot, { recursive: true, mode: 0o700 });
  const st = lstatSync(runRoot);
  if (!st.isDirectory() || st.uid !== process.getuid!() || (st.mode & 0o077) !== 0) {
    throw new HostCapabilityError('RUN_DIRECTORY_UNSAFE',
      `${runRoot} must be a directory owned by uid ${process.getuid!()} and closed to others (mode 0700); it is not, so it is not used`,
      { fix: `remove it (if nothing of yours is in it) or set XDG_RUNTIME_DIR to a private directory` });
  }
  runRootMade = runRoot;
}

export function makeBundle(runRoot: string, id: string): string {
  ensureRunRoot(runRoot);
  const dir = join(runRoot, id);
  mkdirSync(dir, { mode: 0o700 });
  mkdirSync(join(dir, 'rootfs'));
  return dir;
}

export function writeSpec(dir: string, spec: unknown): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
}

export function removeBundle(dir: string): void {
  try {
    unlinkSync(join(dir, 'config.json'));
    // Written by the monitor when the sandbox has a seccomp filter (exec loads it from here).
    try {
      unlinkSync(join(dir, 'seccomp.bpf'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    rmdirSync(join(dir, 'rootfs'));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true }); // something unexpected in it (or half made): the slow way
  }
}
