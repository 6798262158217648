// Turning a tar entry name into a path relative to the layer root, refusing
// anything that could point elsewhere. Layers are hostile input: an absolute
// name or a ".." component is never legitimate in an image layer, so these
// fail the layer instead of being silently rewritten.

export class UnsafeEntryError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const MAX_PATH = 4096;
const MAX_NAME = 255;

/** An empty, "." or ".." component, or a leading "/" (an empty first one). */
const SPECIAL_PART = /(?:^|\/)\.{0,2}(?:\/|$)/;

/** 'a/b/c' for './a//b/c/'; '' for the root itself. */
export function normalizeEntryPath(name: string, what = 'entry'): string {
  // The usual name, taken as it is: short enough that no part can exceed 255 bytes, nothing to drop or refuse.
  if (name.length <= MAX_NAME / 3) {
    const start = name.startsWith('./') ? 2 : 0;
    const rel = name.slice(start, name.endsWith('/') ? -1 : undefined);
    if (rel !== '' && !SPECIAL_PART.test(rel)) return rel;
  }
  if (name.length > MAX_PATH) throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `${what} path longer than ${MAX_PATH} bytes`);
  if (name.startsWith('/')) throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `${what} "${name}" is an absolute path`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `${what} "${name}" contains a ".." component`);
    // A UTF-16 unit is at most 3 bytes of UTF-8: only longer parts need counting.
    if (part.length > MAX_NAME / 3 && Buffer.byteLength(part) > MAX_NAME) throw new UnsafeEntryError('IMAGE_LAYER_UNSAFE_ENTRY', `${what} "${name}" has a component longer than ${MAX_NAME} bytes`);
    parts.push(part);
  }
  return parts.join('/');
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

export function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}
