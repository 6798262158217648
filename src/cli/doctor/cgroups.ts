// cgroup version, and whether sandboxes with these limits get their cgroup:
// one is made for real, where and as the runtime makes it (then removed), so
// this line and the sandbox probe below cannot disagree.
import { readFileSync } from 'node:fs';
import { ContainerError } from '../../errors.ts';
import { cgroupDriver, createSandboxCgroup, type CgroupDriver, type Limits } from '../../runtime/cgroups/index.ts';
import { DEFAULT_CGROUP_PARENT } from '../../runtime/cgroups/types.ts';
import { normalizeOptions } from '../../runtime/options.ts';
import { sandboxId } from '../../runtime/reaper.ts';
import { fromError, type CheckResult, type DoctorContext } from './check.ts';
import { wantsLimits } from '../container-flags.ts';

const ID = 'cgroups';
const TITLE = 'cgroups';

function hasUnifiedMount(): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup2 ');
}

type Outcome = { made: boolean } | { error: ContainerError };

/** Makes (and removes) a sandbox cgroup as the runtime would, with these limits. */
async function probe(driver: CgroupDriver | null, parent: string, limits: Limits): Promise<Outcome> {
  try {
    const cgroup = createSandboxCgroup(driver, parent, sandboxId(), limits);
    await cgroup?.remove();
    return { made: cgroup !== undefined };
  } catch (err) {
    if (!(err instanceof ContainerError)) throw err;
    return { error: err };
  }
}

export async function checkCgroups(ctx: DoctorContext): Promise<CheckResult> {
  const driver = cgroupDriver();
  const version = !driver ? '' : driver.version === 1 ? `cgroup v1${hasUnifiedMount() ? ' (hybrid)' : ''}: ` : 'cgroup v2: ';
  let o: ReturnType<typeof normalizeOptions>;
  try {
    o = normalizeOptions(ctx.options);
  } catch {
    return { id: ID, title: TITLE, status: 'fail', summary: 'not probed: the options are invalid (see above)' };
  }
  const parent = o.cgroupParent === DEFAULT_CGROUP_PARENT && driver ? driver.defaultParent() : o.cgroupParent;
  const limits: Limits = { memoryBytes: o.memoryBytes, cpus: o.cpus, cpuset: o.cpuset, pidsMax: o.pids === undefined ? undefined : o.pids + 1 };
  const asked = wantsLimits(ctx.options);
  const outcome = await probe(driver, o.cgroupParent, limits);
  if ('error' in outcome) return fromError(ID, TITLE, 'fail', outcome.error, version);
  if (outcome.made) return { id: ID, title: TITLE, status: 'ok', summary: `${version}sandboxes get a cgroup under ${parent}${asked ? ' with the limits asked for' : ''}` };
  // No limits asked, and no cgroup to be had: sandboxes run without one. What would limits need?
  const withLimits = await probe(driver, o.cgroupParent, { memoryBytes: 64 * 1024 * 1024, pidsMax: 64 });
  const why = 'error' in withLimits ? fromError(ID, TITLE, 'warn', withLimits.error) : undefined;
  return { id: ID, title: TITLE, status: 'warn', code: why?.code, ...(why?.fix ? { fix: why.fix } : {}),
    summary: `${version}sandboxes without limits run without a cgroup here (and stats() has nothing to say)${why ? `; limits would fail: ${why.summary}` : ''}` };
}
