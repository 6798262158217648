import type { Readable } from 'node:stream';

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
