// Options + image → one OCI runtime-spec config.json. This file is where the
// policy lives (which mounts, which capabilities, which paths are masked); the
// native runtime only executes what it is given, and crun or runc could too.
import { readFileSync } from 'node:fs';
import type { HostInfo } from './host.ts';
import type { Identity, RuntimeImage } from './image.ts';
import type { NormalizedOptions } from './options.ts';
import { exposedPorts, PORTS_ANNOTATION, portsAnnotation } from '../net/ports.ts';
import { seccompFor, type SeccompProfile } from './seccomp.ts';

// The set Docker and runc grant by default.
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

// Every capability: for privileged sandboxes (the pool's workers, which start sandboxes of their own).
export const ALL_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

// runc's defaults: kernel interfaces a sandbox must not read or write.
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const ANNOTATIONS = {
  lowerDirs: 'org.vitest-container.rootfs.lowerdirs',
  overlayOptions: 'org.vitest-container.rootfs.options',
  upperSize: 'org.vitest-container.rootfs.upper-size',
  compose: 'org.vitest-container.rootfs.compose',
  freshDirs: 'org.vitest-container.rootfs.fresh-dirs',
  idmapLayers: 'org.vitest-container.rootfs.idmap',
  /** "true": pid 1 waits for SIGCONT before it starts the main process (files are copied in meanwhile) */
  hold: 'org.vitest-container.hold',
  seccompInherit: 'org.vitest-container.seccomp.inherit',
} as const;

/** The writable layer's size cap when tmpfsSize is not given (it holds the root's writes and /tmp). */
export const DEFAULT_TMPFS_SIZE_BYTES = 1024 ** 3;

export interface ProcessSpec {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids: number[] };
  capabilities: Record<'bounding' | 'effective' | 'permitted', string[]>;
  noNewPrivileges: boolean;
}

export interface MountSpec { destination: string; type: string; source: string; options?: string[] }

export interface RuntimeSpec {
  ociVersion: string;
  process: ProcessSpec;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: MountSpec[];
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: HostInfo['uidMappings'];
    gidMappings?: HostInfo['gidMappings'];
    cgroupsPath?: string;
    seccomp?: SeccompProfile;
    maskedPaths: string[];
    readonlyPaths: string[];
    rootfsPropagation: string;
  };
  annotations: Record<string, string>;
}

/** `docker run` semantics: --entrypoint replaces the image's Entrypoint and drops its Cmd. */
export function commandLine(options: NormalizedOptions, image: RuntimeImage): string[] {
  const entrypoint = options.entrypoint ?? image.config.Entrypoint ?? [];
  const cmd = options.cmd ?? (options.entrypoint ? [] : image.config.Cmd ?? []);
  return [...entrypoint, ...cmd];
}

