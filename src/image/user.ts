// 'name', 'uid', 'name:group', 'uid:gid' -> numeric ids through the image's own
// /etc/passwd and /etc/group, the way docker run --user does.
import { ImageError } from '../errors.ts';
import { readLayeredFile } from './layered-file.ts';
import type { ResolvedImage } from './types.ts';

interface PasswdEntry { name: string; uid: number; gid: number }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 32 - 2;

export async function resolveUser(image: ResolvedImage, user: string): Promise<{ uid: number; gid: number; additionalGids: number[] }> {
  const spec = user.trim();
  if (spec === '') return { uid: 0, gid: 0, additionalGids: [] };
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  const passwd = parsePasswd(readLayeredFile(image.lowerDirs, 'etc/passwd'));
  const groups = parseGroup(readLayeredFile(image.lowerDirs, 'etc/group'));

  const uidNumber = numericId(userPart);
  const entry = uidNumber === undefined ? passwd.find((p) => p.name === userPart) : passwd.find((p) => p.uid === uidNumber);
  if (uidNumber === undefined && !entry) {
    throw new ImageError('IMAGE_USER_NOT_FOUND', `user "${userPart}" is not in /etc/passwd of ${image.reference}`, {
      fix: 'use a numeric uid, or a user name the image defines',
    });
  }
  const uid = uidNumber ?? entry!.uid;

  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const gidNumber = numericId(groupPart);
    const group = gidNumber === undefined ? groups.find((g) => g.name === groupPart) : undefined;
    if (gidNumber === undefined && !group) {
      throw new ImageError('IMAGE_GROUP_NOT_FOUND', `group "${groupPart}" is not in /etc/group of ${image.reference}`, {
        fix: 'use a numeric gid, or a group name the image defines',
      });
    }
    gid = gidNumber ?? group!.gid;
  }
  const additionalGids = entry
    ? [...new Set(groups.filter((g) => g.members.includes(entry.name) && g.gid !== gid).map((g) => g.gid))]
    : [];
  return { uid, gid, additionalGids };
}

function numericId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new ImageError('IMAGE_INVALID_USER', `id ${s} is out of range`);
  return n;
}

function fields(file: Buffer | undefined): string[][] {
  if (!file) return [];
  return file.toString('utf8').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

function parsePasswd(file: Buffer | undefined): PasswdEntry[] {
  return fields(file).filter((f) => f.length >= 4 && /^\d+$/.test(f[2]!) && /^\d+$/.test(f[3]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) }));
}

function parseGroup(file: Buffer | undefined): GroupEntry[] {
  return fields(file).filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}
