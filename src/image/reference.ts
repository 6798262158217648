// What the user wrote: PATH, PATH:TAG or PATH@sha256:HEX. Paths may themselves
// contain ':' and tags may contain '/' (docker.io/library/redis:7), so the path
// is the longest prefix, cut at a ':' or '@', that exists on disk.
import { existsSync } from 'node:fs';
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

export function parseReference(raw: string, cwd = process.cwd()): ImageReference {
  let rest = raw;
  let digest: Digest | undefined;
  const at = raw.lastIndexOf('@');
  if (at > 0 && /^[a-z0-9]+:[a-f0-9]+$/.test(raw.slice(at + 1)) && !existsSync(resolve(cwd, raw))) {
    digest = parseDigest(raw.slice(at + 1), `image reference ${raw}`);
    rest = raw.slice(0, at);
  }
  if (existsSync(resolve(cwd, rest))) return { raw, path: resolve(cwd, rest), digest };
  for (let i = rest.indexOf(':'); i > 0; i = rest.indexOf(':', i + 1)) {
    const candidate = resolve(cwd, rest.slice(0, i));
    if (existsSync(candidate)) return { raw, path: candidate, tag: rest.slice(i + 1), digest };
  }
  throw new ImageError('IMAGE_NOT_FOUND', `image "${raw}" not found: no file or directory ${resolve(cwd, rest)}`, {
    fix: 'give the path of an OCI image layout directory (skopeo copy ... oci:DIR) or of a docker-archive tar (docker save -o FILE), relative to the working directory',
  });
}
