// Observations of the host, for tests that assert nothing was left behind.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { cgroupDriver, createSandboxCgroup, type Limits } from '../../src/runtime/cgroups/index.ts';
import { sandboxId } from '../../src/runtime/reaper.ts';

export const isRoot = process.getuid!() === 0;

export function mountCount(): number {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').length;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function allPids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Processes descended from this one (other test files run beside us and have their own). */
export function descendants(root = process.pid): number[] {
  const parent = new Map(allPids().map((p) => [p, parentOf(p)]));
  return [...parent.keys()].filter((p) => {
    for (let q = parent.get(p); q; q = parent.get(q)) if (q === root) return true;
    return false;
  });
}

/** Distinct network namespaces of our descendants. */
export function netnsCount(): number {
  const seen = new Set<string>();
  for (const pid of descendants()) {
    try {
      seen.add(readlinkSync(`/proc/${pid}/ns/net`));
    } catch {
      // gone, or not ours to see
    }
  }
  return seen.size;
}

/** The per-process `vtc-runtime spawner` helper. */
export function isSpawner(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').endsWith('vtc-runtime\u0000spawner\u0000');
  } catch {
    return false;
  }
}

/** Processes running a test run's shared `vtc-runtime spawner --listen … --owner <owner>`. */
export function sharedSpawners(owner: number): number[] {
  return allPids().filter((pid) => {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv.includes('spawner') && argv[argv.indexOf('--owner') + 1] === String(owner);
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Processes whose command line mentions the native runtime. */
export function runtimeProcesses(): number[] {
  return allPids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('vtc-runtime');
    } catch {
      return false;
    }
  });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where this process's sandboxes get their cgroups by default: /vitest-container, or that in a subtree delegated to it. */
export function defaultCgroupParent(): string {
  return cgroupDriver()?.defaultParent() ?? '/vitest-container';
}

/** A cgroup parent of the given name beside the default one (a test run's own; rootless: inside the delegated subtree). */
export function cgroupParentNamed(name: string): string {
  return join(dirname(defaultCgroupParent()), name);
}

/**
 * Whether sandboxes with these limits can have them here: one cgroup made (and removed) for real,
 * as the runtime makes it. Root can; a user can with a delegated cgroup v2 subtree.
 */
export function canLimit(limits: Limits = { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsMax: 64 }): boolean {
  try {
    createSandboxCgroup(cgroupDriver(), '/vitest-container', sandboxId(), limits)?.removeNow();
    return true;
  } catch {
    return false;
  }
}

/**
 * Sandbox cgroups under a parent, in every hierarchy that has it (only this process's with
 * mine=true). parent: a cgroup path, or a name beside the default parent (the default: the default parent).
 */
export function sandboxCgroups(parent = defaultCgroupParent(), mine = false): string[] {
  const path = parent.startsWith('/') ? parent : cgroupParentNamed(parent);
  const roots = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup'];
  const out: string[] = [];
  for (const root of roots) {
    const dir = join(root, path);
    try {
      for (const n of readdirSync(dir)) {
        if (mine && !n.startsWith(`c${process.pid}-`)) continue;
        if (statSync(join(dir, n)).isDirectory()) out.push(join(dir, n));
      }
    } catch {
      // hierarchy absent
    }
  }
  return [...new Set(out)];
}

export interface KernelOomKill { task: string; memcg: string; limitKiB: number | undefined }

/**
 * The kernel's own record (its log, as root) of OOM kills in memory cgroups under parent: the task
 * it killed, the cgroup, and the limit the kernel reported for it. The OOM killer runs one kill at
 * a time (oom_lock), so the "memory: usage …, limit …" line nearest above a kill is that kill's.
 */
export function kernelOomKills(parent: string): KernelOomKill[] {
  const lines = execFileSync('dmesg', { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n');
  const kills: KernelOomKill[] = [];
  let limitKiB: number | undefined;
  for (const line of lines) {
    const usage = /memory: usage \d+kB, limit (\d+)kB/.exec(line);
    if (usage) limitKiB = Number(usage[1]);
    const kill = /oom-kill:.*,oom_memcg=([^,]+),.*,task=([^,]+),/.exec(line);
    if (!kill) continue;
    if (kill[1]!.startsWith(`${parent}/`)) kills.push({ task: kill[2]!, memcg: kill[1]!, limitKiB });
    limitKiB = undefined;
  }
  return kills;
}

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
