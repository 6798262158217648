// What an `image` string names, decided before anything is opened:
//
//   oci:DIR[:TAG|@DIGEST]            an OCI layout directory
//   oci-archive:FILE[:TAG]           a tarred OCI layout
//   docker-archive:FILE[:NAME:TAG]   a docker save / podman save tar
//   docker://REF                     a registry (REF as below)
//   docker-daemon:NAME[:TAG]         the local Docker (or podman) daemon's image store
//   /abs, ./rel, ../rel, ~/rel       a path (layout directory or archive), as always
//   anything else                    a path when it exists and is an image (a file, or a
//                                    directory with index.json or manifest.json: existing
//                                    relative paths keep working); otherwise a registry
//                                    reference (redis:7 -> docker.io/library/redis:7)
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { ImageError } from '../errors.ts';
import { parseReference } from './reference.ts';
import type { ImageReference } from './reference.ts';
import { parseRegistryReference, tryParseRegistryReference } from './source/registry/reference.ts';
import type { RegistryReference } from './source/registry/reference.ts';

export type ImageName =
  | { kind: 'files'; ref: ImageReference }
  | { kind: 'registry'; ref: RegistryReference; /** a bare name that is also an existing, non-image path: said in errors */ shadowedPath?: string }
  | { kind: 'daemon'; name: string };

const FILE_TRANSPORTS = ['oci:', 'oci-archive:', 'docker-archive:'];

export function classifyImageName(raw: string, cwd = process.cwd()): ImageName {
  for (const prefix of FILE_TRANSPORTS) {
    if (raw.startsWith(prefix)) return { kind: 'files', ref: { ...parseReference(expandHome(raw.slice(prefix.length)), cwd), raw } };
  }
  if (raw.startsWith('docker://')) return { kind: 'registry', ref: { ...parseRegistryReference(raw.slice('docker://'.length)), raw } };
  if (raw.startsWith('docker-daemon:')) {
    const name = raw.slice('docker-daemon:'.length);
    if (!name) throw new ImageError('IMAGE_INVALID_REFERENCE', `"${raw}" names no image`, { fix: 'write docker-daemon:NAME[:TAG], e.g. docker-daemon:my-app:latest' });
    return { kind: 'daemon', name };
  }
  if (/^(?:\/|\.\.?(?:\/|$)|~\/)/.test(raw)) return { kind: 'files', ref: { ...parseReference(expandHome(raw), cwd), raw } };
  const registryRef = tryParseRegistryReference(raw);
  const local = localImage(raw, cwd);
  if (local) return { kind: 'files', ref: local };
  if (registryRef) {
    const path = resolve(cwd, raw.split(/[:@]/)[0]!);
    return { kind: 'registry', ref: registryRef, shadowedPath: existsSync(path) ? path : undefined };
  }
  // Neither: let the path parser say what is missing, as it always has.
  return { kind: 'files', ref: parseReference(raw, cwd) };
}

/** The reference as a path, when what it names exists and looks like an image. */
function localImage(raw: string, cwd: string): ImageReference | undefined {
  let ref: ImageReference;
  try {
    ref = parseReference(raw, cwd);
  } catch {
    return undefined;
  }
  const st = statSync(ref.path, { throwIfNoEntry: false });
  if (st?.isFile()) return ref;
  if (st?.isDirectory() && (existsSync(`${ref.path}/index.json`) || existsSync(`${ref.path}/manifest.json`))) return ref;
  return undefined;
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}
