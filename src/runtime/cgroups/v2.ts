// cgroup v2: one tree. Controllers must be enabled in every ancestor's
// cgroup.subtree_control; we only ever enable them in cgroups we created.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { HostCapabilityError } from '../../errors.ts';
import { getXattr, setXattr } from '../../image/syscalls.ts';
import { createRacingParentRemoval, readKey, readNumber, readOptional, killPids, removeDir, removeDirSync, removeIfEmpty, write } from './fs.ts';
import { DEFAULT_CGROUP_PARENT, type CgroupDriver, type CgroupStats, type Limits, type SandboxCgroup } from './types.ts';

const WANTED = ['memory', 'cpu', 'pids', 'cpuset'] as const;

// cgroupfs has no regular files of our own: a level we created is marked with
// an extended attribute instead (user.* on cgroup2 since Linux 5.7; trusted.*,
// root only, before that).
const MARKS = ['user.vitest-container', 'trusted.vitest-container'];

function missingControllers(dir: string): string[] {
  const enabled = new Set((readOptional(join(dir, 'cgroup.subtree_control')) ?? '').split(/\s+/));
  return WANTED.filter((c) => !enabled.has(c));
}

function isOurs(dir: string): boolean {
  return MARKS.some((name) => {
    try {
      return getXattr(dir, name) !== undefined;
    } catch {
      return false;
    }
  });
}

function markOurs(dir: string): void {
  for (const name of MARKS) {
    try {
      setXattr(dir, name, Buffer.from('1'));
      return;
    } catch {
      // this kernel or user cannot set it: try the next; unmarked only means later runs will not change it
    }
  }
}

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }

  /** Makes the parent chain, enabling the controllers the sandboxes need on each level we own. */
  private ensureParent(parent: string): void {
    let dir = this.root;
    let createdHere = false;
    const parts = parent.split('/').filter(Boolean);
    for (let i = 0; i <= parts.length; i++) {
      let missing = missingControllers(dir);
      // A level another process of ours has just made may not be marked and enabled yet: look again briefly.
      for (let retry = 0; missing.length && i > 0 && !createdHere && !isOurs(dir) && retry < 50; retry++) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
        missing = missingControllers(dir);
      }
      if (missing.length) {
        const ours = i > 0 && (createdHere || isOurs(dir));
        const available = new Set((readOptional(join(dir, 'cgroup.controllers')) ?? '').split(/\s+/));
        const unavailable = missing.filter((c) => !available.has(c));
        if (!ours || unavailable.length) {
          throw new HostCapabilityError('CGROUP_CONTROLLERS_MISSING',
            `cgroup ${dir} does not pass the ${missing.join(', ')} controller(s) to its children, so limits cannot be enforced`,
            { fix: i === 0 && dir === this.root
              ? `enable them once as root: echo "${missing.map((c) => `+${c}`).join(' ')}" > ${join(dir, 'cgroup.subtree_control')}`
              : `give the sandboxes a delegated cgroup: systemd-run --user --scope -p Delegate=yes <your test command>, or set cgroupParent` });
        }
        write(join(dir, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
      }
      if (i === parts.length) break;
      dir = join(dir, parts[i]!);
      createdHere = false;
      try {
        mkdirSync(dir);
        createdHere = true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      // Marks the level as ours: only such levels get their subtree_control changed.
      if (createdHere) markOurs(dir);
    }
  }

  create(parent: string, name: string, limits: Limits): SandboxCgroup {
    return createRacingParentRemoval(() => this.createOnce(parent, name, limits));
  }

  private createOnce(parent: string, name: string, limits: Limits): SandboxCgroup {
    this.ensureParent(parent);
    const path = join(parent, name);
    const dir = join(this.root, path);
    mkdirSync(dir);
    try {
      if (limits.memoryBytes !== undefined) {
        write(join(dir, 'memory.max'), limits.memoryBytes);
        if (existsSync(join(dir, 'memory.swap.max'))) write(join(dir, 'memory.swap.max'), 0);
      }
      if (limits.cpus !== undefined) write(join(dir, 'cpu.max'), `${Math.round(limits.cpus * 100_000)} 100000`);
      if (limits.cpuset !== undefined) write(join(dir, 'cpuset.cpus'), limits.cpuset);
      if (limits.pidsMax !== undefined) write(join(dir, 'pids.max'), limits.pidsMax);
    } catch (err) {
      rmdirSync(dir);
      throw err;
    }
    return new CgroupV2(this.root, path);
  }

  children(parent: string): string[] {
    const dir = join(this.root, parent);
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  }

  open(parent: string, name: string): SandboxCgroup {
    return new CgroupV2(this.root, join(parent, name));
  }
}

class CgroupV2 implements SandboxCgroup {
  readonly path: string;
  private readonly dir: string;
  constructor(root: string, path: string) {
    this.path = path;
    this.dir = join(root, path);
  }
  stats(): CgroupStats {
    const f = (name: string) => join(this.dir, name);
    const limit = readNumber(f('memory.max'));
    const current = readNumber(f('memory.current'));
    return {
      memory: {
        currentBytes: current,
        // memory.peak needs Linux 5.19
        peakBytes: existsSync(f('memory.peak')) ? readNumber(f('memory.peak')) : current,
        limitBytes: Number.isFinite(limit) ? limit : undefined,
      },
      cpu: { usageMicros: readKey(f('cpu.stat'), 'usage_usec') },
      pids: { current: readNumber(f('pids.current')), rejectedForks: readKey(f('pids.events'), 'max') },
      oomKills: readKey(f('memory.events'), 'oom_kill'),
    };
  }
  killAll(): void {
    // cgroup.kill (Linux 5.14) kills atomically, including processes forking right now.
    if (existsSync(join(this.dir, 'cgroup.kill'))) write(join(this.dir, 'cgroup.kill'), 1);
    else killPids(join(this.dir, 'cgroup.procs'));
  }
  /** The default parent, once its last sandbox is gone. */
  private removeDefaultParent(): void {
    if (dirname(this.path) === DEFAULT_CGROUP_PARENT) removeIfEmpty(dirname(this.dir));
  }
  async remove(): Promise<void> {
    await removeDir(this.dir, () => this.killAll());
    this.removeDefaultParent();
  }
  removeNow(): void {
    removeDirSync(this.dir, () => this.killAll());
    this.removeDefaultParent();
  }
}

