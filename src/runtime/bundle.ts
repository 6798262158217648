// A sandbox's bundle on the host: <runRoot>/<id>/config.json and an empty
// rootfs/ mount point (the mounts themselves live only in the sandbox's own
// mount namespace). Made and removed on every start, so without recursion.
import { mkdirSync, rmdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

let runRootMade = '';

export function makeBundle(runRoot: string, id: string): string {
  if (runRootMade !== runRoot) {
    mkdirSync(runRoot, { recursive: true, mode: 0o700 });
    runRootMade = runRoot;
  }
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
    rmdirSync(join(dir, 'rootfs'));
    rmdirSync(dir);
  } catch {
    rmSync(dir, { recursive: true, force: true }); // something unexpected in it (or half made): the slow way
  }
}
