// From what the user named to one image manifest: walks index.json (and nested
// indexes) by tag, digest and platform, or reads a legacy docker-archive
// manifest.json.
import { ImageError } from '../errors.ts';
import { formatDigest, parseDigest, parseJson, readVerified, sha256 } from './digest.ts';
import type { Digest } from './digest.ts';
import { isIndex, isManifest } from './media-types.ts';
import { formatPlatform, platformScore } from './platform.ts';
import type { Platform } from './platform.ts';
import type { ImageReference } from './reference.ts';
import { fileContent } from './source/file-content.ts';
import type { ContentSource, ImageSource } from './source/types.ts';

export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** One entry of a docker-archive manifest.json. */
export interface LegacyManifest {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

export type SelectedManifest =
  | { kind: 'oci'; digest: string; descriptor: Descriptor }
  | { kind: 'legacy'; digest: string; manifest: LegacyManifest };

const MAX_INDEX_DEPTH = 4;

export async function selectManifest(source: ImageSource, ref: ImageReference, platform: Platform): Promise<SelectedManifest> {
  const hasIndex = source.size('index.json') !== undefined;
  const hasLegacy = source.size('manifest.json') !== undefined;
  if (!hasIndex && !hasLegacy) {
    throw new ImageError('IMAGE_NOT_AN_IMAGE', `${ref.raw}: ${source.location} has neither index.json (OCI layout) nor manifest.json (docker-archive)`, {
      fix: 'export the image with `skopeo copy IMAGE oci:DIR`, `docker save -o FILE IMAGE` or `podman save -o FILE IMAGE`',
    });
  }
  if (hasIndex) {
    const index = await readTopIndex(source, ref);
    const candidates = ref.digest ? findByDigest(index, ref.digest) : ref.tag ? index.filter((d) => tagMatches(d, ref.tag!)) : index;
    if (candidates.length || !hasLegacy) {
      if (!candidates.length && ref.digest) return { kind: 'oci', ...await descriptorFromBlob(source, ref, ref.digest, platform) };
      return { kind: 'oci', ...await pick(fileContent(source), ref, candidates, platform, 0, index) };
    }
  }
  return selectLegacy(source, ref);
}

async function readTopIndex(source: ImageSource, ref: ImageReference): Promise<Descriptor[]> {
  const json = parseJson(await readVerified(source.open('index.json'), `${ref.raw}: index.json`, undefined), `${ref.raw}: index.json`);
  return descriptors(json, `${ref.raw}: index.json`);
}

function descriptors(json: unknown, what: string): Descriptor[] {
  const list = (json as { manifests?: unknown })?.manifests;
  if (!Array.isArray(list)) throw new ImageError('IMAGE_INVALID_INDEX', `${what} has no "manifests" list`);
  for (const d of list as Descriptor[]) {
    parseDigest(d?.digest, what);
    if (typeof d.size !== 'number') throw new ImageError('IMAGE_INVALID_INDEX', `${what}: descriptor ${d.digest} has no size`);
  }
  return list as Descriptor[];
}

function tagMatches(d: Descriptor, tag: string): boolean {
  const a = d.annotations ?? {};
  const refName = a['org.opencontainers.image.ref.name'];
  const imageName = a['io.containerd.image.name'];
  return refName === tag || imageName === tag || (imageName?.endsWith(`:${tag}`) ?? false);
}

function findByDigest(index: Descriptor[], digest: Digest): Descriptor[] {
  return index.filter((d) => d.digest === formatDigest(digest));
}

function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest'
    || (d.platform?.os === 'unknown' && d.platform?.architecture === 'unknown');
}

/**
 * The image manifest for this platform, starting from a registry's answer for a
 * tag or digest: the manifest itself, or an index to choose from.
 */
export async function choosePlatformManifest(content: ContentSource, reference: string, top: Descriptor, platform: Platform): Promise<{ digest: string; descriptor: Descriptor }> {
  return pick(content, { raw: reference }, [top], platform, 0, [top]);
}

