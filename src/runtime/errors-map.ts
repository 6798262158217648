// Turns the native runtime's error events into typed errors that name the
// cause and the fix. native/ only reports what failed (stage, path, errno);
// why it failed is decided here, from what confines this process.
import { userInfo } from 'node:os';
import { CommandError, HostCapabilityError, SandboxError, type ContainerError } from '../errors.ts';
import { findOnPath } from '../path.ts';
import { CONTAINER_FIX, confinement, containerName, type Confinement } from './confinement.ts';
import type { RuntimeEvent } from './events.ts';
import { hostInfo, userNamespaceError, type IdMapping } from './host.ts';

type ErrorEvent = Extract<RuntimeEvent, { type: 'error' }>;

/** What the mapping needs to know about this process and host. */
export interface Circumstances {
  rootless: boolean;
  confinement: Confinement;
  uidMappings: IdMapping[];
  gidMappings: IdMapping[];
  /** newuidmap and newgidmap are on PATH. */
  idMapHelpers: boolean;
  user: string;
}

function circumstances(rootless: boolean): Circumstances {
  const host = hostInfo();
  return {
    rootless, confinement: confinement(), uidMappings: host.uidMappings, gidMappings: host.gidMappings,
    idMapHelpers: findOnPath('newuidmap') !== undefined && findOnPath('newgidmap') !== undefined, user: userInfo().username,
  };
}

export function runtimeError(e: ErrorEvent, rootless: boolean): ContainerError {
  return mapRuntimeError(e, circumstances(rootless));
}

const DENIED = new Set(['EPERM', 'EACCES']);
/** What each stage was doing, for messages. */
const DOING: Record<string, string> = {
  namespaces: "creating the sandbox's namespaces", userns: "writing the user namespace's id maps", clone: "creating the sandbox's first process",
  hostname: 'setting its host name', network: 'bringing up its loopback interface', rootfs: 'preparing its root file system', overlay: 'mounting its overlay',
  mount: 'mounting', devices: 'binding its devices', capabilities: 'setting its capabilities', rlimits: 'setting its resource limits',
  user: "switching to the sandbox's user", cgroup: 'joining its cgroup',
};

/**
 * The typed error for a runtime error event. Every refusal (EPERM, EACCES, a system call that a
 * seccomp profile hides) becomes a HostCapabilityError naming its likely cause and the fix.
 */
export function mapRuntimeError(e: ErrorEvent, c: Circumstances): ContainerError {
  const detail = `${e.message}${e.path ? ` (${e.path})` : ''}${e.code ? `: ${e.code}` : ''}`;
  const doing = DOING[e.stage] ?? e.stage;
  const k = c.confinement;
  // Docker's default seccomp profile answers clone3 with ENOSYS (so that a C library falls back to
  // clone, which it then refuses for new namespaces) unless the container has CAP_SYS_ADMIN.
  if (e.code === 'ENOSYS' && (e.stage === 'clone' || e.stage === 'namespaces')) return containerRestricted(k, doing, detail, 'clone3');
  if (e.stage === 'userns' && (e.path === 'newuidmap' || e.path === 'newgidmap')) return idMapHelperError(e, c, detail);
  if (e.stage === 'namespaces' || e.stage === 'userns') {
    if (k.seccompFiltered && DENIED.has(e.code)) return containerRestricted(k, doing, detail);
    if (c.rootless) return userNamespaceError(detail, k.appArmorRestrictsUserNamespaces ? { appArmorRestricted: true } : {});
    if (DENIED.has(e.code) && !k.capSysAdmin) return containerRestricted(k, doing, detail);
    return new HostCapabilityError('NAMESPACES_UNAVAILABLE', `the kernel refused to create the sandbox's namespaces: ${detail}`,
      { fix: 'use a kernel with pid, net, ipc, uts, mount, cgroup and user namespaces (CONFIG_*_NS=y), and check user.max_*_namespaces in sysctl' });
  }
  if (e.stage === 'overlay' && (e.code === 'ENODEV' || /unknown filesystem/i.test(e.message))) {
    return new HostCapabilityError('OVERLAY_UNAVAILABLE', `this kernel has no overlay filesystem: ${detail}`, { fix: 'sudo modprobe overlay' });
  }
  if (e.stage === 'overlay' && /stacking depth/i.test(e.message)) {
    return new HostCapabilityError('OVERLAY_UNAVAILABLE', `the image's files are already on an overlay stacked as deep as the kernel allows (a container in a container), so a sandbox's overlay cannot go on top: ${detail}`,
      { fix: 'put the image cache on a file system of its own (VITEST_CONTAINER_CACHE=/path/on/a/volume), or run the tests with fewer layers of containers around them' });
  }
  if (e.stage === 'exec' && (e.code === 'ESRCH' || e.code === 'ENOENT')) {
    return new SandboxError('NOT_RUNNING', `the sandbox is no longer running: ${detail}`);
  }
  if (e.stage === 'user' && e.code === 'EINVAL') {
    const unmapped = unmappedId(e.message, c);
    if (unmapped) return unmapped;
  }
  if (e.stage === 'rlimits' && DENIED.has(e.code) && !k.capSysResource) {
    return new HostCapabilityError('CAPABILITY_MISSING', `${doing} failed: raising a hard limit needs CAP_SYS_RESOURCE, which this process lacks${k.engine ? ` (${containerName(k)} drops it)` : ''}: ${detail}`,
      { fix: `ask for no more than this process's own hard limits (ulimit -H -a)${k.engine ? `, or run ${containerName(k)} with --cap-add SYS_RESOURCE` : ''}` });
  }
  if (e.stage === 'ports' && e.code === 'EACCES') {
    return new HostCapabilityError('PORT_NOT_PERMITTED', `binding a host port below 1024 needs root on this host: ${detail}`,
      { fix: 'choose a hostPort of 1024 or more (or leave it out: a free one is picked), or: sudo sysctl -w net.ipv4.ip_unprivileged_port_start=0' });
  }
  // The sandbox's own process (its working directory, its user) and requests to a running sandbox fail for reasons of their own.
  if (DENIED.has(e.code) && !['process', 'user', 'exec', 'file'].includes(e.stage)) return refused(e, c, doing, detail);
  if (e.stage === 'process' || e.stage === 'user') {
    return new CommandError('COMMAND_SETUP_FAILED', `the sandbox's process could not be set up: ${detail}`, 126);
  }
  return new SandboxError('SANDBOX_SETUP_FAILED', `starting the sandbox failed at ${e.stage}: ${detail}`);
}

