// Images fetched from elsewhere (a registry, the Docker/podman daemon) under a
// pull policy:
//   'missing' (default): a reference pulled before is used as cached, with no request at all;
//   'always':  one request for what the name points at now; the same digest -> nothing downloaded;
//   'never':   the cache only.
// Of several processes pulling one reference at once, one does the work (a lock
// per reference, then per layer); the others find the result in the cache.
import { ImageError, RegistryError } from '../errors.ts';
import { logger } from '../log.ts';
import { lockCacheEntry } from './cache-lock.ts';
import { readImageMemo, storeImage, toResolved } from './image-store.ts';
import type { ImagePlan } from './load-plan.ts';
import { readRef, refKey, writeRef } from './ref-store.ts';
import type { RefMemo } from './ref-store.ts';
import type { ContentSource } from './source/types.ts';
import type { ResolvedImage, ResolveOptions } from './types.ts';

const log = logger('image');

export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

/** What a source offers the pull: where a name points now, and the image there. */
export interface Puller {
  /** canonical reference, the key of the pulled-reference memo */
  reference: string;
  /** where from, for messages and the memo: a registry host, a daemon socket */
  from: string;
  /** current() is a local request (a daemon's socket): made even under pull: 'missing', so a rebuilt image is noticed */
  localCheck?: boolean;
  /** the digest the name points at now (one request) */
  current(): Promise<string>;
  /** the image at that digest */
  open(current: string): Promise<OpenedImage>;
}

export interface OpenedImage {
  manifestDigest: string;
  content: ContentSource;
  plan(): Promise<ImagePlan>;
  /** removes what open() left behind (a daemon export) */
  close?(): void;
}

export async function pullImage(raw: string, puller: Puller, platform: string, cache: string, options: ResolveOptions): Promise<ResolvedImage> {
  const asked = options.pull ?? 'missing';
  const policy = asked === 'missing' && puller.localCheck ? 'always' : asked;
  const cached = (): ResolvedImage | undefined => {
    const ref = readRef(cache, puller.reference, platform);
    const memo = ref && readImageMemo(cache, ref.manifestDigest);
    return memo && toResolved(raw, cache, memo);
  };
  if (policy !== 'always') {
    const hit = cached();
    if (hit) {
      log('%s: cached as %s, no request (pull: %s)', raw, hit.manifestDigest, policy);
      return hit;
    }
  }
  if (policy === 'never') {
    throw new ImageError('IMAGE_NOT_PULLED', `${puller.reference} (${platform}) is not in the image cache, and pull is 'never'`, {
      fix: `pull it first: npx vitest-environment-container pull ${raw}, or use pull: 'missing'`,
    });
  }
  const lock = await lockCacheEntry(cache, `ref-${refKey(puller.reference, platform)}`);
  try {
    if (policy === 'missing') {
      const hit = cached(); // pulled by another process while we waited for the lock
      if (hit) return hit;
    }
    return await fetchImage(raw, puller, platform, cache, options);
  } catch (err) {
    throw explainOffline(err, puller, platform);
  } finally {
    lock.release();
  }
}

async function fetchImage(raw: string, puller: Puller, platform: string, cache: string, options: ResolveOptions): Promise<ResolvedImage> {
  const current = await puller.current();
  const known = readRef(cache, puller.reference, platform);
  if (known?.topDigest === current) {
    const memo = readImageMemo(cache, known.manifestDigest);
    if (memo) {
      log('%s: still %s, nothing to download', raw, current);
      return toResolved(raw, cache, memo);
    }
  }
  const image = await puller.open(current);
  try {
    const memo = readImageMemo(cache, image.manifestDigest)
      ?? await storeImage(await image.plan(), image.content, puller.reference, cache, options, 'pulling');
    const ref: RefMemo = {
      reference: puller.reference, platform, topDigest: current, manifestDigest: image.manifestDigest, from: puller.from, pulledAt: new Date().toISOString(),
    };
    writeRef(cache, ref);
    return toResolved(raw, cache, memo);
  } finally {
    image.close?.();
  }
}

/** An unreachable source and nothing cached: say which image, from where, and what to do. */
function explainOffline(err: unknown, puller: Puller, platform: string): unknown {
  if (!(err instanceof RegistryError) || err.code !== 'REGISTRY_UNREACHABLE') return err;
  const message = err.message.replace(/\n {2}fix: .*$/s, '');
  return new RegistryError('REGISTRY_UNREACHABLE', `cannot pull ${puller.reference} (${platform}) from ${puller.from}, and it is not in the cache: ${message}`, {
    cause: err,
    fix: `${err.fix ?? 'check the connection'}; once pulled (npx vitest-environment-container pull ${puller.reference}) it works offline with pull: 'missing'`,
  });
}
