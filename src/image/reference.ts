// What the user wrote: PATH, PATH:TAG or PATH@sha256:HEX. Paths may themselves
// contain ':' and tags may contain '/' (docker.io/library/redis:7), so the path
// is the longest prefix, cut at a ':' or '@', that exists on disk.
import { accessSync, constants, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ImageError } from '../errors.ts';
import { parseDigest } from './digest.ts';
import type { Digest } from './digest.ts';

export interface ImageReference {
  /** what the user wrote */
  raw: string;
  /** absolute path of the layout directory or archive */
  path: string;
  tag?: string;
  digest?: Digest;
}

/** A path the user may not read (or whose directory they may not enter) is not a missing one. */
export function imagePermissionDenied(raw: string, path: string): ImageError {
  return new ImageError('IMAGE_PERMISSION_DENIED', `image "${raw}": permission denied reading ${path} (as uid ${process.getuid?.() ?? '?'})`, {
    fix: `let this user read it: chmod -R a+rX ${path} (and a+x on the directories above it), or run as its owner`,
  });
}

/** True when path exists; a permission problem on the way is an error of its own. */
function pathExists(path: string, raw: string): boolean {
  try {
    statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw imagePermissionDenied(raw, path);
    return false;
  }
  return true;
}

/** Throws IMAGE_PERMISSION_DENIED unless this user can read path (and enter it, if a directory). */
export function assertReadable(raw: string, path: string, directory: boolean): void {
  try {
    accessSync(path, directory ? constants.R_OK | constants.X_OK : constants.R_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw imagePermissionDenied(raw, path);
  }
}

export function parseReference(raw: string, cwd = process.cwd()): ImageReference {
  let rest = raw;
  let digest: Digest | undefined;
  const at = raw.lastIndexOf('@');
  if (at > 0 && /^[a-z0-9]+:[a-f0-9]+$/.test(raw.slice(at + 1)) && !pathExists(resolve(cwd, raw), raw)) {
    digest = parseDigest(raw.slice(at + 1), `image reference ${raw}`);
    rest = raw.slice(0, at);
  }
  if (pathExists(resolve(cwd, rest), raw)) return { raw, path: resolve(cwd, rest), digest };
  for (let i = rest.indexOf(':'); i > 0; i = rest.indexOf(':', i + 1)) {
    const candidate = resolve(cwd, rest.slice(0, i));
    if (pathExists(candidate, raw)) return { raw, path: candidate, tag: rest.slice(i + 1), digest };
  }
  throw new ImageError('IMAGE_NOT_FOUND', `image "${raw}" not found: no file or directory ${resolve(cwd, rest)}`, {
    fix: 'give the path of an OCI image layout directory (skopeo copy ... oci:DIR) or of a docker-archive tar (docker save -o FILE), relative to the working directory',
  });
}
