// What an unpack failure becomes: the typed ImageError a caller can switch on
// (or a full disk's errno error, which layer-store's cacheFault explains). The
// layer is written in a worker thread, and an Error crossing threads loses its
// class and fields, so failures cross as plain data and are rebuilt here.
import { ImageError } from '../../errors.ts';
import { TarFormatError } from '../tar/header.ts';
import { UnsafeEntryError } from './entry-path.ts';

export function asImageError(err: unknown, what: string): Error {
  if (err instanceof ImageError) return err;
  if (err instanceof UnsafeEntryError) {
    return new ImageError(err.code, `${what}: ${err.message}`, {
      fix: err.code === 'IMAGE_CACHE_NO_XATTR'
        ? 'put the cache on ext4, xfs, btrfs or tmpfs (VITEST_CONTAINER_CACHE=DIR)'
        : 'the layer is malformed or hostile; it was not unpacked. Rebuild the image with a standard tool',
    });
  }
  if (err instanceof TarFormatError) return new ImageError('IMAGE_LAYER_CORRUPT', `${what}: ${err.message}`, { cause: err });
  const e = err as NodeJS.ErrnoException;
  if (e?.code?.startsWith('Z_') || e?.code === 'ERR_ZLIB_INITIALIZATION_FAILED' || /zstd|incorrect header|unexpected end/i.test(e?.message ?? '')) {
    return new ImageError('IMAGE_LAYER_CORRUPT', `${what}: cannot decompress: ${e.message}`, { cause: err, fix: 'the blob is truncated or corrupt; re-export the image' });
  }
  // A full disk is the cache's to explain (layer-store's cacheFault names the cache and the fix).
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return e;
  return new ImageError('IMAGE_UNPACK_FAILED', `${what}: ${e?.message ?? String(err)}`, { cause: err });
}

/** An asImageError result as structured-clone data. */
export interface ErrorMessage {
  /** an ImageError's code, or undefined for an errno error */
  imageCode?: string;
  /** the message without the "fix:" line ContainerError appends */
  message: string;
  fix?: string;
  errno?: { code: string; errno?: number; syscall?: string; path?: string };
  stack?: string;
}

export function toErrorMessage(err: Error): ErrorMessage {
  if (err instanceof ImageError) {
    const message = err.fix ? err.message.slice(0, err.message.length - `\n  fix: ${err.fix}`.length) : err.message;
    return { imageCode: err.code, message, fix: err.fix, stack: err.stack };
  }
  const e = err as NodeJS.ErrnoException;
  return { message: e.message, errno: { code: e.code ?? 'EIO', errno: e.errno, syscall: e.syscall, path: e.path }, stack: e.stack };
}

export function fromErrorMessage(m: ErrorMessage): Error {
  if (m.imageCode) {
    const err = new ImageError(m.imageCode, m.message, { fix: m.fix });
    if (m.stack) err.stack = `${err.stack}\n  in the layer's thread: ${m.stack.split('\n').slice(1).join('\n')}`;
    return err;
  }
  return Object.assign(new Error(m.message), m.errno);
}
