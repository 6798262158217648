// A committed image: the sandbox's writable layer, streamed once, becomes a real OCI layer
// (a tar, hashed for its diff_id as it is produced) and, from the same entries, the
// layer's unpacked directory in the layer cache (unpack/layer-writer.ts: owners shifted as
// root's cache keeps them, whiteouts and opaque directories in overlay form). The image is
// the base image's layers plus this one, with an OCI image config; the config's digest is
// its key (Docker's image id), so `cache:sha256:<id>` names it from any process.
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, closeSync, constants, mkdirSync, openSync, readSync } from 'node:fs';
import { logger } from '../../log.ts';
import { defaultCacheDir, imageMemoPath, imagesDir, layersDir, ownerShift, tmpDir } from '../cache-layout.ts';
import type { ImageMemo, LayerInfo } from '../cache-layout.ts';
import { cacheFault, removeTree, writeFileAtomic } from '../fs-util.ts';
import { DEFAULT_LIMITS } from '../image-store.ts';
import { placeLayer } from '../layer-store.ts';
import { hostPlatform } from '../platform.ts';
import type { TarEntry } from '../tar/parser.ts';
import { TAR_END, encodeTarHeader, tarPadding, type TarWriteEntry } from '../tar/writer.ts';
import type { ImageConfig } from '../types.ts';
import { LayerWriter } from '../unpack/layer-writer.ts';
import { layerEntries, type UpperEntry, type UpperSkips } from './upper-entries.ts';
import { StreamHash } from './stream-hash.ts';

const log = logger('image');

/** A staged file is read for its hash in pieces of at most this much. */
const STAGE_READ = 8 << 20;

/** The prefix of references to images in the layer cache by key: what commit() returns. */
export const CACHE_TRANSPORT = 'cache:';

export interface CommitBase {
  /** the reference the sandbox was started from */
  reference: string;
  /** its key in the cache (manifest digest, or image id for a committed image) */
  manifestDigest: string;
  /** diff_ids, bottom-most first */
  layers: string[];
  overlayOptions: string[];
}

export interface CommitResult {
  /** `cache:sha256:<image id>` */
  reference: string;
  imageId: string;
  diffId: string;
  tarBytes: number;
  entries: number;
  skipped: UpperSkips;
}

function asTarEntry(e: TarWriteEntry): TarEntry {
  return {
    path: e.path, type: e.type, typeflag: '', mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime,
    linkpath: e.linkpath, devmajor: e.devmajor, devminor: e.devminor, xattrs: e.xattrs, sparse: false,
  };
}

/** Receives the upper directory's entries (entry, data…, endEntry) and makes the image of them. */
export class LayerCommit {
  readonly #cache: string;
  readonly #base: CommitBase;
  readonly #config: ImageConfig;
  readonly #tmp: string;
  readonly #hash = new StreamHash();
  readonly #writer: LayerWriter;
  readonly #privileged = process.geteuid?.() === 0;
  readonly #skipped: UpperSkips = { sockets: 0, devices: 0 };
  #tarBytes = 0;
  #file: TarWriteEntry | undefined;
  #done = false;

  readonly #onTar: ((bytes: Buffer) => void) | undefined;

  /** onTar: sees the layer's tar as it is made (its sha256 is the diff_id): for an export, or a test. */
  constructor(base: CommitBase, config: ImageConfig, options: { cache?: string; onTar?: (bytes: Buffer) => void } = {}) {
    const cache = options.cache ?? defaultCacheDir();
    this.#onTar = options.onTar;
    this.#cache = cache;
    this.#base = base;
    this.#config = config;
    try {
      mkdirSync(tmpDir(cache), { recursive: true, mode: 0o700 });
      mkdirSync(layersDir(cache), { recursive: true, mode: 0o700 });
      this.#tmp = `${tmpDir(cache)}/commit.${process.pid}.${randomBytes(4).toString('hex')}`;
      mkdirSync(`${this.#tmp}/fs`, { recursive: true, mode: 0o755 });
      // Where the runtime writes the files' data once more (tree --stage), as the sandbox's root: its directory.
      mkdirSync(this.stageDir, { mode: 0o700 });
      const shift = ownerShift();
      if (shift) chownSync(this.stageDir, shift.uid, shift.gid);
    } catch (err) {
      throw cacheFault(err, cache, `commit of ${base.reference}`);
    }
    this.#writer = new LayerWriter({ root: `${this.#tmp}/fs`, privileged: this.#privileged, owners: ownerShift(), limits: DEFAULT_LIMITS });
  }

