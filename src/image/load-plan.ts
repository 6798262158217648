// Reads the selected manifest and its config (both verified) into a plan:
// the image config and, per layer, where its blob is and what it must hash to.
import { ImageError } from '../errors.ts';
import { parseDigest, parseJson, readVerified } from './digest.ts';
import type { Digest } from './digest.ts';
import { isConfig, isLayer } from './media-types.ts';
import { blobPath } from './select-manifest.ts';
import type { Descriptor } from './select-manifest.ts';
import type { ContentSource, ImageSource } from './source/types.ts';
import type { ImageConfig } from './types.ts';

export interface LayerPlan {
  /** digest of the uncompressed tar: the cache key */
  diffId: Digest;
  /** where a layout or archive keeps the blob; undefined for registries and daemons */
  blobPath?: string;
  /** digest and size of the blob as stored; unknown for legacy `<id>/layer.tar` members */
  blobDigest?: Digest;
  blobSize?: number;
  mediaType?: string;
}

export interface ImagePlan {
  manifestDigest: string;
  config: ImageConfig;
  /** bottom-most first, as in the manifest */
  layers: LayerPlan[];
}

interface ConfigBlob {
  config?: ImageConfig | null;
  rootfs?: { type?: string; diff_ids?: unknown };
}

const MAX_LAYERS = 500;

/** An OCI or Docker schema 2 manifest (from any source) -> plan. */
export async function loadPlan(content: ContentSource, reference: string, selected: { digest: string; descriptor: Descriptor }): Promise<ImagePlan> {
  const what = `${reference}: manifest ${selected.digest}`;
  const manifest = parseJson(await content.readManifest(selected.descriptor, what), what) as { config?: Descriptor; layers?: Descriptor[]; schemaVersion?: number };
  if (!manifest.config || !Array.isArray(manifest.layers)) {
    throw new ImageError('IMAGE_INVALID_MANIFEST', `${what} has no config or layers (schema ${manifest.schemaVersion ?? '?'})`, {
      fix: 'only Docker schema 2 and OCI image manifests are supported; re-export with skopeo copy',
    });
  }
  if (!isConfig(manifest.config.mediaType)) {
    throw new ImageError('IMAGE_NOT_A_CONTAINER_IMAGE', `${what}: config media type ${manifest.config.mediaType} is not a container image config (an OCI artifact?)`);
  }
  const configWhat = `${reference}: config ${manifest.config.digest}`;
  const config = parseJson(await content.readBlob(manifest.config, configWhat), configWhat) as ConfigBlob;
  const diffIds = diffIdsOf(config, manifest.layers.length, configWhat);
  const layers = manifest.layers.map((d, i): LayerPlan => {
    if (!isLayer(d.mediaType)) {
      throw new ImageError('IMAGE_UNSUPPORTED_MEDIA_TYPE', `${reference}: layer ${d.digest} has media type ${d.mediaType}`, {
        fix: 'supported layers are tar, tar+gzip and tar+zstd (OCI or Docker media types); encrypted layers are not',
      });
    }
    const digest = parseDigest(d.digest, `${reference}: layer ${i}`);
    return { diffId: diffIds[i]!, blobPath: blobPath(digest), blobDigest: digest, blobSize: d.size, mediaType: d.mediaType };
  });
  return { manifestDigest: selected.digest, config: config.config ?? {}, layers };
}

/** A docker-archive's manifest.json entry -> plan (its members are named by path). */
export async function loadLegacyPlan(source: ImageSource, reference: string, manifestDigest: string, m: { Config: string; Layers: string[] }): Promise<ImagePlan> {
  const configWhat = `${reference}: config ${m.Config}`;
  if (source.size(m.Config) === undefined) throw new ImageError('IMAGE_BLOB_MISSING', `${configWhat} is missing from the archive`);
  const config = parseJson(await readVerified(source.open(m.Config), configWhat, digestFromPath(m.Config)), configWhat) as ConfigBlob;
  const diffIds = diffIdsOf(config, m.Layers.length, configWhat);
  const layers = m.Layers.map((path, i): LayerPlan => {
    if (source.size(path) === undefined) throw new ImageError('IMAGE_BLOB_MISSING', `${reference}: layer ${path} is missing from the archive`);
    return { diffId: diffIds[i]!, blobPath: path, blobDigest: digestFromPath(path), blobSize: undefined };
  });
  return { manifestDigest, config: config.config ?? {}, layers };
}

/** `blobs/sha256/<hex>` and `<hex>.json` names carry the content digest; `<id>/layer.tar` does not. */
function digestFromPath(path: string): Digest | undefined {
  const m = /(?:^|\/)(?:blobs\/)?(sha256|sha512)\/([a-f0-9]{64,128})$/.exec(path) ?? /^(?:.*\/)?([a-f0-9]{64})\.json$/.exec(path);
  if (!m) return undefined;
  return m.length === 3 ? parseDigest(`${m[1]}:${m[2]}`, path) : parseDigest(`sha256:${m[1]}`, path);
}

function diffIdsOf(config: ConfigBlob, layerCount: number, what: string): Digest[] {
  const ids = config.rootfs?.diff_ids;
  if (!Array.isArray(ids) || ids.length !== layerCount) {
    throw new ImageError('IMAGE_INVALID_CONFIG', `${what}: rootfs.diff_ids lists ${Array.isArray(ids) ? ids.length : 'no'} layers, the manifest ${layerCount}`);
  }
  if (layerCount > MAX_LAYERS) throw new ImageError('IMAGE_INVALID_MANIFEST', `${what}: ${layerCount} layers is more than the ${MAX_LAYERS} supported`);
  return ids.map((id, i) => parseDigest(id, `${what}: diff_ids[${i}]`));
}