/** An EPERM or EACCES after the namespaces exist: whoever confines this process refused. */
function refused(e: ErrorEvent, c: Circumstances, doing: string, detail: string): HostCapabilityError {
  const k = c.confinement;
  // Ubuntu 23.10+: the user namespace is made, then AppArmor denies what it is for (uid maps, mounts, pivot_root, ...).
  if (c.rootless && k.appArmorRestrictsUserNamespaces) return userNamespaceError(`${doing} was refused: ${detail}`, { appArmorRestricted: true });
  if (e.stage === 'mount' && e.path === '/proc' && k.procMasked && (k.engine || k.seccompFiltered)) {
    return new HostCapabilityError('CONTAINER_RESTRICTED',
      `${containerName(k)} masks parts of /proc, and the kernel refuses a fresh /proc mount while they are covered: ${detail}`,
      { fix: `${CONTAINER_FIX}; podman also: --security-opt unmask=ALL, docker: --security-opt systempaths=unconfined` });
  }
  if (k.seccompFiltered || (!c.rootless && !k.capSysAdmin)) return containerRestricted(k, doing, detail);
  if (e.stage === 'overlay' && c.rootless) {
    return new HostCapabilityError('OVERLAY_IN_USERNS_UNAVAILABLE', `this kernel does not allow overlay mounts in a user namespace: ${detail}`,
      { fix: 'use Linux 5.11 or newer, or run the tests as root' });
  }
  const profile = k.appArmorProfile ? `the AppArmor profile "${k.appArmorProfile}" this process runs under, or ` : '';
  return new HostCapabilityError('SETUP_NOT_PERMITTED', `${doing} was refused (${e.code}) by ${profile}a security module's policy: ${detail}`,
    { fix: 'look for the denial in the kernel log (sudo dmesg | grep -i -e apparmor -e avc -e seccomp) and allow it for node, or run the tests as root' });
}

/**
 * The container this process runs in filters the system call (seccomp) or withholds the capability it
 * needs. reasons: what exactly, when known better than from the confinement alone.
 */
function containerRestricted(k: Confinement, doing: string, detail: string, syscall?: string, reasons?: string[]): HostCapabilityError {
  const why = reasons ?? [
    ...(k.seccompFiltered ? [`it filters system calls with a seccomp profile (Docker's and podman's default profiles refuse ${syscall ?? 'namespaces, mounts and sethostname'} to a container without CAP_SYS_ADMIN)`] : []),
    ...(!k.capSysAdminBounding || (!k.capSysAdmin && process.getuid!() === 0) ? ['its processes lack CAP_SYS_ADMIN'] : []),
    ...(k.appArmorProfile ? [`it confines them with the AppArmor profile "${k.appArmorProfile}"`] : []),
  ];
  const inContainer = k.engine !== undefined || k.seccompFiltered;
  return new HostCapabilityError('CONTAINER_RESTRICTED',
    `${doing} was refused (${detail}): ${inContainer ? containerName(k) : 'whatever started this process'} forbids it${why.length ? `: ${why.join('; ')}` : ''}`,
    { fix: inContainer ? CONTAINER_FIX : 'run the tests without the seccomp filter or with CAP_SYS_ADMIN (a systemd unit: drop SystemCallFilter= and set AmbientCapabilities=CAP_SYS_ADMIN), or as a plain user with user namespaces' });
}

