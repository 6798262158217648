// An image in a registry, over the OCI distribution protocol: the manifest for a
// tag or digest, nested manifests by digest, the config and layer blobs. Mirrors
// (from the registries config) are tried first, the registry itself last.
// Layer blobs are streamed to the unpacker as they arrive, and a download cut
// short is resumed with a Range request where the registry serves ranges.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { ImageError, RegistryError } from '../../../errors.ts';
import { logger } from '../../../log.ts';
import { formatDigest, readVerified, sha256 } from '../../digest.ts';
import type { LayerPlan } from '../../load-plan.ts';
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, isIndex, isManifest } from '../../media-types.ts';
import type { Descriptor } from '../../select-manifest.ts';
import type { ContentSource } from '../types.ts';
import { RegistryClient } from './client.ts';
import type { RegistriesConfig } from './config.ts';
import { readBody } from './http.ts';
import { apiHost, formatReference } from './reference.ts';
import type { RegistryReference } from './reference.ts';

const log = logger('image');

const ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ');
/** Range requests after a connection broke mid-blob, per blob. */
const MAX_RESUMES = 5;
export class RegistrySource implements ContentSource {
  readonly location: string;
  readonly ref: RegistryReference;
  /** mirrors first, the registry last */
  readonly clients: RegistryClient[];
  /** manifests already fetched, by digest: the tag's answer is not asked for twice */
  private readonly manifests = new Map<string, Buffer>();

  constructor(ref: RegistryReference, config: RegistriesConfig) {
    this.ref = ref;
    this.location = `${ref.registry}/${ref.repository}`;
    const mirrors = config.mirrors?.[ref.registry] ?? [];
    this.clients = [...mirrors, apiHost(ref.registry)].map((host) => new RegistryClient(ref.registry, host, ref.repository, config));
  }

  get registryClient(): RegistryClient {
    return this.clients[this.clients.length - 1]!;
  }

  /** What the tag (or digest) points at now: one manifest request. */
  async top(): Promise<Descriptor> {
    const reference = this.ref.digest ? formatDigest(this.ref.digest) : this.ref.tag!;
    const name = formatReference(this.ref);
    const { body, mediaType, digestHeader } = await this.fetchManifest(reference, name);
    const digest = sha256(body);
    const expected = this.ref.digest ? formatDigest(this.ref.digest) : digestHeader;
    if (expected && expected.startsWith('sha256:') && expected !== digest) {
      throw new ImageError('IMAGE_DIGEST_MISMATCH', `${name}: the manifest from ${this.location} hashes to ${digest}, expected ${expected}`, {
        fix: 'the registry (or something between it and you) altered the manifest; try again, or ask the registry\'s owner',
      });
    }
    this.manifests.set(digest, body);
    return { mediaType, digest, size: body.length };
  }

  async readManifest(d: Descriptor, what: string): Promise<Buffer> {
    let body = this.manifests.get(d.digest);
    if (!body) {
      body = (await this.fetchManifest(d.digest, what)).body;
      this.manifests.set(d.digest, body);
    }
    return readVerified(Readable.from([body]), what, { algorithm: 'sha256', hex: d.digest.slice('sha256:'.length) }, d.size);
  }

  async readBlob(d: Descriptor, what: string): Promise<Buffer> {
    const res = await this.openBlob(d.digest, 0, what);
    return readVerified(res, `${what} from ${this.location}`, { algorithm: 'sha256', hex: d.digest.slice('sha256:'.length) }, d.size);
  }

  openLayer(layer: LayerPlan): AsyncIterable<Buffer> {
    const digest = formatDigest(layer.blobDigest!);
    return this.layerChunks(digest, layer.blobSize, `${formatReference(this.ref)}: layer ${digest}`);
  }

  layerSize(layer: LayerPlan): number | undefined {
    return layer.blobSize;
  }

