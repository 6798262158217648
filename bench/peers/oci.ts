// config.json for crun and runc: `crun spec` (or `runc spec`) as the starting
// point, adjusted so the sandbox matches what our runtime builds: the same
// namespaces (pid, net, ipc, uts, mount, cgroup), the same mounts, capability
// set, masked and read-only paths, a writable root, and the same limits.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS } from '../../src/runtime/spec.ts';

export interface Limits { memoryBytes: number; cpus: number; pids: number }

/** The generator's own default config (from the first of crun/runc that is installed). */
export function baseSpec(tools: string[]): { spec: Record<string, unknown>; from: string } {
  for (const tool of tools) {
    const dir = mkdtempSync(join(tmpdir(), 'vtcb-spec-'));
    try {
      const r = spawnSync(tool, ['spec'], { cwd: dir, encoding: 'utf8' });
      if (r.status === 0) return { spec: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>, from: `${tool} spec` };
    } catch {
      // not installed: try the next one
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  throw new Error(`none of ${tools.join(', ')} can write a default spec`);
}

// What our spec.ts mounts (the OCI defaults minus the /sys/fs/cgroup mount, plus a tmpfs /tmp).
const MOUNTS = [
  { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
  { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
  { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
  { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
];

/** A config for one container; rootfs is the bundle-relative path of the (already mounted) overlay. */
export function peerSpec(base: Record<string, unknown>, args: string[], cgroupsPath: string, limits: Limits | undefined): Record<string, unknown> {
  const spec = structuredClone(base) as Record<string, any>;
  const caps = [...DEFAULT_CAPABILITIES];
  spec.process = {
    ...spec.process,
    terminal: false,
    args,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=vtc-bench', 'HOME=/root'],
    cwd: '/',
    user: { uid: 0, gid: 0 },
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    noNewPrivileges: true,
  };
  spec.root = { path: 'rootfs', readonly: false };
  spec.hostname = 'vtc-bench';
  spec.mounts = MOUNTS;
  const linux = (spec.linux ??= {}) as Record<string, any>;
  linux.namespaces = ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup'].map((type) => ({ type }));
  linux.cgroupsPath = cgroupsPath;
  linux.maskedPaths = MASKED_PATHS;
  linux.readonlyPaths = READONLY_PATHS;
  linux.rootfsPropagation = 'rprivate';
  const resources = (linux.resources ??= {}) as Record<string, unknown>;
  if (limits) {
    resources.memory = { limit: limits.memoryBytes, swap: limits.memoryBytes };
    resources.cpu = { quota: Math.round(limits.cpus * 100_000), period: 100_000 };
    resources.pids = { limit: limits.pids };
  }
  return spec;
}
