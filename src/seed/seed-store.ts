// Where seeded images are remembered: a pulled-reference memo per key in the layer cache
// (refs/), `seed:<name>@sha256:<key>` -> the committed image, so `images list` shows them
// with what they were made from and `images prune` forgets them with their image.
import { defaultCacheDir } from '../image/cache-layout.ts';
import { lockCacheEntry, type HeldLock } from '../image/cache-lock.ts';
import { readImageMemo } from '../image/image-store.ts';
import { formatPlatform, hostPlatform } from '../image/platform.ts';
import { readRef, writeRef } from '../image/ref-store.ts';

const refName = (name: string, key: string): string => `seed:${name}@sha256:${key}`;

/** The committed image made for this key, when it is still in the cache (its layers included). */
export function findSeeded(name: string, key: string, cache = defaultCacheDir()): string | undefined {
  const ref = readRef(cache, refName(name, key), formatPlatform(hostPlatform()));
  return ref && readImageMemo(cache, ref.manifestDigest) ? `cache:${ref.manifestDigest}` : undefined;
}

export function recordSeeded(name: string, key: string, reference: string, cache = defaultCacheDir()): void {
  writeRef(cache, {
    reference: refName(name, key), platform: formatPlatform(hostPlatform()), topDigest: `sha256:${key}`,
    manifestDigest: reference.replace(/^cache:/, ''), from: 'seed', pulledAt: new Date().toISOString(),
  });
}

/** One process seeds a key at a time; the others wait, then find its image. */
export function lockSeed(key: string, cache = defaultCacheDir()): Promise<HeldLock> {
  return lockCacheEntry(cache, `seed-${key}`);
}
