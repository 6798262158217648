// Removes what a crashed run left: bundles and cgroups whose owning process is
// gone. Only names this project made (see sandboxId) are ever considered.
import { readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { logger } from '../log.ts';
import { nextInSequence, threadState } from '../thread-state.ts';
import type { CgroupDriver } from './cgroups/index.ts';

const log = logger('runtime');
// c<pid>-<start time>-<seq>-<pid namespace>: a pid is only meaningful in its own pid namespace.
// In a worker thread the seq carries the thread's id too (<seq>t<thread id>): threads do not
// share the counter.
const ID_PATTERN = /^c(\d+)-(\d+)-(\d+(?:t\d+)?)-(\d+)$/;

function pidNamespace(pid: number | 'self'): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/pid`))?.[1] ?? '0';
  } catch {
    return '0';
  }
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), or undefined when it does not exist. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const ownNamespace = pidNamespace('self');
const self = `c${process.pid}-${startTime(process.pid) ?? 0}`;
// Shared by every copy of this module in the thread (test runners load it more than once).
const reaper = threadState('reaper', () => ({ reaped: false }));

/** A name that says which process owns the sandbox (pid + start time, so a reused pid does not count as alive). */
export function sandboxId(): string {
  return `${self}-${nextInSequence('sandbox')}${threadId ? `t${threadId}` : ''}-${ownNamespace}`;
}

/** The id of a running process (seq 0: never a sandbox's), for files it owns in the run root; undefined when it is gone. */
export function processId(pid: number): string | undefined {
  const start = startTime(pid);
  return start === undefined ? undefined : `c${pid}-${start}-0-${ownNamespace}`;
}

/** The pid namespaces some process is in right now, as far as this process can see. */
function livePidNamespaces(): Set<string> {
  const live = new Set<string>();
  for (const pid of readdirSync('/proc')) if (/^\d+$/.test(pid)) live.add(pidNamespace(Number(pid)));
  return live;
}

// The kernel's initial pid namespace always has this inode number (PROC_PID_INIT_INO).
const INIT_PID_NAMESPACE = '4026531836';

/**
 * False only when the owner is provably gone. An owner in another pid namespace (a pool worker's
 * sandbox) cannot be looked up by pid; from the initial pid namespace, where every process is
 * visible, it is gone once no process is left in its namespace (the worker's sandbox, and every
 * sandbox started in it, died with it). From anywhere else it is never judged.
 */
function ownerAlive(id: string, live: () => Set<string>): boolean {
  const m = ID_PATTERN.exec(id);
  if (!m) return true; // not a name of ours: never touched
  if (m[4] !== ownNamespace) return ownNamespace !== INIT_PID_NAMESPACE || live().has(m[4]!);
  return startTime(Number(m[1])) === m[2];
}

/** The pid namespace of a running process (to reap, later, what sandboxes started inside it left). */
export function pidNamespaceOf(pid: number): string {
  return pidNamespace(pid);
}

/** Kills and removes the sandbox cgroups under parent that `stale` picks. */
async function removeCgroups(cgroups: CgroupDriver | null, cgroupParent: string, stale: (name: string) => boolean): Promise<void> {
  if (!cgroups) return;
  let children: string[] = [];
  try {
    children = cgroups.children(cgroupParent);
  } catch {
    return;
  }
  for (const name of children.filter(stale)) {
    log('removing stale cgroup %s/%s', cgroupParent, name);
    const cg = cgroups.open(cgroupParent, name);
    cg.killAll();
    await cg.remove().catch((err: unknown) => log('stale cgroup %s: %o', name, err));
  }
}

/** Removes the cgroups of sandboxes started from inside pid namespace ns, once that namespace is gone. */
export async function reapNamespace(cgroups: CgroupDriver | null, cgroupParent: string, ns: string): Promise<void> {
  if (ns === '0') return;
  await removeCgroups(cgroups, cgroupParent, (name) => ID_PATTERN.exec(name)?.[4] === ns);
}

export async function reapStale(runRoot: string, cgroups: CgroupDriver | null, cgroupParent: string): Promise<void> {
  if (reaper.reaped) return;
  reaper.reaped = true;
  let entries: string[] = [];
  try {
    entries = readdirSync(runRoot);
  } catch {
    // no run root yet
  }
  // Read once, and only when a name from another pid namespace asks for it.
  let live: Set<string> | undefined;
  const liveNamespaces = () => (live ??= livePidNamespaces());
  for (const name of entries) {
    // bundles are named by sandbox id; spawner sockets (and a shared one's lock) by an id too,
    // with .sock or .<binary>.sock(.lock) after it, the sandbox service's with .svc<build>.sock(.starting|.log)
    if (!ownerAlive(name.replace(/(\.(svc)?\d+)?\.sock(\.lock|\.starting|\.log)?$/, ''), liveNamespaces)) {
      log('removing stale bundle %s', name);
      rmSync(join(runRoot, name), { recursive: true, force: true });
    }
  }
  await removeCgroups(cgroups, cgroupParent, (name) => !ownerAlive(name, liveNamespaces));
}