/** newuidmap/newgidmap could not map the sandbox's ids. */
function idMapHelperError(e: ErrorEvent, c: Circumstances, detail: string): HostCapabilityError {
  if (e.code === 'ENOENT') {
    return new HostCapabilityError('ID_MAP_HELPERS_MISSING', `${e.path} is not installed, so the sandbox's other users cannot be mapped: ${detail}`,
      { fix: 'sudo apt-get install uidmap (Fedora: sudo dnf install shadow-utils)' });
  }
  if (c.confinement.appArmorRestrictsUserNamespaces) return userNamespaceError(detail, { appArmorRestricted: true });
  if (!c.confinement.capSysAdminBounding && DENIED.has(e.code)) {
    return containerRestricted(c.confinement, DOING.userns!, detail, undefined,
      [`${e.path} (setuid root) writes the map with CAP_SYS_ADMIN, which no process in it can have (not in its bounding set)`]);
  }
  if (c.confinement.noNewPrivs) {
    return new HostCapabilityError('NO_NEW_PRIVILEGES',
      `${e.path} is setuid root, but this process runs with no_new_privs, so it gains nothing and cannot map the ids /etc/subuid grants ${c.user}: ${detail}`,
      { fix: 'start the tests without no_new_privs (docker: no --security-opt no-new-privileges; Kubernetes: allowPrivilegeEscalation: true; systemd: NoNewPrivileges=no), or as root' });
  }
  return new HostCapabilityError('SUBORDINATE_IDS_MISSING', `${e.path} refused to map the ids /etc/subuid and /etc/subgid grant ${c.user}: ${detail}`,
    { fix: `check that ${c.user} has ranges in both files (sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${c.user}) and that ${e.path} is setuid root (ls -l $(command -v ${e.path}))` });
}

/** setresuid/setresgid(id) said EINVAL: id has no mapping in the sandbox's user namespace. */
function unmappedId(message: string, c: Circumstances): HostCapabilityError | undefined {
  const m = /setres([ug])id\((\d+)\)/.exec(message);
  if (!m) return undefined;
  const kind = m[1] === 'u' ? 'uid' : 'gid';
  const id = Number(m[2]);
  const maps = kind === 'uid' ? c.uidMappings : c.gidMappings;
  if (!c.rootless || maps.some((r) => id >= r.containerID && id < r.containerID + r.size)) return undefined;
  const range = maps.find((r) => r.containerID === 1);
  const reason = !c.idMapHelpers ? 'newuidmap and newgidmap are not installed'
    : range ? `the range /etc/sub${kind} grants ${c.user} maps only ids 1-${range.size}`
    : `/etc/sub${kind} grants ${c.user} no range`;
  return new HostCapabilityError('SUBORDINATE_IDS_MISSING',
    `the sandbox's user needs ${kind} ${id}, which is not mapped: ${reason}, so only ${c.user}'s own id (as root) exists in the sandbox`,
    { fix: !c.idMapHelpers ? 'sudo apt-get install uidmap (Fedora: sudo dnf install shadow-utils)'
      : `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${c.user}` });
}

export function commandNotFound(path: string, code: string): CommandError {
  return code === 'ENOENT' || code === 'ENOTDIR'
    ? new CommandError('COMMAND_NOT_FOUND', `${path}: not found in the sandbox (exit 127)`, 127,
      { fix: 'check the command and the image (PATH inside the sandbox comes from the image and the env option)' })
    : new CommandError('COMMAND_NOT_EXECUTABLE', `${path}: cannot execute in the sandbox: ${code} (exit 126)`, 126);
}

// Paths already warned about in this process: one warning each, not one per sandbox.
const warnedNotIdmapped = new Set<string>();

/**
 * A mount the kernel could not idmap is bound as it is (the sandbox runs): what host root owns there is
 * nobody's inside, so the sandbox's root cannot write it, nor read what only its owner may. Said once
 * per path, as a process warning (Vitest and Jest show a worker's stderr).
 */
export function warnNotIdmapped(path: string, code: string | undefined): void {
  if (warnedNotIdmapped.has(path)) return;
  warnedNotIdmapped.add(path);
  process.emitWarning(
    `${path} is mounted into the sandbox as it is: this kernel cannot idmap a mount of its file system (${code || 'refused'}), so what host root owns there belongs to nobody inside, and the sandbox's root cannot write it or read its owner-only files`,
    { code: 'VTC_MOUNT_NOT_IDMAPPED', detail: 'fix: keep it on a file system the kernel can idmap (ext4, xfs, btrfs; tmpfs from Linux 6.3; not overlayfs, which / is inside a Docker container), or make what the sandbox needs readable (and writable) by all' },
  );
}

