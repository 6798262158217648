// An OCI image layout directory: index.json, oci-layout, blobs/<alg>/<hex>.
import { createReadStream, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ImageSource } from './types.ts';
import { ImageError } from '../../errors.ts';
import { UnsafeEntryError, normalizeEntryPath } from '../unpack/entry-path.ts';

export class DirectorySource implements ImageSource {
  readonly location: string;
  readonly identity: string;

  constructor(dir: string) {
    this.location = dir;
    this.identity = `dir:${dir}`;
  }

  size(path: string): number | undefined {
    const st = statSync(this.resolve(path), { throwIfNoEntry: false });
    return st?.isFile() ? st.size : undefined;
  }

  open(path: string): Readable {
    return createReadStream(this.resolve(path), { highWaterMark: 1 << 20 });
  }

  private resolve(path: string): string {
    // Paths come from manifest.json too: keep them inside the layout.
    try {
      return `${this.location}/${normalizeEntryPath(path, 'image member')}`;
    } catch (err) {
      if (!(err instanceof UnsafeEntryError)) throw err;
      throw new ImageError('IMAGE_INVALID_MANIFEST', `${this.location}: ${err.message}`);
    }
  }
}
