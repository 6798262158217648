import type { Readable } from 'node:stream';
import type { LayerPlan } from '../load-plan.ts';
import type { Descriptor } from '../select-manifest.ts';

/**
 * Where an image's files live: an OCI layout directory or a tar archive
 * (docker-archive, or an OCI layout tarred). Paths are '/'-separated and
 * relative to the layout root, e.g. 'index.json', 'blobs/sha256/<hex>'.
 */
export interface ImageSource {
  /** the file or directory, for messages */
  readonly location: string;
  /** a key that changes when the source's content may have changed */
  readonly identity: string;
  /** size of a member, or undefined when it does not exist */
  size(path: string): number | undefined;
  open(path: string): Readable;
}

/**
 * What every source yields once the image is chosen: manifests and blobs by
 * descriptor. A layout or archive reads them from files, a registry over HTTP.
 * Everything after this (verification, unpack, cache) is shared.
 */
export interface ContentSource {
  /** where the content comes from, for messages: a path, or registry/repository */
  readonly location: string;
  /** an image index or manifest, its digest and size verified */
  readManifest(d: Descriptor, what: string): Promise<Buffer>;
  /** a small blob (the image config), its digest and size verified */
  readBlob(d: Descriptor, what: string): Promise<Buffer>;
  /**
   * A layer's blob as it is stored, to be read once with `for await`; leaving the loop early
   * releases it (closes the file or the connection). The unpacker verifies digest and size while reading.
   */
  openLayer(layer: LayerPlan): AsyncIterable<Buffer>;
  /** the blob's size when the plan does not know it (legacy archives) */
  layerSize(layer: LayerPlan): number | undefined;
}
