// The layer cache: where it is, whether this user can write it, how big it is.
import { accessSync, constants, existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { listCache } from '../../image/index.ts';
import { formatBytes } from '../format.ts';
import type { CheckResult, DoctorContext } from './check.ts';

const ID = 'image-cache';
const TITLE = 'image cache';

export async function checkImageCache(ctx: DoctorContext): Promise<CheckResult> {
  const dir = ctx.cacheDir;
  let existing = dir;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    // Only OCI images go through the cache: the 'host' image and 'rootfs:' directories do not need it.
    const needed = ctx.options.image !== undefined && ctx.options.image !== 'host' && !ctx.options.image.startsWith('rootfs:');
    return { id: ID, title: TITLE, status: needed ? 'fail' : 'warn', code: 'IMAGE_CACHE_NOT_WRITABLE',
      summary: `${dir} is not writable by ${ctx.userName} (${existing} is the nearest existing directory): OCI images cannot be unpacked`,
      fix: `VITEST_CONTAINER_CACHE=<a writable directory>, or: sudo chown -R ${ctx.userName} ${existing === dir ? dir : existing}` };
  }
  const free = statfsSync(existing);
  const freeText = `${formatBytes(free.bavail * free.bsize)} free`;
  if (!existsSync(dir)) return { id: ID, title: TITLE, status: 'ok', summary: `${dir}: not created yet, writable, ${freeText}` };
  const listing = await listCache({ cacheDir: dir });
  return { id: ID, title: TITLE, status: 'ok',
    summary: `${dir}: writable, ${listing.images.length} image(s), ${listing.layers.length} layer(s), ${formatBytes(listing.totalBytes)}, ${freeText}` };
}
