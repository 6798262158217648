// One interface over cgroup v1 (separate hierarchies per controller, as on
// this project's hybrid development host) and cgroup v2 (one unified tree).

/**
 * The cgroupParent option's default: a `vitest-container` cgroup at the top of the tree this
 * process may manage (the root for root; the delegated subtree on cgroup v2, see placement.ts).
 * It is this project's alone: it goes when its last sandbox does (a parent the user names is
 * left as it is).
 */
export const DEFAULT_CGROUP_PARENT = '/vitest-container';
export const DEFAULT_PARENT_NAME = 'vitest-container';

export interface Limits {
  memoryBytes?: number | undefined;
  cpus?: number | undefined;
  cpuset?: string | undefined;
  /** Already includes the sandbox's own pid 1. */
  pidsMax?: number | undefined;
}

export interface CgroupStats {
  memory: { currentBytes: number; peakBytes: number; limitBytes: number | undefined };
  cpu: { usageMicros: number };
  /** rejectedForks: forks the pids limit refused. */
  pids: { current: number; rejectedForks: number };
  /** Processes the kernel's OOM killer ended in this sandbox. */
  oomKills: number;
}

export interface SandboxCgroup {
  /** Path relative to each hierarchy's root: the spec's linux.cgroupsPath. */
  readonly path: string;
  stats(): CgroupStats;
  /** SIGKILL every process still in the cgroup. */
  killAll(): void;
  /** Removes the cgroup, waiting (briefly) for its last processes to be gone. */
  remove(): Promise<void>;
  /** Kills what is left and removes the cgroup, blocking: for a process that is exiting. */
  removeNow(): void;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Where DEFAULT_CGROUP_PARENT puts sandboxes for this process (a path from the hierarchy's root). */
  defaultParent(): string;
  /** Creates <parent>/<name> with the limits applied; nothing is left behind on failure. */
  create(parent: string, name: string, limits: Limits): SandboxCgroup;
  /** Names of the cgroups directly under parent (for the reaper). */
  children(parent: string): string[];
  /** Opens an existing cgroup under parent (for the reaper). */
  open(parent: string, name: string): SandboxCgroup;
}
