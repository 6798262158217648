// Image references as Docker writes them: [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST],
// normalised the way Docker does (redis:7 -> docker.io/library/redis:7).
import { ImageError } from '../../../errors.ts';
import { formatDigest, parseDigest } from '../../digest.ts';
import type { Digest } from '../../digest.ts';

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API really answers. */
const DOCKER_HUB_API = 'registry-1.docker.io';

export interface RegistryReference {
  /** what the user wrote */
  raw: string;
  /** registry host[:port], 'docker.io' for Docker Hub */
  registry: string;
  /** repository path inside the registry, 'library/redis' */
  repository: string;
  /** the tag; 'latest' when neither tag nor digest was given */
  tag?: string;
  digest?: Digest;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

/** The first path component names a registry when it looks like a host: a dot, a port, or localhost. */
function isRegistryHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[');
}

/** Parses a reference, or returns undefined when `raw` is not one (the caller may try it as a path). */
export function tryParseRegistryReference(raw: string): RegistryReference | undefined {
  let rest = raw;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    if (!/^[a-z0-9]+:[a-f0-9]+$/.test(rest.slice(at + 1))) return undefined;
    try {
      digest = parseDigest(rest.slice(at + 1), raw);
    } catch {
      return undefined;
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  if (parts.length > 1 && isRegistryHost(parts[0]!)) {
    registry = parts.shift()!;
    if (!HOST.test(registry)) return undefined;
  }
  if (!parts.length || !parts.every((p) => COMPONENT.test(p)) || rest.length > 255) return undefined;
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  return { raw, registry, repository: parts.join('/'), tag: tag ?? (digest ? undefined : 'latest'), digest };
}

export function parseRegistryReference(raw: string): RegistryReference {
  const ref = tryParseRegistryReference(raw);
  if (!ref) {
    throw new ImageError('IMAGE_INVALID_REFERENCE', `"${raw}" is not an image reference`, {
      fix: 'write it as NAME[:TAG] or REGISTRY[:PORT]/PATH[:TAG][@sha256:DIGEST] in lower case, e.g. redis:7 or ghcr.io/acme/api:1.4',
    });
  }
  return ref;
}

/** docker.io/library/redis:7, registry.example:5000/team/app@sha256:... */
export function formatReference(ref: RegistryReference): string {
  const name = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return `${name}${ref.tag ? `:${ref.tag}` : ''}@${formatDigest(ref.digest)}`;
  return `${name}:${ref.tag ?? 'latest'}`;
}

/** The host the registry's HTTP API answers on. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}
