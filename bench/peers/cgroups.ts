// The bench's own cgroup tree, /vtc-bench in every hierarchy of the host
// (crun, runc and podman make their cgroups below it). Only that subtree is
// ever removed; nothing else of the host's cgroups is touched.
import { existsSync, readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const BENCH_CGROUP = '/vtc-bench';

/** Mount points of the host's cgroup hierarchies (v1 controllers, named ones, and the unified one). */
export function cgroupMountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').flatMap((line) => {
    const [left, right] = line.split(' - ');
    if (!left || !right) return [];
    const fsType = right.split(' ')[0];
    return fsType === 'cgroup' || fsType === 'cgroup2' ? [left.split(' ')[4]!] : [];
  });
}

function pidsIn(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').map(Number).filter((p) => p > 0);
  } catch {
    return [];
  }
}

function removeTree(dir: string, problems: string[]): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const child = join(dir, name);
    try {
      if (statSync(child).isDirectory()) removeTree(child, problems);
    } catch {
      // gone meanwhile
    }
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') break;
      // Processes left in the bench's own cgroups can only be the bench's containers.
      for (const pid of pidsIn(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  problems.push(dir);
}

/** Removes /vtc-bench (and everything below it) from every hierarchy; returns what could not be removed. */
export function removeBenchCgroups(): string[] {
  const problems: string[] = [];
  for (const mp of cgroupMountPoints()) removeTree(join(mp, BENCH_CGROUP), problems);
  return problems;
}

/** Every cgroup directory below /vtc-bench right now (to check that a tool cleaned up after itself). */
export function benchCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    if (!existsSync(dir)) return;
    found.push(dir);
    for (const name of readdirSync(dir)) {
      const child = join(dir, name);
      if (statSync(child).isDirectory()) walk(child);
    }
  };
  for (const mp of cgroupMountPoints()) walk(join(mp, BENCH_CGROUP));
  return found;
}
