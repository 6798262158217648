// One builder per output image at a time (the tests, the demo and a user may all
// ask for the same image at once). A directory is the lock: mkdir is atomic. A lock
// left by a process that died is taken over.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { log } from './log.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withLock<T>(lockDir: string, fn: () => Promise<T>): Promise<T> {
  let told = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''));
    if (owner > 0 && !alive(owner)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!told) log(`  waiting for another build (${lockDir})`);
    told = true;
    await sleep(500);
  }
  try {
    await writeFile(join(lockDir, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
