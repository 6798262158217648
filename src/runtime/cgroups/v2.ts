// cgroup v2: one tree. Controllers must be enabled in every ancestor's
// cgroup.subtree_control; we only ever enable them in cgroups we created.
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HostCapabilityError } from '../../errors.ts';
import { getXattr, setXattr, withFileLock } from '../../image/syscalls.ts';
import { createRacingParentRemoval, readKey, readNumber, readOptional, readText, killPids, removeDir, removeDefaultParent, removeDirSync, write } from './fs.ts';
import { type CgroupDriver, type CgroupStats, type Limits, type SandboxCgroup } from './types.ts';

const WANTED = ['memory', 'cpu', 'pids', 'cpuset'] as const;

// cgroupfs has no regular files of our own: a level we created is marked with
// an extended attribute instead (user.* on cgroup2 since Linux 5.7; trusted.*,
// root only, before that).
const MARKS = ['user.vitest-container', 'trusted.vitest-container'];

/**
 * The wanted controllers dir does not pass on to its children. Throws ENOENT or ENODEV when dir is gone
 * or going: another process removed the default parent as its last sandbox went, and
 * createRacingParentRemoval starts over.
 */
function missingControllers(dir: string): string[] {
  const enabled = new Set(readText(join(dir, 'cgroup.subtree_control')).split(/\s+/));
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

  /**
   * Makes the parent chain, enabling the controllers the sandboxes need on each level we own.
   * A level is made, marked and enabled under a lock on the level above it: no process ever finds
   * one of ours half made (and cannot take it for somebody else's cgroup that lacks controllers).
   */
  private ensureParent(parent: string): void {
    let dir = this.root;
    const rootMissing = missingControllers(dir);
    if (rootMissing.length) throw this.controllersMissing(dir, rootMissing);
    for (const part of parent.split('/').filter(Boolean)) {
      const level = join(dir, part);
      // The usual case, every start after the first: the level is there and complete; no lock.
      if (!existsSync(level) || missingControllers(level).length) withFileLock(dir, () => this.makeLevel(level));
      dir = level;
    }
  }

  /** Called holding the lock on the level's parent. */
  private makeLevel(level: string): void {
    let createdHere = false;
    try {
      mkdirSync(level);
      createdHere = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Marks the level as ours: only such levels get their subtree_control changed.
    if (createdHere) markOurs(level);
    const missing = missingControllers(level);
    if (!missing.length) return;
    const available = new Set((readOptional(join(level, 'cgroup.controllers')) ?? '').split(/\s+/));
    if (!(createdHere || isOurs(level)) || missing.some((c) => !available.has(c))) throw this.controllersMissing(level, missing);
    write(join(level, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  }

  private controllersMissing(dir: string, missing: string[]): HostCapabilityError {
    return new HostCapabilityError('CGROUP_CONTROLLERS_MISSING',
      `cgroup ${dir} does not pass the ${missing.join(', ')} controller(s) to its children, so limits cannot be enforced`,
      { fix: dir === this.root
        ? `enable them once as root: echo "${missing.map((c) => `+${c}`).join(' ')}" > ${join(dir, 'cgroup.subtree_control')}`
        : `give the sandboxes a delegated cgroup: systemd-run --user --scope -p Delegate=yes <your test command>, or set cgroupParent` });
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
      // Between our look at the parent and that mkdir, other processes may have removed it and begun
      // making it again: a cgroup born under a half-made parent lacks controllers. Start over.
      const controllers = new Set(readText(join(dir, 'cgroup.controllers')).split(/\s+/));
      if (WANTED.some((c) => !controllers.has(c))) {
        throw Object.assign(new Error(`cgroup ${parent} was made again while ${name} was created in it`), { code: 'ENOENT' });
      }
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
  async remove(): Promise<void> {
    await removeDir(this.dir, () => this.killAll());
    removeDefaultParent(this.path, [this.dir]);
  }
  removeNow(): void {
    removeDirSync(this.dir, () => this.killAll());
    removeDefaultParent(this.path, [this.dir]);
  }
}