  /** The blob's bytes as they arrive; a broken connection is resumed from where it broke. */
  private async *layerChunks(digest: string, size: number | undefined, what: string): AsyncGenerator<Buffer> {
    let offset = 0;
    let res = await this.openBlob(digest, 0, what);
    for (let resumes = 0; ; resumes++) {
      const ranges = res.headers['accept-ranges'] === 'bytes' || res.statusCode === 206;
      const startedAt = offset;
      try {
        // Network reads (16-64 KiB) as they come: the unpacker batches them for zlib in buffers of its own.
        for await (const chunk of res as AsyncIterable<Buffer>) {
          offset += chunk.length;
          yield chunk;
        }
        return;
      } catch (err) {
        if (resumes > 0 && offset === startedAt && size !== undefined && offset < size) {
          // Asked for the rest and got nothing before the connection broke again: the registry has no more.
          throw new ImageError('IMAGE_SIZE_MISMATCH', `${what}: ${this.location} delivers ${offset} bytes and no more, the descriptor says ${size}`, {
            cause: err, fix: 'the blob in the registry is damaged; push the image again',
          });
        }
        if (!ranges || resumes >= MAX_RESUMES || (size !== undefined && offset >= size)) {
          throw new RegistryError('REGISTRY_DOWNLOAD_INTERRUPTED', `${what}: the download from ${this.location} broke after ${offset} bytes${ranges ? ` and ${resumes} resumptions` : ' and the registry does not serve byte ranges to resume it'}: ${(err as Error).message}`, {
            cause: err, fix: 'try again; nothing was committed to the cache',
          });
        }
        log('%s: connection broke after %d bytes, resuming with a Range request', what, offset);
        res = await this.openBlob(digest, offset, what, size);
      }
    }
  }

  private async fetchManifest(reference: string, what: string): Promise<{ body: Buffer; mediaType: string; digestHeader?: string }> {
    const res = await this.first(`manifests/${reference}`, { accept: ACCEPT }, what);
    if (res.statusCode === 404) throw await this.notFound(res, what, reference, 'manifest');
    const body = await readVerified(res, `${what}: the manifest`, undefined); // whole, at most MAX_JSON_BLOB
    const mediaType = manifestMediaType(res.headers['content-type'], body);
    if (!isIndex(mediaType) && !isManifest(mediaType)) {
      throw new ImageError('IMAGE_UNSUPPORTED_MEDIA_TYPE', `${what}: ${this.location} answered with a ${mediaType}, not an OCI or Docker schema 2 image manifest or index`, {
        fix: mediaType.includes('v1+prettyjws') || mediaType.includes('manifest.v1')
          ? 'Docker schema 1 images are not supported: push the image again with a current docker, podman or skopeo'
          : 'this reference names something that is not a container image (an artifact?)',
      });
    }
    const header = res.headers['docker-content-digest'];
    return { body, mediaType, digestHeader: typeof header === 'string' ? header : undefined };
  }

  private async openBlob(digest: string, offset: number, what: string, size?: number): Promise<IncomingMessage> {
    const headers = offset > 0 ? { range: `bytes=${offset}-` } : undefined;
    const res = await this.first(`blobs/${digest}`, headers, what);
    if (res.statusCode === 404) throw await this.notFound(res, what, digest, 'blob');
    if (offset > 0 && res.statusCode === 416) {
      res.resume();
      // Nothing after the bytes we have: the registry's blob is shorter than it promised.
      throw new ImageError('IMAGE_SIZE_MISMATCH', `${what}: ${this.location} sent ${offset} bytes and has no more${size === undefined ? '' : `, the descriptor says ${size}`}`, {
        fix: 'the blob in the registry is damaged; push the image again',
      });
    }
    if (offset > 0) {
      const range = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (res.statusCode !== 206 || Number(range?.[1]) !== offset) {
        res.destroy();
        throw new RegistryError('REGISTRY_DOWNLOAD_INTERRUPTED', `${what}: the download from ${this.location} broke after ${offset} bytes and the registry did not resume it (answered ${res.statusCode})`, {
          fix: 'try again; nothing was committed to the cache',
        });
      }
    }
    return res;
  }