export function environment(options: NormalizedOptions, image: RuntimeImage, hostname: string, home: string): string[] {
  const env = new Map<string, string>([
    ['PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    ['HOSTNAME', hostname],
    ['HOME', home],
  ]);
  for (const kv of image.config.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of Object.entries(options.env)) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

function mapped(mappings: HostInfo['gidMappings'], id: number): boolean {
  return mappings.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/** The ports asked for, plus the ones the image exposes. */
export function forwardedPorts(options: NormalizedOptions, image: RuntimeImage): { port: number; hostPort: number }[] {
  const ports = [...options.ports];
  for (const port of exposedPorts(image.config.ExposedPorts)) if (!ports.some((p) => p.port === port)) ports.push({ port, hostPort: 0 });
  return ports;
}

export interface SpecInput {
  options: NormalizedOptions;
  image: RuntimeImage;
  host: HostInfo;
  hostname: string;
  identity: Identity;
  home: string;
  cgroupPath: string | undefined;
  /** Namespaces to join instead of creating (a shared network). */
  join?: { network: string; user?: string; hostsFile: string } | undefined;
  /** Stay in the caller's network namespace (sandboxes started from inside a pool worker share its localhost). */
  inheritNetwork?: boolean;
  /**
   * The caller's own identity (no user namespace as root), all capabilities, no seccomp filter, no no_new_privs,
   * no cgroup namespace and the host's cgroup tree writable inside: for the pool's worker sandboxes,
   * which run the test runner itself (as `pool: 'forks'` would) and must start sandboxes of their own.
   */
  privileged?: boolean;
}

/** ALL_CAPABILITIES less what this process's own bounding set lacks (no one can grant more). */
function availableCapabilities(): string[] {
  const status = readFileSync('/proc/self/status', 'utf8');
  const bounding = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
  return ALL_CAPABILITIES.filter((_, bit) => (bounding >> BigInt(bit)) & 1n);
}

export function buildSpec({ options, image, host, hostname, identity, home, cgroupPath, join, inheritNetwork, privileged }: SpecInput): RuntimeSpec {
  const caps = privileged ? availableCapabilities() : DEFAULT_CAPABILITIES;
  // Every sandbox but a pool worker has a user namespace: a rootless one maps the caller, a root one an
  // unprivileged range (never host root). Joining a network means joining its user namespace.
  const userns = host.rootless || !privileged;
  const createsUserns = userns && !join?.user;
  // Host files keep host ids; a root-started sandbox's ids are a shifted range, so what it is given from the
  // host (its mounts, a rootfs: directory) is seen through an idmapped mount of its user namespace.
  const idmapsHostIds = userns && !host.rootless;
  // devpts wants a tty group; in a user namespace it must be a mapped gid.
  const ttyGroup = !userns || join?.user || mapped(host.gidMappings, 5) ? ['gid=5'] : [];
  const mounts: MountSpec[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...ttyGroup] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ...(privileged ? [
      { destination: '/sys/fs/cgroup', type: 'bind', source: '/sys/fs/cgroup', options: ['rbind', 'rw'] },
      // The worker's own run root, for the sandboxes it starts (the host's is under a read-only /run).
      { destination: host.runRoot, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=0700'] },
    ] : []),
    ...(join ? [{ destination: '/etc/hosts', type: 'bind', source: join.hostsFile, options: ['bind', 'ro'] }] : []),
    // Read-only means all the way down ('rro'): a mount the host has below the source stays read-only too.
    // Started by root, a granted mount is idmapped ('ridmap'): the sandbox's root owns what host root owns
    // there, so it can use the directory it was given (rootless, the caller is the sandbox's root already).
    ...options.mounts.map((m) => ({
      destination: m.target, type: 'bind', source: m.source,
      options: ['rbind', m.readonly ? 'rro' : 'rw', ...(idmapsHostIds ? ['ridmap'] : [])],
    })),
  ];
  const overlayOptions = [...image.overlayOptions];
  // In a user namespace overlay keeps its metadata in user.* xattrs.
  if (userns && !overlayOptions.includes('userxattr')) overlayOptions.push('userxattr');
  const annotations: Record<string, string> = { [ANNOTATIONS.lowerDirs]: image.lowerDirs.join(':') };
  if (overlayOptions.length) annotations[ANNOTATIONS.overlayOptions] = overlayOptions.join(',');
  // One cap for everything the sandbox writes: the root's upper layer and /tmp live on one tmpfs.
  annotations[ANNOTATIONS.upperSize] = String(options.tmpfsSizeBytes ?? DEFAULT_TMPFS_SIZE_BYTES);
  // /tmp starts empty (not the image's, nor the host's). A pool worker keeps the host's /tmp under its
  // throwaway layer instead: the project (and its node_modules) may live there.
  if (!privileged) annotations[ANNOTATIONS.freshDirs] = '/tmp';
  // A root-started sandbox could write none of the host's files in image 'host' (their owners are not in
  // its id range): its top-level directories are bound read-only instead of overlaid, at a fraction of the cost.
  if (image.compose) annotations[ANNOTATIONS.compose] = idmapsHostIds ? 'toplevel-readonly' : image.compose;
  if (image.hostOwned && idmapsHostIds) annotations[ANNOTATIONS.idmapLayers] = 'true';
  if (options.files.length || options.directories.length) annotations[ANNOTATIONS.hold] = 'true';
  const seccomp = privileged ? undefined : seccompFor(options.seccomp, caps);
  // The default profile allows all that a main process does before exec: pid 1 installs it once and the
  // main process inherits it (native/main.c). A user's profile goes in last, in the main process.
  if (seccomp && options.seccomp === 'default') annotations[ANNOTATIONS.seccompInherit] = 'true';
  const ports = forwardedPorts(options, image);
  if (ports.length) annotations[PORTS_ANNOTATION] = portsAnnotation(ports);
  return {
    ociVersion: '1.2.0',
    process: {
      args: commandLine(options, image),
      env: environment(options, image, hostname, home),
      cwd: options.workdir ?? image.config.WorkingDir ?? '/',
      user: identity,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: !privileged,
    },
    root: { path: 'rootfs', readonly: false },
    hostname,
    mounts,
    linux: {
      namespaces: [
        { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' },
        ...(privileged ? [] : [{ type: 'cgroup' }]),
        ...(inheritNetwork ? [] : [join ? { type: 'network', path: join.network } : { type: 'network' }]),
        ...(join?.user ? [{ type: 'user', path: join.user }] : userns ? [{ type: 'user' }] : []),
      ],
      ...(createsUserns ? { uidMappings: host.uidMappings, gidMappings: host.gidMappings } : {}),
      ...(cgroupPath ? { cgroupsPath: cgroupPath } : {}),
      ...(seccomp ? { seccomp } : {}),
      // A pool worker is the test runner itself, with the caller's rights: masking /proc there would
      // only make it "too revealing" for the sandboxes it starts (the kernel then refuses their /proc).
      maskedPaths: privileged ? [] : MASKED_PATHS,
      readonlyPaths: privileged ? [] : READONLY_PATHS,
      rootfsPropagation: 'rprivate',
    },
    annotations,
  };
}
