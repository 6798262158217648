// The one read-only root file system every contender starts from: a static
// busybox with its applets as symlinks (/bin/true and /bin/sleep among them).
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

function staticBusybox(): string {
  for (const path of BUSYBOX_CANDIDATES) {
    if (!existsSync(path)) continue;
    // A dynamically linked busybox would need the host's libc inside the rootfs.
    const ldd = spawnSync('ldd', [path], { encoding: 'utf8' });
    if (/not a dynamic executable|statically linked/.test(`${ldd.stdout}${ldd.stderr}`)) return path;
  }
  throw new Error('a static busybox is needed for the bench rootfs: apt-get install -y busybox-static');
}

/** Builds ROOT/{bin,etc,tmp,proc,dev,sys,root} with busybox and its applets. */
export function buildRootfs(root: string): void {
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'dev', 'sys', 'root', 'run', 'var']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(staticBusybox(), join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  // `busybox --install -s DIR` links to the running binary's own path, so run it inside the tree.
  const r = spawnSync('chroot', [root, '/bin/busybox', '--install', '-s', '/bin'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`busybox --install failed: ${r.stderr}`);
  for (const applet of ['true', 'sleep', 'sh']) {
    if (!existsSync(join(root, 'bin', applet))) throw new Error(`the bench rootfs lacks /bin/${applet}`);
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/hostname'), 'vtc-bench\n');
}
