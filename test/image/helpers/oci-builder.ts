// Writes OCI image layouts by hand (blobs, manifests, configs, indexes) for the
// cases third-party tools cannot make: hostile layers, zstd, several platforms.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { gzipSync, zstdCompressSync } from 'node:zlib';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export class OciLayoutBuilder {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(`${dir}/blobs/sha256`, { recursive: true });
    writeFileSync(`${dir}/oci-layout`, '{"imageLayoutVersion":"1.0.0"}');
  }

  blob(content: Buffer | string, mediaType: string): Descriptor {
    const buf = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const digest = sha256(buf);
    writeFileSync(`${this.dir}/blobs/sha256/${digest.slice(7)}`, buf);
    return { mediaType, digest, size: buf.length };
  }

  layer(tar: Buffer, compression: Compression = 'gzip', docker = false): { descriptor: Descriptor; diffId: string } {
    const data = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar;
    const mediaType = docker
      ? `application/vnd.docker.image.rootfs.diff.tar${compression === 'gzip' ? '.gzip' : compression === 'zstd' ? '.zstd' : ''}`
      : `application/vnd.oci.image.layer.v1.tar${compression === 'none' ? '' : `+${compression}`}`;
    return { descriptor: this.blob(data, mediaType), diffId: sha256(tar) };
  }

  /** An image manifest over the given layer tars (bottom first). */
  image(layers: Buffer[], opts: { compression?: Compression; config?: object; architecture?: string; docker?: boolean; diffIds?: string[] } = {}): Descriptor {
    const made = layers.map((t) => this.layer(t, opts.compression ?? 'gzip', opts.docker));
    const config = this.blob(JSON.stringify({
      architecture: opts.architecture ?? 'amd64', os: 'linux', config: opts.config ?? {},
      rootfs: { type: 'layers', diff_ids: opts.diffIds ?? made.map((m) => m.diffId) },
    }), opts.docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json');
    const mediaType = opts.docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json';
    return this.blob(JSON.stringify({ schemaVersion: 2, mediaType, config, layers: made.map((m) => m.descriptor) }), mediaType);
  }

  index(manifests: Descriptor[]): Descriptor {
    const mediaType = 'application/vnd.oci.image.index.v1+json';
    return this.blob(JSON.stringify({ schemaVersion: 2, mediaType, manifests }), mediaType);
  }

  writeIndex(manifests: Descriptor[]): void {
    writeFileSync(`${this.dir}/index.json`, JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
  }
}

/** A one-image layout: the common case for tests. */
export function writeImage(dir: string, layers: Buffer[], opts: Parameters<OciLayoutBuilder['image']>[1] = {}): Descriptor {
  const b = new OciLayoutBuilder(dir);
  const m = b.image(layers, opts);
  b.writeIndex([m]);
  return m;
}
