// cgroup v1: every controller is its own hierarchy. The sandbox gets a
// directory of the same name in each one it needs.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRacingParentRemoval, readKey, readNumber, readText, killPids, removeDir, removeEmptyParents, removeDirSync, write, writeLimit } from './fs.ts';
import { DEFAULT_CGROUP_PARENT, type CgroupDriver, type CgroupStats, type Limits, type SandboxCgroup } from './types.ts';

export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'pids', 'cpuset'] as const;
type Controller = (typeof V1_CONTROLLERS)[number];

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;
  readonly roots: Record<Controller, string>;
  constructor(roots: Record<Controller, string>) {
    this.roots = roots;
  }

  /** cgroup v1 delegates nothing to users: the default parent is at each hierarchy's root. */
  defaultParent(): string {
    return DEFAULT_CGROUP_PARENT;
  }

  /** Creates every missing level of path; cpuset levels must be given cpus and mems before use. */
  private ensure(controller: Controller, path: string): string[] {
    const created: string[] = [];
    let dir = this.roots[controller];
    for (const part of path.split('/').filter(Boolean)) {
      const parent = dir;
      dir = join(dir, part);
      try {
        mkdirSync(dir);
        created.push(dir);
      } catch (err) {
        // Another worker may be making the same parent right now.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      // An empty cpuset admits no process; the maker of a level may not have filled it in yet.
      if (controller === 'cpuset' && !readText(join(dir, 'cpuset.cpus'))) {
        write(join(dir, 'cpuset.cpus'), readText(join(parent, 'cpuset.cpus')));
        write(join(dir, 'cpuset.mems'), readText(join(parent, 'cpuset.mems')));
      }
    }
    return created;
  }

  create(parent: string, name: string, limits: Limits): SandboxCgroup {
    return createRacingParentRemoval(() => this.createOnce(parent, name, limits));
  }

  private createOnce(parent: string, name: string, limits: Limits): SandboxCgroup {
    const path = join(parent, name);
    const created: string[] = [];
    try {
      // A sandbox not pinned to CPUs needs no cpuset cgroup (it inherits the parent's): one hierarchy less to make and remove.
      // Every level made here is removed again if the kernel then rejects a limit (the parent's, too:
      // a creation that fails leaves no cgroup behind; one another sandbox uses stays, rmdir refuses).
      for (const c of V1_CONTROLLERS.filter((c) => c !== 'cpuset' || limits.cpuset !== undefined)) {
        created.push(...this.ensure(c, parent));
        created.push(...this.ensure(c, path));
      }
      const dir = (c: Controller) => join(this.roots[c], path);
      if (limits.memoryBytes !== undefined) {
        writeLimit(join(dir('memory'), 'memory.limit_in_bytes'), limits.memoryBytes);
        // No swap: memory+swap gets the same limit (when the kernel accounts swap at all).
        const memsw = join(dir('memory'), 'memory.memsw.limit_in_bytes');
        if (existsSync(memsw)) writeLimit(memsw, limits.memoryBytes);
      }
      if (limits.cpus !== undefined) {
        writeLimit(join(dir('cpu'), 'cpu.cfs_period_us'), 100_000);
        writeLimit(join(dir('cpu'), 'cpu.cfs_quota_us'), Math.round(limits.cpus * 100_000));
      }
      if (limits.cpuset !== undefined) writeLimit(join(dir('cpuset'), 'cpuset.cpus'), limits.cpuset);
      if (limits.pidsMax !== undefined) writeLimit(join(dir('pids'), 'pids.max'), limits.pidsMax);
    } catch (err) {
      for (const d of created.reverse()) {
        try {
          rmdirSync(d);
        } catch {
          // best effort: nothing ran in it
        }
      }
      throw err;
    }
    return new CgroupV1(this.roots, path, parent === DEFAULT_CGROUP_PARENT);
  }

  children(parent: string): string[] {
    const dir = join(this.roots.pids, parent);
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  }

  open(parent: string, name: string): SandboxCgroup {
    return new CgroupV1(this.roots, join(parent, name), parent === DEFAULT_CGROUP_PARENT);
  }
}

class CgroupV1 implements SandboxCgroup {
  readonly path: string;
  private readonly roots: Record<Controller, string>;
  /** The parent is the default one, which goes with its last sandbox. */
  private readonly parentIsDefault: boolean;
  constructor(roots: Record<Controller, string>, path: string, parentIsDefault: boolean) {
    this.roots = roots;
    this.path = path;
    this.parentIsDefault = parentIsDefault;
  }
  private dir(c: Controller): string {
    return join(this.roots[c], this.path);
  }
  stats(): CgroupStats {
    const limit = readNumber(join(this.dir('memory'), 'memory.limit_in_bytes'));
    return {
      memory: {
        currentBytes: readNumber(join(this.dir('memory'), 'memory.usage_in_bytes')),
        peakBytes: readNumber(join(this.dir('memory'), 'memory.max_usage_in_bytes')),
        // v1 says "no limit" with a huge page-aligned number
        limitBytes: limit >= 2 ** 62 ? undefined : limit,
      },
      cpu: { usageMicros: Math.round(readNumber(join(this.dir('cpuacct'), 'cpuacct.usage')) / 1000) },
      pids: { current: readNumber(join(this.dir('pids'), 'pids.current')), rejectedForks: readKey(join(this.dir('pids'), 'pids.events'), 'max') },
      oomKills: readKey(join(this.dir('memory'), 'memory.oom_control'), 'oom_kill'),
    };
  }
  killAll(): void {
    killPids(join(this.dir('pids'), 'cgroup.procs'));
  }
  async remove(): Promise<void> {
    for (const c of V1_CONTROLLERS) await removeDir(this.dir(c), () => this.killAll());
    if (this.parentIsDefault) removeEmptyParents(V1_CONTROLLERS.map((c) => dirname(this.dir(c))));
  }
  removeNow(): void {
    for (const c of V1_CONTROLLERS) removeDirSync(this.dir(c), () => this.killAll());
    if (this.parentIsDefault) removeEmptyParents(V1_CONTROLLERS.map((c) => dirname(this.dir(c))));
  }
}