/** Chooses one descriptor at this level, then descends into nested indexes. */
async function pick(content: ContentSource, ref: Pick<ImageReference, 'raw' | 'tag'>, list: Descriptor[], platform: Platform, depth: number, all: Descriptor[]): Promise<{ digest: string; descriptor: Descriptor }> {
  if (depth > MAX_INDEX_DEPTH) throw new ImageError('IMAGE_INVALID_INDEX', `${ref.raw}: image indexes nested more than ${MAX_INDEX_DEPTH} deep`);
  const usable = list.filter((d) => !isAttestation(d));
  let chosen: Descriptor | undefined;
  if (usable.some((d) => d.platform)) {
    let best = 0;
    for (const d of usable) {
      const score = d.platform ? platformScore(d.platform, platform) : 0;
      if (score > best) [best, chosen] = [score, d];
    }
    if (!chosen) {
      const offered = usable.map((d) => (d.platform ? formatPlatform(d.platform) : 'unspecified'));
      throw new ImageError('IMAGE_PLATFORM_NOT_FOUND', `${ref.raw} offers ${offered.join(', ')}; none matches ${formatPlatform(platform)}`, {
        fix: `use an image built for ${formatPlatform(platform)}, or pass the platform option to choose one of those offered`,
      });
    }
  } else if (usable.length === 1) {
    chosen = usable[0];
  } else if (usable.length === 0) {
    const why = ref.tag ? `has no image tagged "${ref.tag}"` : 'lists no image';
    throw new ImageError('IMAGE_TAG_NOT_FOUND', `${ref.raw} ${why}; it has: ${describeAll(all)}`, {
      fix: 'name one of the images listed, as PATH:TAG or PATH@sha256:DIGEST',
    });
  } else {
    throw new ImageError('IMAGE_AMBIGUOUS', `${ref.raw} holds ${usable.length} images; say which: ${describeAll(usable)}`, {
      fix: 'name one of them, as PATH:TAG or PATH@sha256:DIGEST',
    });
  }
  chosen = chosen!;
  if (isIndex(chosen.mediaType)) {
    const what = `${ref.raw}: index ${chosen.digest}`;
    const nested = descriptors(parseJson(await content.readManifest(chosen, what), what), what);
    return pick(content, ref, nested, platform, depth + 1, nested);
  }
  if (chosen.mediaType !== undefined && !isManifest(chosen.mediaType)) {
    throw new ImageError('IMAGE_UNSUPPORTED_MEDIA_TYPE', `${ref.raw}: ${chosen.digest} has media type ${chosen.mediaType}, not an image manifest or index`);
  }
  return { digest: chosen.digest, descriptor: chosen };
}

function describeAll(list: Descriptor[]): string {
  if (!list.length) return 'nothing';
  return list.map((d) => {
    const a = d.annotations ?? {};
    const name = a['org.opencontainers.image.ref.name'] ?? a['io.containerd.image.name'];
    return name ? `${name} (${d.digest})` : d.digest;
  }).join(', ');
}

/** PATH@sha256:... naming a blob that index.json does not list directly (e.g. a platform manifest). */
async function descriptorFromBlob(source: ImageSource, ref: ImageReference, digest: Digest, platform: Platform): Promise<{ digest: string; descriptor: Descriptor }> {
  const path = blobPath(digest);
  const size = source.size(path);
  if (size === undefined) {
    throw new ImageError('IMAGE_TAG_NOT_FOUND', `${ref.raw}: no manifest or blob ${formatDigest(digest)} in ${source.location}`);
  }
  const descriptor: Descriptor = { digest: formatDigest(digest), size };
  const what = `${ref.raw}: blob ${descriptor.digest}`;
  const json = parseJson(await readBlob(source, descriptor, what), what) as { mediaType?: string; manifests?: unknown };
  descriptor.mediaType = json.mediaType ?? (json.manifests ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
  return pick(fileContent(source), ref, [descriptor], platform, 0, [descriptor]);
}

export function blobPath(d: Digest): string {
  return `blobs/${d.algorithm}/${d.hex}`;
}

export async function readBlob(source: ImageSource, d: Descriptor, what: string): Promise<Buffer> {
  const digest = parseDigest(d.digest, what);
  const path = blobPath(digest);
  if (source.size(path) === undefined) {
    throw new ImageError('IMAGE_BLOB_MISSING', `${what}: blob ${d.digest} is missing from ${source.location}`, {
      fix: 'the image layout is incomplete; re-export it',
    });
  }
  return readVerified(source.open(path), what, digest, d.size);
}

async function selectLegacy(source: ImageSource, ref: ImageReference): Promise<SelectedManifest> {
  const what = `${ref.raw}: manifest.json`;
  const raw = await readVerified(source.open('manifest.json'), what, undefined);
  const list = parseJson(raw, what);
  if (!Array.isArray(list) || list.some((m) => typeof m?.Config !== 'string' || !Array.isArray(m?.Layers))) {
    throw new ImageError('IMAGE_INVALID_MANIFEST', `${what} is not a docker-archive manifest ([{Config, RepoTags, Layers}])`);
  }
  const entries = list as LegacyManifest[];
  const tagged = (m: LegacyManifest): boolean => (m.RepoTags ?? []).some((t) => t === ref.tag || t.endsWith(`:${ref.tag}`));
  const matches = ref.tag ? entries.filter(tagged) : entries;
  const names = entries.map((m) => (m.RepoTags ?? []).join(' ') || m.Config).join(', ');
  if (matches.length !== 1 || ref.digest) {
    const code = matches.length > 1 ? 'IMAGE_AMBIGUOUS' : 'IMAGE_TAG_NOT_FOUND';
    throw new ImageError(code, `${ref.raw}: ${matches.length > 1 ? 'several images match' : 'no image matches'}; the archive has: ${names || 'nothing'}`, {
      fix: 'name one of them as PATH:TAG',
    });
  }
  const manifest = matches[0]!;
  // Legacy archives have no manifest digest; this one is stable for the same content
  // (the config path is the config's digest) and keys the resolved-image memo.
  return { kind: 'legacy', digest: sha256(JSON.stringify({ Config: manifest.Config, Layers: manifest.Layers })), manifest };
}
