// Finds the host's cgroup layout once and hands out the matching driver.
import { readFileSync } from 'node:fs';
import { CgroupV1Driver, V1_CONTROLLERS } from './v1.ts';
import { CgroupV2Driver } from './v2.ts';
import type { CgroupDriver } from './types.ts';

export type { CgroupDriver, CgroupStats, Limits, SandboxCgroup } from './types.ts';
export { createSandboxCgroup } from './sandbox.ts';

interface Mount { mountPoint: string; root: string; fsType: string; superOptions: string[] }

function cgroupMounts(): Mount[] {
  // mountinfo: id parent maj:min root mountpoint opts [optional...] - fstype source superopts
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').flatMap((line) => {
    const [left, right] = line.split(' - ');
    if (!left || !right) return [];
    const [fsType, , superOpts = ''] = right.split(' ');
    if (fsType !== 'cgroup' && fsType !== 'cgroup2') return [];
    const fields = left.split(' ');
    return [{ mountPoint: fields[4]!, root: fields[3]!, fsType, superOptions: superOpts.split(',') }];
  });
}

let detected: CgroupDriver | null | undefined;

/**
 * The driver for this host: v1 when the memory controller lives in a v1
 * hierarchy (legacy and hybrid hosts), v2 when the unified tree has it.
 * null when neither is usable.
 */
export function cgroupDriver(): CgroupDriver | null {
  if (detected !== undefined) return detected;
  const mounts = cgroupMounts();
  const v1 = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(c))?.mountPoint]));
  if (v1.memory) {
    const missing = V1_CONTROLLERS.filter((c) => !v1[c]);
    detected = missing.length ? null : new CgroupV1Driver(v1 as Record<(typeof V1_CONTROLLERS)[number], string>);
    return detected;
  }
  const unified = mounts.find((m) => m.fsType === 'cgroup2');
  detected = unified ? new CgroupV2Driver(unified) : null;
  return detected;
}