  #tar(bytes: Buffer): void {
    this.#hash.update(bytes);
    this.#onTar?.(bytes);
    this.#tarBytes += bytes.length;
  }

  #emit(e: TarWriteEntry): void {
    this.#tar(encodeTarHeader(e));
    this.#writer.entry(asTarEntry(e));
  }

  /** The directory `vtc-runtime tree --stage` writes the files' data to (then moved into place, not written again). */
  get stageDir(): string {
    return `${this.#tmp}/stage`;
  }

  entry(e: UpperEntry): void {
    const out = layerEntries(e, this.#skipped);
    // Only a regular file's (single) entry has data; the others end at once.
    const file = out.length === 1 && out[0]!.type === 'file' && out[0]!.size > 0 ? out[0] : undefined;
    if (file && e.staged !== undefined) return this.#adoptStaged(file, `${this.stageDir}/${e.staged}`);
    for (const item of out) this.#emit(item);
    this.#file = file;
    if (!this.#file) for (let i = 0; i < out.length; i++) this.#writer.endEntry();
  }

  /** A file the runtime copied to the stage directory: hashed from there, then moved into place. */
  #adoptStaged(file: TarWriteEntry, staged: string): void {
    this.#tar(encodeTarHeader(file));
    const fd = openSync(staged, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      for (let done = 0; done < file.size;) {
        // Buffers of their own (not Node's pool), so that they move to the hashing thread uncopied.
        const buf = Buffer.allocUnsafeSlow(Math.min(STAGE_READ, file.size - done));
        let got = 0;
        while (got < buf.length) {
          const n = readSync(fd, buf, got, buf.length - got, done + got);
          if (n === 0) throw new Error(`staged file ${staged} is shorter than the ${file.size} bytes recorded`);
          got += n;
        }
        this.#tar(buf);
        this.#hash.release(buf);
        done += got;
      }
    } finally {
      closeSync(fd);
    }
    this.#tar(tarPadding(file.size));
    this.#writer.adopt(asTarEntry(file), staged);
  }

  data(chunk: Buffer): void {
    if (!this.#file) return; // a whiteout file's or a skipped entry's data
    this.#tar(chunk);
    this.#writer.data(chunk);
  }

  endEntry(): void {
    if (!this.#file) return;
    this.#tar(tarPadding(this.#file.size));
    this.#writer.endEntry();
    this.#file = undefined;
  }

  /** The caller is done with a chunk it fed (data() had slices of it): its memory may go to the hashing thread. */
  release(chunk: Buffer): void {
    this.#hash.release(chunk);
  }

  /** After the last entry: the layer is placed in the cache and the image recorded. */
  async finish(): Promise<CommitResult> {
    this.#tar(TAR_END);
    this.#writer.finish();
    removeTree(this.stageDir); // empty: every staged file was moved into place
    const diffId = `sha256:${await this.#hash.digest()}`;
    const key = diffId.slice('sha256:'.length);
    const info: LayerInfo = {
      diffId, bytes: this.#writer.stats.bytes, entries: this.#writer.stats.entries, unpackedAt: new Date().toISOString(),
      xattrs: this.#privileged ? 'trusted+user' : 'user', skipped: this.#writer.stats.skipped,
      ...(ownerShift() ? { owners: ownerShift() } : {}),
    };
    const layers = [...this.#base.layers, diffId];
    const platform = hostPlatform();
    const ociConfig = {
      architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}),
      config: this.#config,
      rootfs: { type: 'layers', diff_ids: layers },
    };
    const imageId = `sha256:${createHash('sha256').update(JSON.stringify(ociConfig)).digest('hex')}`;
    const reference = `${CACHE_TRANSPORT}${imageId}`;
    const overlayOptions = [...new Set([...this.#base.overlayOptions, ...(this.#privileged ? [] : ['userxattr'])])];
    const memo: ImageMemo = {
      manifestDigest: imageId, reference, config: this.#config, layers, overlayOptions,
      committed: {
        reference: this.#base.reference, manifestDigest: this.#base.manifestDigest, layer: diffId, tarBytes: this.#tarBytes,
        committedAt: info.unpackedAt, ociConfig,
      },
    };
    try {
      writeFileAtomic(`${this.#tmp}/layer.json`, JSON.stringify(info));
      placeLayer(key, this.#tmp, this.#cache);
      mkdirSync(imagesDir(this.#cache), { recursive: true });
      writeFileAtomic(imageMemoPath(this.#cache, imageId), JSON.stringify(memo));
    } catch (err) {
      this.abort();
      throw cacheFault(err, this.#cache, `commit of ${this.#base.reference}`);
    }
    this.#done = true;
    log('committed %s: layer %s (%d entries, %d tar bytes) -> %s', this.#base.reference, key.slice(0, 12), info.entries, this.#tarBytes, imageId);
    return { reference, imageId, diffId, tarBytes: this.#tarBytes, entries: info.entries, skipped: { ...this.#skipped } };
  }

  /** Leaves nothing behind of a commit that did not finish. */
  abort(): void {
    this.#hash.discard();
    this.#writer.abort();
    if (!this.#done) removeTree(this.#tmp);
  }
}
