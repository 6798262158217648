// The images the runtime can start: 'host' (built in) and OCI images from src/image/.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ImageError, InvalidOptionsError } from '../errors.ts';

export type { ImageConfig } from '../image/types.ts';
import type { ImageConfig } from '../image/types.ts';

export interface Identity { uid: number; gid: number; additionalGids: number[] }

export interface RuntimeImage {
  reference: string;
  /** Overlay lower directories, top-most first. */
  lowerDirs: string[];
  overlayOptions: string[];
  /** 'toplevel': the one lower directory is a live tree with mounts in it (see native/rootfs.c). */
  compose?: 'toplevel';
  /** The layers are a host directory with host owners (rootfs:), not layers unpacked for sandboxes: idmapped when started by root. */
  hostOwned?: boolean;
  config: ImageConfig;
  resolveUser(user: string): Promise<Identity>;
}

/** Resolves 'name', 'uid', 'name:group', 'uid:gid' against passwd and group file contents. */
export function resolveUserFromFiles(user: string, passwd: string, group: string, where: string): Identity {
  const [u = '', g] = user.split(':', 2);
  const users = passwd.split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4);
  const groups = group.split('\n').map((l) => l.split(':')).filter((f) => f.length >= 3);
  const entry = users.find((f) => f[0] === u) ?? (/^\d+$/.test(u) ? users.find((f) => f[2] === u) : undefined);
  let uid: number;
  let gid: number;
  if (entry) {
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  } else if (/^\d+$/.test(u)) {
    uid = Number(u);
    gid = uid;
  } else {
    throw new InvalidOptionsError('UNKNOWN_USER', `user "${u}" does not exist in ${where}'s /etc/passwd`, { fix: 'use a numeric uid:gid, or a user the image defines' });
  }
  if (g !== undefined) {
    const ge = groups.find((f) => f[0] === g);
    if (ge) gid = Number(ge[2]);
    else if (/^\d+$/.test(g)) gid = Number(g);
    else throw new InvalidOptionsError('UNKNOWN_GROUP', `group "${g}" does not exist in ${where}'s /etc/group`);
  }
  const name = entry?.[0];
  const additionalGids = name ? groups.filter((f) => (f[3] ?? '').split(',').includes(name)).map((f) => Number(f[2])).filter((x) => x !== gid) : [];
  return { uid, gid, additionalGids };
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** The host's own root filesystem, read-only, as the single lower layer. */
export const hostImage: RuntimeImage = {
  reference: 'host',
  lowerDirs: ['/'],
  overlayOptions: [],
  config: {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    // Something for pid 1 to run when the test only wants exec().
    Cmd: ['sleep', 'infinity'],
  },
  async resolveUser(user) {
    return resolveUserFromFiles(user, readOr('/etc/passwd'), readOr('/etc/group'), 'the host');
  },
};

/** 'rootfs:/path': an unpacked root file system directory, used read-only as the one lower layer. */
function rootfsImage(reference: string): RuntimeImage {
  const dir = reference.slice('rootfs:'.length);
  if (!isAbsolute(dir)) throw new InvalidOptionsError('INVALID_OPTIONS', `image "${reference}": the rootfs directory must be an absolute path`);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ImageError('IMAGE_NOT_FOUND', `image "${reference}": ${dir} is not a directory`);
  }
  return {
    reference, lowerDirs: [dir], overlayOptions: [], config: { Env: hostImage.config.Env ?? [] }, hostOwned: true,
    async resolveUser(user) {
      return resolveUserFromFiles(user, readOr(join(dir, 'etc/passwd')), readOr(join(dir, 'etc/group')), reference);
    },
  };
}

export async function loadImage(reference: string, pulling: { pull?: 'missing' | 'always' | 'never'; platform?: string } = {}): Promise<RuntimeImage> {
  if (reference.startsWith('rootfs:')) return rootfsImage(reference);
  // The host's root has mounts below it (a checkout on its own mount, /home, /run): one overlay of
  // "/" would hide them, and a user namespace may not overlay such a tree whole. So the root is
  // composed: one overlay per top-level directory, directories holding mounts bound read-only.
  if (reference === 'host') return { ...hostImage, compose: 'toplevel' };
  // Loaded on first use: the 'host' image needs none of it.
  const { resolveImage, resolveUser } = await import('../image/index.ts');
  const resolved = await resolveImage(reference, { pull: pulling.pull, platform: pulling.platform });
  return {
    reference,
    lowerDirs: resolved.lowerDirs,
    overlayOptions: resolved.overlayOptions,
    config: resolved.config,
    resolveUser: (user) => resolveUser(resolved, user),
  };
}
