// What confines this process beyond plain file permissions, read from /proc:
// the seccomp filter and the reduced capability set a container engine gives
// its containers (Docker's and podman's defaults), a read-only cgroupfs, and
// AppArmor's restriction of unprivileged user namespaces (Ubuntu 23.10+).
// Errors name these as the cause of a refusal, with the fix that lifts them.
import { existsSync, readFileSync } from 'node:fs';

export interface Confinement {
  /** The container engine this process runs under, when it says so (docker, podman, kubernetes, ...). */
  engine: string | undefined;
  /** A seccomp filter is installed (Seccomp: 2 in /proc/self/status): a container engine's default profile, most often. */
  seccompFiltered: boolean;
  /** no_new_privs is set (Docker's no-new-privileges, Kubernetes' allowPrivilegeEscalation: false): setuid helpers such as newuidmap gain nothing. */
  noNewPrivs: boolean;
  /** CAP_SYS_ADMIN in the effective set: what a namespace, a mount or sethostname needs outside a user namespace of one's own. */
  capSysAdmin: boolean;
  /** CAP_SYS_ADMIN in the bounding set: without it no process here ever has it, not even setuid root (newuidmap needs it). */
  capSysAdminBounding: boolean;
  /** CAP_SYS_RESOURCE in the effective set: what raising a hard rlimit needs. */
  capSysResource: boolean;
  /** kernel.apparmor_restrict_unprivileged_userns=1: AppArmor lets a user namespace be made, then denies what it is for. */
  appArmorRestrictsUserNamespaces: boolean;
  /** The AppArmor profile this process runs under, unless unconfined. */
  appArmorProfile: string | undefined;
  /** /sys/fs/cgroup (or a v1 hierarchy under it) is mounted read-only, as container engines do by default. */
  cgroupfsReadOnly: boolean;
  /** Mounts over /proc paths (/proc/kcore, /proc/acpi, ...), as container engines make: a fresh proc mount is then refused. */
  procMasked: boolean;
}

const CAP_SYS_ADMIN = 21n;
const CAP_SYS_RESOURCE = 24n;

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function statusField(status: string, name: string): string | undefined {
  return new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
}

/** mountinfo: id parent maj:min root mountpoint options [optional...] - fstype source superoptions */
function mounts(): { mountPoint: string; options: string[]; fsType: string }[] {
  return read('/proc/self/mountinfo').split('\n').flatMap((line) => {
    const [left, right] = line.split(' - ');
    if (!left || !right) return [];
    const fields = left.split(' ');
    return [{ mountPoint: fields[4]!, options: (fields[5] ?? '').split(','), fsType: right.split(' ')[0]! }];
  });
}

function engine(): string | undefined {
  // podman (and systemd-nspawn, lxc) tell their processes through the environment and a file.
  const said = process.env.container;
  if (said) return said === 'oci' ? 'a container' : said;
  if (existsSync('/run/.containerenv')) return 'podman';
  if (existsSync('/.dockerenv')) return 'docker'; // (also left in machine images built from docker images: named only beside a restriction)
  if (process.env.KUBERNETES_SERVICE_HOST) return 'kubernetes';
  const cgroups = read('/proc/1/cgroup') + read('/proc/self/cgroup');
  if (/\/docker[-/]|\/docker\.service/.test(cgroups)) return 'docker';
  if (/libpod[-_]/.test(cgroups)) return 'podman';
  if (/kubepods/.test(cgroups)) return 'kubernetes';
  if (/\/(containerd|lxc)\b/.test(cgroups)) return 'a container';
  return undefined;
}

let cached: Confinement | undefined;

export function confinement(): Confinement {
  if (cached) return cached;
  const status = read('/proc/self/status');
  const effective = BigInt(`0x${statusField(status, 'CapEff') ?? '0'}`);
  const bounding = BigInt(`0x${statusField(status, 'CapBnd') ?? '0'}`);
  const has = (cap: bigint, set = effective) => (set & (1n << cap)) !== 0n;
  const profile = (read('/proc/self/attr/apparmor/current') || read('/proc/self/attr/current')).replace(/\0/g, '').trim();
  const all = mounts();
  cached = {
    engine: engine(),
    seccompFiltered: statusField(status, 'Seccomp') === '2',
    noNewPrivs: statusField(status, 'NoNewPrivs') === '1',
    capSysAdmin: has(CAP_SYS_ADMIN),
    capSysAdminBounding: has(CAP_SYS_ADMIN, bounding),
    capSysResource: has(CAP_SYS_RESOURCE),
    appArmorRestrictsUserNamespaces: read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns').trim() === '1',
    appArmorProfile: profile && profile !== 'unconfined' && !profile.startsWith('unconfined ') ? profile : undefined,
    cgroupfsReadOnly: all.some((m) => (m.fsType === 'cgroup2' || m.fsType === 'cgroup') && m.mountPoint.startsWith('/sys/fs/cgroup') && m.options.includes('ro')),
    procMasked: all.some((m) => m.mountPoint.startsWith('/proc/') && !m.mountPoint.startsWith('/proc/sys/fs/binfmt_misc')),
  };
  return cached;
}

/** In prose: "the podman container this process runs in", or "this process's container". */
export function containerName(c: Confinement): string {
  return c.engine ? `the ${c.engine === 'a container' ? '' : `${c.engine} `}container this process runs in` : 'the container this process runs in';
}

/** What a container engine must be told to let sandboxes be made inside its container. */
export const CONTAINER_FIX = 'run that container with --privileged (GitLab runner: privileged = true under [runners.docker] in config.toml; '
  + 'Kubernetes: securityContext.privileged: true), or at least with --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined';
