// cgroup v2: one tree. A controller reaches a cgroup only when every ancestor
// enables it in cgroup.subtree_control. We enable controllers only in cgroups
// we created, and in the top of a subtree delegated to us (placement.ts).
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { getXattr, setXattr, withFileLock } from '../../image/syscalls.ts';
import { controllersMissing } from './diagnosis.ts';
import { createRacingParentRemoval, readKey, readNumber, readText, killPids, removeDir, removeEmptyParents, removeDirSync, write, writeLimit } from './fs.ts';
import { defaultParentV2, isRootCgroup, managedSubtree, type UnifiedMount } from './placement.ts';
import { DEFAULT_CGROUP_PARENT, type CgroupDriver, type CgroupStats, type Limits, type SandboxCgroup } from './types.ts';

/** What the levels we make pass on, when the kernel has it: any limit can then be had later. */
const USEFUL = ['memory', 'cpu', 'pids', 'cpuset'] as const;
type Controller = (typeof USEFUL)[number];

/** The controllers these limits need, and nothing more (a memory limit needs no cpuset). */
export function controllersFor(limits: Limits): Controller[] {
  return USEFUL.filter((c) => (c === 'memory' && limits.memoryBytes !== undefined) || (c === 'cpu' && limits.cpus !== undefined)
    || (c === 'cpuset' && limits.cpuset !== undefined) || (c === 'pids' && limits.pidsMax !== undefined));
}

// cgroupfs has no regular files of our own: a level we created is marked with
// an extended attribute instead (user.* on cgroup2 since Linux 5.7; trusted.*,
// root only, before that).
const MARKS = ['user.vitest-container', 'trusted.vitest-container'];

/**
 * The words of a cgroup file. Throws ENOENT or ENODEV when the cgroup is gone or going: another
 * process removed the default parent as its last sandbox went, and createRacingParentRemoval
 * starts over.
 */
