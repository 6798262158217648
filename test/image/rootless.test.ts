// Unpacking as an unprivileged user (nobody, cache under /tmp): opaque dirs use
// user.overlay.* and the image asks for `userxattr`; a rootless overlay mount
// in a user namespace then shows the right files.
import { chmodSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { getXattr } from '../../src/image/syscalls.ts';
import { buildToolImages } from './helpers/images.ts';
import type { ToolImages } from './helpers/images.ts';
import { hasTool, isRoot, NODE, tempDir } from './helpers/host.ts';
import { writeImage } from './helpers/oci-builder.ts';
import { tarArchive } from './helpers/tar-builder.ts';

const cli = fileURLToPath(new URL('./helpers/resolve-cli.ts', import.meta.url));
/** As root, drop to nobody for the command; as a normal user, run it as is. */
const asUser = (cmd: string[]): string[] => (isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...cmd] : cmd);

function sh(cmd: string[]): string {
  return execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } });
}

function resolveAsUser(ref: string, cacheDir: string): { lowerDirs: string[]; overlayOptions: string[] } {
  return JSON.parse(sh(asUser([NODE, cli, ref, cacheDir])));
}

describe.runIf(hasTool('umoci') && hasTool('skopeo') && hasTool('unshare'))('rootless unpack', () => {
  let images: ToolImages;
  let cacheDir: string;
  beforeAll(() => {
    const dir = tempDir('rootless');
    images = buildToolImages(dir);
    sh(['chmod', '-R', 'a+rX', dir]);
    cacheDir = tempDir('rootless-cache');
    chmodSync(cacheDir, 0o777);
    cacheDir = `${cacheDir}/cache`;
  });

  it('marks opaque dirs with user.overlay.opaque only and asks for userxattr', () => {
    const image = resolveAsUser(`${images.layout}:layered`, cacheDir);
    expect(image.overlayOptions).toEqual(['userxattr']);
    const top = image.lowerDirs[0]!;
    expect(getXattr(`${top}/data`, 'user.overlay.opaque')?.toString()).toBe('y');
    expect(getXattr(`${top}/data`, 'trusted.overlay.opaque')).toBeUndefined();
  });

  it('a rootless overlay mount with those layers shows deletions and the opaque dir', () => {
    const image = resolveAsUser(`${images.layout}:layered`, cacheDir);
    const opt = [`lowerdir=${image.lowerDirs.join(':')}`, ...image.overlayOptions].join(',');
    const out = sh(asUser(['unshare', '-Urm', 'sh', '-c',
      `set -e; R=$(mktemp -d); mount -t overlay overlay -o '${opt}' "$R"; cat "$R/etc/hello"; ls "$R/data"; test -e "$R/etc/remove-me" || echo gone`]));
    expect(out.trim().split('\n')).toEqual(['hello from layer 2', 'fresh', 'gone']);
  });

  it('strips setuid bits and skips device nodes when rootless', () => {
    const ref = tempDir('rootless-suid');
    writeImage(ref, [tarArchive([{ name: 'su', data: 'x', mode: 0o4755 }, { name: 'null', type: 'char', devmajor: 1, devminor: 3 }])]);
    sh(['chmod', '-R', 'a+rX', ref]);
    const image = resolveAsUser(ref, cacheDir);
    const out = sh(['stat', '-c', '%a %u', `${image.lowerDirs[0]}/su`]).trim();
    expect(out).toBe(isRoot ? '755 65534' : `755 ${process.getuid!()}`);
    expect(readdirSync(image.lowerDirs[0]!).sort()).toEqual(['su']);
  });
});
