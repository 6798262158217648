// Cross-process locks on cache entries, so that 8 workers pulling one image
// fetch each blob once: flock on a file under <cache>/locks/. The kernel drops
// a lock when its holder dies, so a crashed process never blocks the next one.
// Waiting polls with LOCK_NB: a blocking flock would stall Node's event loop
// (or tie up a thread-pool thread that zlib and fs need). The holder removes
// the file before letting go, so the cache keeps no lock files; a waiter that
// then gets the lock on the removed file sees that it is no longer the one at
// the path, and starts over on the new one.
import { closeSync, fstatSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { logger } from '../log.ts';
import { locksDir } from './cache-layout.ts';
import { tryLock } from './syscalls.ts';

const log = logger('image');

export interface HeldLock {
  release(): void;
}

/** Waits until this process holds `<cache>/locks/<name>`. */
export async function lockCacheEntry(cache: string, name: string): Promise<HeldLock> {
  mkdirSync(locksDir(cache), { recursive: true, mode: 0o700 });
  const path = `${locksDir(cache)}/${name}`;
  let wait = 2;
  let waited = false;
  for (;;) {
    const fd = openSync(path, 'a', 0o600);
    if (tryLock(fd, path)) {
      // A lock file removed by its last holder between our open and our flock is no lock at all.
      const same = statSync(path, { throwIfNoEntry: false })?.ino === fstatSync(fd).ino;
      if (same) {
        if (waited) log('lock %s: taken after waiting', name);
        return {
          release: () => {
            unlinkSync(path);
            closeSync(fd);
          },
        };
      }
    }
    closeSync(fd);
    if (!waited) log('lock %s: held by another process, waiting', name);
    waited = true;
    await sleep(wait);
    wait = Math.min(wait * 2, 50);
  }
}

/** Several locks, always taken in sorted order so that two processes can never wait on each other. */
export async function lockCacheEntries(cache: string, names: string[]): Promise<HeldLock> {
  const held: HeldLock[] = [];
  try {
    for (const name of [...new Set(names)].sort()) held.push(await lockCacheEntry(cache, name));
  } catch (err) {
    for (const h of held) h.release();
    throw err;
  }
  return { release: () => held.forEach((h) => h.release()) };
}
