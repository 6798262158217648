// Opens what the user named: an OCI layout directory or an image tar archive.
import { statSync } from 'node:fs';
import { ImageError } from '../../errors.ts';
import { assertReadable } from '../reference.ts';
import { DirectorySource } from './directory.ts';
import { TarArchiveSource } from './tar-archive.ts';
import type { ImageSource } from './types.ts';

/** Archives are indexed once per process: re-reading headers of a 100-layer tar costs ~1 ms. */
const archives = new Map<string, TarArchiveSource>();

export function openSource(path: string): ImageSource {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) throw new ImageError('IMAGE_NOT_FOUND', `image ${path} does not exist`);
  assertReadable(path, path, st.isDirectory());
  if (st.isDirectory()) return new DirectorySource(path);
  const key = `${path}:${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
  let source = archives.get(key);
  if (!source) {
    source = new TarArchiveSource(path);
    archives.set(key, source);
  }
  return source;
}