  /** The first endpoint that answers: a mirror that fails or lacks the content passes to the next. */
  private async first(path: string, headers: Record<string, string> | undefined, what: string): Promise<IncomingMessage> {
    for (const [i, client] of this.clients.entries()) {
      const last = i === this.clients.length - 1;
      try {
        const res = await client.request(path, { headers, what });
        if (res.statusCode === 404 && !last) {
          res.resume();
          log('%s: mirror %s does not have %s', what, client.endpoint.host, path);
          continue;
        }
        return res;
      } catch (err) {
        if (last) throw err;
        log('%s: mirror %s failed (%s), trying the next', what, client.endpoint.host, (err as Error).message);
      }
    }
    throw new Error('unreachable');
  }

  private async notFound(res: IncomingMessage, what: string, reference: string, kind: 'manifest' | 'blob'): Promise<RegistryError> {
    const body = await readBody(res, 64 * 1024);
    let code = '';
    try {
      code = (JSON.parse(body) as { errors?: { code?: string }[] }).errors?.[0]?.code ?? '';
    } catch { /* not the registry's JSON error */ }
    const registry = this.ref.registry;
    if (code === 'NAME_UNKNOWN') return this.notFoundRepository(what);
    if (kind === 'blob') {
      return new RegistryError('REGISTRY_BLOB_NOT_FOUND', `${what}: ${registry}/${this.ref.repository} has no blob ${reference}`, {
        fix: 'the image in the registry is incomplete; push it again',
      });
    }
    // Registries answer MANIFEST_UNKNOWN for a missing repository too: the tag list tells them apart.
    const tags = code === 'NAME_UNKNOWN' ? undefined : await this.tags(what);
    if (tags === null) return this.notFoundRepository(what);
    const isDigest = reference.startsWith('sha256:');
    const has = tags?.length ? `; it has ${tags.slice(0, 10).join(', ')}${tags.length > 10 ? `, … (${tags.length} tags)` : ''}` : '';
    return new RegistryError('REGISTRY_TAG_NOT_FOUND', `${what}: ${registry}/${this.ref.repository} has no ${isDigest ? 'manifest' : 'tag'} ${reference}${has}`, {
      fix: `check the ${isDigest ? 'digest' : 'tag'} (skopeo list-tags docker://${registry}/${this.ref.repository} lists the tags)`,
    });
  }

  private notFoundRepository(what: string): RegistryError {
    const registry = this.ref.registry;
    return new RegistryError('REGISTRY_REPOSITORY_NOT_FOUND', `${what}: ${registry} has no repository ${this.ref.repository}`, {
      fix: `check the name${registry === 'docker.io' && this.ref.repository.startsWith('library/') ? ' (a short name like "redis" means docker.io/library/redis)' : ''}; a local image needs a path starting with ./ or / (or oci:DIR)`,
    });
  }

  /** The repository's tags; null when the repository does not exist, undefined when the registry will not say. */
  private async tags(what: string): Promise<string[] | null | undefined> {
    try {
      const res = await this.registryClient.request('tags/list', { what });
      const body = await readBody(res, 1 << 20);
      if (res.statusCode === 404) return /NAME_UNKNOWN/.test(body) ? null : undefined;
      return (JSON.parse(body) as { tags?: string[] | null }).tags ?? [];
    } catch {
      return undefined;
    }
  }
}

/** The Content-Type, or (for registries that say application/json) the manifest's own mediaType field. */
function manifestMediaType(contentType: string | undefined, body: Buffer): string {
  const type = (contentType ?? '').split(';')[0]!.trim();
  if (isIndex(type) || isManifest(type) || (type && type !== 'application/json' && type !== 'text/plain')) return type;
  try {
    const json = JSON.parse(body.toString('utf8')) as { mediaType?: string; manifests?: unknown; schemaVersion?: number };
    if (json.mediaType) return json.mediaType;
    if (json.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+json';
    return json.manifests ? OCI_INDEX : OCI_MANIFEST;
  } catch {
    return type || 'unknown';
  }
}