function words(file: string): Set<string> {
  return new Set(readText(file).split(/\s+/).filter(Boolean));
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
  readonly #mount: UnifiedMount;
  #defaultParent: string | undefined;
  #managedTop: string | null | undefined;

  constructor(mount: UnifiedMount) {
    this.#mount = mount;
    this.root = mount.mountPoint;
  }

  defaultParent(): string {
    return (this.#defaultParent ??= defaultParentV2(this.#mount));
  }

  /** The delegated subtree's top (not the root), where we may enable controllers though we did not create it. */
  #delegatedTop(): string | undefined {
    if (this.#managedTop === undefined) {
      const top = managedSubtree(this.#mount);
      this.#managedTop = top === undefined || isRootCgroup(join(this.root, top)) ? null : join(this.root, top);
    }
    return this.#managedTop ?? undefined;
  }

  #resolve(parent: string): string {
    return parent === DEFAULT_CGROUP_PARENT ? this.defaultParent() : parent;
  }

  /**
   * Makes the parent chain, each level passing on the controllers `needed` (and the levels we make,
   * every useful one the kernel has). Returns what the parent passes to its children.
   * A level is made, marked and enabled under a lock on the level above it: no process ever finds
   * one of ours half made (and cannot take it for somebody else's cgroup that lacks controllers).
   */
  private ensureParent(parent: string, needed: Controller[]): Set<string> {
    let dir = this.root;
    let passes = this.#check(dir, needed, parent);
    for (const part of parent.split('/').filter(Boolean)) {
      const level = join(dir, part);
      // The usual case, every start after the first: the level is there and passes what is needed; no lock.
      const found = existsSync(level) ? words(join(level, 'cgroup.subtree_control')) : undefined;
      if (found && needed.every((c) => found.has(c))) {
        passes = found;
      } else {
        withFileLock(dir, () => this.makeLevel(level, needed));
        passes = this.#check(level, needed, parent);
      }
      dir = level;
    }
    return passes;
  }

  /** What a level on the way to parent passes on; throws CGROUP_CONTROLLERS_MISSING when that lacks one of `needed`. */
  #check(dir: string, needed: Controller[], parent: string): Set<string> {
    const passes = words(join(dir, 'cgroup.subtree_control'));
    // No limit asked: any useful controller will do (for stats); with none, a cgroup is not worth making.
    const missing = needed.length ? needed.filter((c) => !passes.has(c)) : USEFUL.some((c) => passes.has(c)) ? [] : [...USEFUL];
    if (missing.length) {
      // The fix names every level down to the parent that we may not change ourselves.
      const below = parent.split('/').filter(Boolean).map((_, i, parts) => join(this.root, ...parts.slice(0, i + 1)))
        .filter((level) => level.length > dir.length && existsSync(level) && level !== this.#delegatedTop() && !isOurs(level));
      throw controllersMissing(this.root, [dir, ...below], missing);
    }
    return passes;
  }

  /** Called holding the lock on the level's parent. */
  private makeLevel(level: string, needed: Controller[]): void {
    let createdHere = false;
    try {
      mkdirSync(level);
      createdHere = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Marks the level as ours: only such levels (and a subtree delegated to us) get their subtree_control changed.
    if (createdHere) markOurs(level);
    const ours = createdHere || isOurs(level);
    if (!ours && level !== this.#delegatedTop()) return; // #check names what it lacks
    const available = words(join(level, 'cgroup.controllers'));
    const passes = words(join(level, 'cgroup.subtree_control'));
    const enable = (ours ? USEFUL : needed).filter((c) => available.has(c) && !passes.has(c));
    if (!enable.length) return;
    try {
      write(join(level, 'cgroup.subtree_control'), enable.map((c) => `+${c}`).join(' '));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (ours || (code !== 'EPERM' && code !== 'EACCES' && code !== 'EBUSY')) throw err;
      // Enabling a controller moves every process below the level into it: cpuset may not move
      // another user's process (EPERM), none may be enabled over processes in the level itself (EBUSY).
      throw controllersMissing(this.root, [level], enable, `enabling them there was refused (${code})`);
    }
  }

  create(parent: string, name: string, limits: Limits): SandboxCgroup {
    const resolved = this.#resolve(parent);
    return createRacingParentRemoval(() => this.createOnce(resolved, name, limits));
  }

  private createOnce(parent: string, name: string, limits: Limits): SandboxCgroup {
    const passed = this.ensureParent(parent, controllersFor(limits));
    const path = join(parent, name);
    const dir = join(this.root, path);
    mkdirSync(dir);
    try {
      // Between our look at the parent and that mkdir, other processes may have removed it and begun
      // making it again: a cgroup born under a half-made parent lacks controllers. Start over.
      const controllers = words(join(dir, 'cgroup.controllers'));
      if ([...passed].some((c) => !controllers.has(c))) {
        throw Object.assign(new Error(`cgroup ${parent} was made again while ${name} was created in it`), { code: 'ENOENT' });
      }
      if (limits.memoryBytes !== undefined) {
        writeLimit(join(dir, 'memory.max'), limits.memoryBytes);
        if (existsSync(join(dir, 'memory.swap.max'))) writeLimit(join(dir, 'memory.swap.max'), 0);
      }
      if (limits.cpus !== undefined) writeLimit(join(dir, 'cpu.max'), `${Math.round(limits.cpus * 100_000)} 100000`);
      if (limits.cpuset !== undefined) writeLimit(join(dir, 'cpuset.cpus'), limits.cpuset);
      if (limits.pidsMax !== undefined) writeLimit(join(dir, 'pids.max'), limits.pidsMax);
    } catch (err) {
      rmdirSync(dir);
      throw err;
    }
    return new CgroupV2(this.root, path, parent === this.defaultParent());
  }

  children(parent: string): string[] {
    const dir = join(this.root, this.#resolve(parent));
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  }

  open(parent: string, name: string): SandboxCgroup {
    const resolved = this.#resolve(parent);
    return new CgroupV2(this.root, join(resolved, name), resolved === this.defaultParent());
  }
}

class CgroupV2 implements SandboxCgroup {
  readonly path: string;
  private readonly dir: string;
  /** The parent is the default one, which goes with its last sandbox (one the user names stays). */
  private readonly parentGoesWhenEmpty: boolean;
  constructor(root: string, path: string, parentGoesWhenEmpty: boolean) {
    this.path = path;
    this.dir = join(root, path);
    this.parentGoesWhenEmpty = parentGoesWhenEmpty;
  }
  stats(): CgroupStats {
    // A file of a controller the sandbox was not given (no limit asked, none delegated) reads as nothing.
    const f = (name: string) => join(this.dir, name);
    const number = (name: string) => (existsSync(f(name)) ? readNumber(f(name)) : 0);
    const limit = existsSync(f('memory.max')) ? readNumber(f('memory.max')) : Number.POSITIVE_INFINITY;
    const current = number('memory.current');
    return {
      memory: {
        currentBytes: current,
        // memory.peak needs Linux 5.19
        peakBytes: existsSync(f('memory.peak')) ? readNumber(f('memory.peak')) : current,
        limitBytes: Number.isFinite(limit) ? limit : undefined,
      },
      cpu: { usageMicros: readKey(f('cpu.stat'), 'usage_usec') },
      pids: { current: number('pids.current'), rejectedForks: readKey(f('pids.events'), 'max') },
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
    if (this.parentGoesWhenEmpty) removeEmptyParents([dirname(this.dir)]);
  }
  removeNow(): void {
    removeDirSync(this.dir, () => this.killAll());
    if (this.parentGoesWhenEmpty) removeEmptyParents([dirname(this.dir)]);
  }
}
