// Small synchronous helpers: cgroupfs writes are kernel calls that finish at
// once, and doing them synchronously keeps sandbox start off the thread pool.
import { readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export function readNumber(file: string): number {
  const text = readFileSync(file, 'utf8').trim();
  return text === 'max' ? Number.POSITIVE_INFINITY : Number(text);
}

export function readText(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

export function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** "key value" lines (memory.events, cpu.stat, memory.oom_control) → value of key. */
export function readKey(file: string, key: string): number {
  const text = readOptional(file) ?? '';
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export function write(file: string, value: string | number): void {
  writeFileSync(file, String(value));
}

/** A limit written into a new sandbox cgroup; an error says which file the kernel refused (see sandbox.ts). */
export function writeLimit(file: string, value: string | number): void {
  try {
    writeFileSync(file, String(value));
  } catch (err) {
    throw Object.assign(err as Error, { limitFile: file });
  }
}

export function killPids(procsFile: string): void {
  for (const line of (readOptional(procsFile) ?? '').split('\n')) {
    const pid = Number(line);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** One rmdir: true when the cgroup is gone, false while the kernel still says EBUSY (processes leaving). */
function removed(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY') return false;
    throw err;
  }
}

/**
 * The default parent goes with its last sandbox (a parent the user names stays): its directory in
 * each hierarchy (one on cgroup2), once a sandbox in it was removed.
 */
export function removeEmptyParents(parentDirs: string[]): void {
  for (const dir of parentDirs) removeIfEmpty(dir);
}

/** rmdir of a parent level if nothing is in it any more; one with cgroups or processes in it stays. */
function removeIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY') throw err;
  }
}

/**
 * Runs a cgroup creation again when a level vanished under it: another process removed the default
 * parent as its last sandbox went (removeIfEmpty), just as this one was making it. A level already
 * gone is ENOENT; a file of one being removed while it is read or written is ENODEV.
 */
export function createRacingParentRemoval<T>(create: () => T): T {
  for (let attempt = 0; ; attempt++) {
    try {
      return create();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENODEV') || attempt === 9) throw err;
    }
  }
}

const BUSY_ATTEMPTS = 200;

function busyError(dir: string): Error {
  return Object.assign(new Error(`cgroup ${dir} still has processes`), { code: 'EBUSY' });
}

/** rmdir that waits for the last processes to leave (the kernel says EBUSY until then). */
export async function removeDir(dir: string, onBusy: () => void): Promise<void> {
  for (let attempt = 0; attempt <= BUSY_ATTEMPTS; attempt++) {
    if (removed(dir)) return;
    if (attempt === 20) onBusy();
    await sleep(attempt < 10 ? 1 : 10);
  }
  throw busyError(dir);
}

/** The same, blocking: for a process that is exiting and cannot wait for promises. */
export function removeDirSync(dir: string, onBusy: () => void): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  onBusy();
  for (let attempt = 0; attempt <= BUSY_ATTEMPTS; attempt++) {
    if (removed(dir)) return;
    Atomics.wait(pause, 0, 0, attempt < 10 ? 1 : 5);
  }
  throw busyError(dir);
}
