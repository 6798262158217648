// The one options type every entry point takes (startContainer, withContainer,
// the Vitest and Jest environments), and its validation: unknown keys and
// impossible values are refused here, before anything is created.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { InvalidOptionsError } from '../errors.ts';
import { normalizePorts, type PortOption } from '../net/ports.ts';
import type { Network } from '../net/network.ts';
import { normalizeWaitFor, type WaitFor } from './wait.ts';
import { DEFAULT_CGROUP_PARENT } from './cgroups/types.ts';
import { checkSeccompProfile, seccompFor, type SeccompOption, type SeccompProfile } from './seccomp.ts';

/**
 * Set by containerPool() in its workers: the pool's cgroupParent, the default of every sandbox a
 * test file starts there, so the pool finds (and reaps) them where it put its own.
 */
export const CGROUP_PARENT_ENV = 'VITEST_CONTAINER_CGROUP_PARENT';

export interface MountOption {
  /** Host path. */
  source: string;
  /** Absolute path inside the sandbox. */
  target: string;
  readonly?: boolean;
}

/** A file copied into the sandbox before its main process starts: a host file, or the given content. */
export interface FileCopyOption {
  /** Host path (relative paths from the current directory). Either this or content. */
  source?: string;
  /** The file's content. Either this or source. */
  content?: string;
  /** Absolute path of the file in the sandbox (parent directories are made). */
  target: string;
  /** Its mode (default: the host file's, or 0644 for content). */
  mode?: number;
  /** Its owner: 'name', 'uid', 'name:group' or 'uid:gid', resolved in the image (default: root). */
  owner?: string;
}

/** A host directory whose contents are copied into the sandbox before its main process starts. */
export interface DirectoryCopyOption {
  /** Host directory (relative paths from the current directory). */
  source: string;
  /** Absolute path of the directory in the sandbox (made when missing). */
  target: string;
  /** Owner of everything copied (default: root). */
  owner?: string;
}

export interface ContainerOptions {
  /**
   * 'host' (the host's root filesystem, read-only, under a throwaway layer), a local OCI layout or
   * image archive ('./images/redis', 'oci:DIR', 'docker-archive:FILE'), a registry reference
   * ('redis:7', 'ghcr.io/acme/api:1.4', '…@sha256:…') or 'docker-daemon:NAME[:TAG]'. Default 'host'.
   */
  image?: string;
  /** Registry and daemon images: 'missing' (default: a pulled image is used with no request), 'always' (ask for the current digest), 'never' (cache only). */
  pull?: 'missing' | 'always' | 'never';
  /** Which image of a multi-platform index, e.g. 'linux/arm64'. Default: the host's. */
  platform?: string;
  /** Replaces the image's Cmd. */
  cmd?: string[];
  /** Replaces the image's Entrypoint (and, as with `docker run --entrypoint`, its Cmd unless cmd is given). */
  entrypoint?: string[];
  /** Added to (and overriding) the image's environment. */
  env?: Record<string, string>;
  workdir?: string;
  /** 'name', 'uid', 'name:group' or 'uid:gid', resolved in the image. */
  user?: string;
  hostname?: string;
  /** Memory limit, swap included: bytes or '256m', '1g', '512k'. */
  memory?: number | string;
  /** CPU quota in cores, e.g. 0.5. */
  cpus?: number;
  /** CPUs the sandbox may run on, e.g. '0' or '0-1'. */
  cpuset?: string;
  /** Most processes the sandbox's own programs may have at once. */
  pids?: number;
  mounts?: MountOption[];
  /** Size of the writable layer's tmpfs, e.g. '512m' (default: the kernel's, half of RAM; charged to the memory limit). */
  tmpfsSize?: number | string;
  /** Milliseconds between the stop signal and SIGKILL. Default 2000. */
  stopTimeout?: number;
  /** cgroup under which sandboxes' cgroups are made (relative to each hierarchy's root). Default '/vitest-container'. */
  cgroupParent?: string;
  /** Ports inside the sandbox to reach from the test on 127.0.0.1 (the image's ExposedPorts are added). */
  ports?: PortOption[];
  /** Files copied in before the main process starts (as Testcontainers' withCopyFilesToContainer / withCopyContentToContainer). */
  files?: FileCopyOption[];
  /** Host directories whose contents are copied in before the main process starts (withCopyDirectoriesToContainer). */
  directories?: DirectoryCopyOption[];
  /** When the sandbox counts as started: a log line, a port, a command, an HTTP status, the image's healthcheck. */
  waitFor?: WaitFor | WaitFor[];
  /** Milliseconds the waits may take. Default 60000. */
  timeout?: number;
  /** A private network shared with other sandboxes: a Network from createNetwork(), or a name (created on first use in this process). */
  network?: Network | string;
  /** The name other members of the network reach this sandbox by. */
  alias?: string;
  /** Route to the internet from the sandbox. Off by default; not available on every host (you get an error saying why). */
  internet?: boolean;
  /**
   * Which system calls the sandbox's processes may make: 'default' (Docker's default semantics: no keyring,
   * io_uring, userfaultfd, perf, bpf, kexec, modules, clock setting, namespaces or mounts), 'unconfined'
   * (no filter), the path of an OCI seccomp JSON profile, or such a profile as an object.
   */
  seccomp?: SeccompOption;
}

/** Smallest memory limit accepted: below it even a shell cannot start (Docker uses the same floor). */
export const MIN_MEMORY_BYTES = 6 * 1024 * 1024;

export interface NormalizedOptions {
  image: string;
  pull: 'missing' | 'always' | 'never';
  platform: string | undefined;
  cmd: string[] | undefined;
  entrypoint: string[] | undefined;
  env: Record<string, string>;
  workdir: string | undefined;
  user: string | undefined;
  hostname: string | undefined;
  memoryBytes: number | undefined;
  cpus: number | undefined;
  cpuset: string | undefined;
  pids: number | undefined;
  mounts: MountOption[];
  tmpfsSizeBytes: number | undefined;
  stopTimeout: number;
  cgroupParent: string;
  ports: { port: number; hostPort: number }[];
  /** sources resolved to absolute host paths */
  files: FileCopyOption[];
  directories: DirectoryCopyOption[];
  waitFor: WaitFor[];
  timeout: number;
  network: Network | string | undefined;
  alias: string | undefined;
  internet: boolean;
  /** A profile read and checked (a path is loaded here), or the two names. */
  seccomp: 'default' | 'unconfined' | SeccompProfile;
}

const KNOWN_KEYS = new Set<string>([
  'image', 'pull', 'platform', 'cmd', 'entrypoint', 'env', 'workdir', 'user', 'hostname', 'memory', 'cpus', 'cpuset', 'pids',
  'mounts', 'tmpfsSize', 'stopTimeout', 'cgroupParent', 'ports', 'files', 'directories', 'waitFor', 'timeout', 'network', 'alias', 'internet', 'seccomp',
]);

/**
 * Largest size accepted for memory and tmpfsSize: 2^53 - 1 bytes (8 PiB), the largest whole number a
 * JavaScript number holds exactly. The kernel takes larger limits, but they would be read back rounded,
 * and a number past it (2 ** 64, '16777216t') would reach the kernel as something else.
 */
export const MAX_SIZE_BYTES = Number.MAX_SAFE_INTEGER;
/** Largest pids limit: the kernel's PID_MAX_LIMIT (4194304) on 64-bit. */
export const MAX_PIDS = 4_194_304;

function invalid(message: string, fix?: string): never {
  throw new InvalidOptionsError('INVALID_OPTIONS', message, fix ? { fix } : {});
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** '256m' → 268435456. Accepts k/m/g/t with optional 'b'/'ib' (1024-based, as Docker does). */
export function parseBytes(value: number | string, what: string): number {
  let bytes: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0 || !Number.isInteger(value)) invalid(`${what}: ${value} is not a positive whole number of bytes`);
    bytes = value;
  } else {
    if (typeof value !== 'string') invalid(`${what} must be a number of bytes or a size like '256m'`);
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
    if (!m) invalid(`${what}: cannot read "${value}" as a size`, `write it like 512k, 256m or 1g`);
    bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
    if (bytes <= 0) invalid(`${what}: "${value}" is not a positive size`);
  }
  if (bytes > MAX_SIZE_BYTES) invalid(`${what}: ${value} is more than the largest size accepted (${MAX_SIZE_BYTES} bytes, 8 PiB)`, `give a size below 8p, e.g. '4g'`);
  return bytes;
}

/** Below a MiB the writable layer could not even hold its own directories. */
const MIN_TMPFS_BYTES = 1024 ** 2;

function tmpfsSize(value: number | string): number {
  const bytes = parseBytes(value, 'tmpfsSize');
  if (bytes < MIN_TMPFS_BYTES) invalid(`tmpfsSize: ${value} is below the 1 MiB the writable layer needs`, "give at least '1m'");
  return bytes;
}

/** NUL ends a C string: the kernel would see a different command, variable or path than the one given. */
function noNul(value: string, what: string): void {
  if (value.includes('\0')) invalid(`${what} contains a NUL character (${JSON.stringify(value)}), which no command line, environment or path can hold`);
}

function stringArray(value: unknown, what: string): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) invalid(`${what} must be an array of strings`);
  (value as string[]).forEach((v, i) => noNul(v, `${what}[${i}]`));
  return value as string[];
}

function cpusetCpus(spec: string, hostCpus: number): void {
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) invalid(`cpuset: cannot read "${spec}"`, `write it like "0", "0-1" or "0,2"`);
    const hi = Number(m[2] ?? m[1]);
    if (hi >= hostCpus) invalid(`cpuset: CPU ${hi} does not exist (this host has CPUs 0-${hostCpus - 1})`);
  }
}

function copyTarget(value: unknown, what: string): string {
  if (typeof value !== 'string' || !value.startsWith('/')) invalid(`${what}.target must be an absolute path in the sandbox`);
  noNul(value, `${what}.target`);
  return value;
}

function copyOwner(value: unknown, what: string): string | undefined {
  if (value !== undefined && (typeof value !== 'string' || !value)) invalid(`${what}.owner must be a user ('name', 'uid', 'name:group' or 'uid:gid')`);
  return value as string | undefined;
}

function fileCopies(value: unknown): FileCopyOption[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('files must be an array of { source | content, target, mode?, owner? }');
  return value.map((f: FileCopyOption, i) => {
    const what = `files[${i}]`;
    if (!f || typeof f !== 'object') invalid(`${what} must be { source | content, target }`);
    if ((f.source === undefined) === (f.content === undefined)) invalid(`${what} needs either source (a host file) or content, not both`);
    if (f.source !== undefined && (typeof f.source !== 'string' || !f.source)) invalid(`${what}.source must be a host path`);
    if (f.content !== undefined && typeof f.content !== 'string') invalid(`${what}.content must be a string`);
    if (f.mode !== undefined && (!Number.isInteger(f.mode) || f.mode < 0 || f.mode > 0o7777)) invalid(`${what}.mode must be a file mode like 0o644`);
    const target = copyTarget(f.target, what);
    if (target.endsWith('/')) invalid(`${what}.target must name the file, not a directory`);
    return { ...f, target, owner: copyOwner(f.owner, what), ...(f.source !== undefined ? { source: resolve(f.source) } : {}) };
  });
}

function directoryCopies(value: unknown): DirectoryCopyOption[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) invalid('directories must be an array of { source, target, owner? }');
  return value.map((d: DirectoryCopyOption, i) => {
    const what = `directories[${i}]`;
    if (!d || typeof d !== 'object' || typeof d.source !== 'string' || !d.source) invalid(`${what} needs a host directory as source`);
    return { source: resolve(d.source), target: copyTarget(d.target, what), owner: copyOwner(d.owner, what) };
  });
}

export function normalizeOptions(options: ContainerOptions = {}): NormalizedOptions {
  if (typeof options !== 'object' || options === null) invalid('options must be an object');
  const unknown = Object.keys(options).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length) invalid(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`,
    `the options are: ${[...KNOWN_KEYS].join(', ')}`);
  const hostCpus = availableParallelism();

  const image = options.image ?? 'host';
  if (typeof image !== 'string' || !image) invalid('image must be a non-empty string');
  noNul(image, 'image');
  const pull = options.pull ?? 'missing';
  if (!['missing', 'always', 'never'].includes(pull)) invalid(`pull: ${JSON.stringify(options.pull)} must be 'missing', 'always' or 'never'`);
  if (options.platform !== undefined && (typeof options.platform !== 'string' || !/^[a-z0-9_]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/.test(options.platform))) {
    invalid(`platform: ${JSON.stringify(options.platform)} is not OS/ARCH[/VARIANT]`, 'write it like linux/amd64, linux/arm64 or linux/arm/v7');
  }

  let memoryBytes: number | undefined;
  if (options.memory !== undefined) {
    memoryBytes = parseBytes(options.memory, 'memory');
    if (memoryBytes < MIN_MEMORY_BYTES) {
      invalid(`memory: ${options.memory} is below the ${MIN_MEMORY_BYTES / 1024 / 1024} MiB a sandbox needs to start a process`);
    }
  }
  let cpus: number | undefined;
  if (options.cpus !== undefined) {
    cpus = options.cpus;
    if (typeof cpus !== 'number' || !Number.isFinite(cpus) || cpus <= 0) invalid(`cpus: ${String(options.cpus)} must be a number above 0, e.g. 0.5`);
    if (cpus > hostCpus) invalid(`cpus: ${cpus} is more than the ${hostCpus} CPUs this host has`);
    if (cpus < 0.01) invalid(`cpus: ${cpus} is below the smallest quota the kernel accepts (0.01)`);
  }
  if (options.cpuset !== undefined) {
    if (typeof options.cpuset !== 'string') invalid('cpuset must be a string like "0-1"');
    cpusetCpus(options.cpuset, hostCpus);
  }
  if (options.pids !== undefined && (!Number.isInteger(options.pids) || options.pids < 1 || options.pids > MAX_PIDS)) {
    invalid(`pids: ${String(options.pids)} must be a whole number from 1 to ${MAX_PIDS} (the kernel's largest pid count)`);
  }
  const env = options.env ?? {};
  if (typeof env !== 'object' || env === null || Array.isArray(env) || Object.entries(env).some(([k, v]) => typeof v !== 'string' || !k || k.includes('='))) {
    invalid('env must map variable names to string values');
  }
  for (const [k, v] of Object.entries(env)) noNul(`${k}=${v}`, `env.${k.replaceAll('\0', '\\0')}`);
  const mounts = options.mounts ?? [];
  if (!Array.isArray(mounts)) invalid('mounts must be an array of { source, target, readonly? }');
  for (const m of mounts) {
    if (!m || typeof m.source !== 'string' || typeof m.target !== 'string' || !m.target.startsWith('/')) {
      invalid(`mounts: ${JSON.stringify(m)} needs a host "source" and an absolute "target"`);
    }
    noNul(m.source, 'mounts[].source');
    noNul(m.target, 'mounts[].target');
  }
  for (const key of ['workdir', 'user', 'hostname'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'string') invalid(`${key} must be a string`);
    if (options[key] !== undefined) noNul(options[key], key);
  }
  if (options.workdir !== undefined && !options.workdir.startsWith('/')) invalid(`workdir: "${options.workdir}" must be an absolute path`);
  if (options.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(options.hostname)) {
    invalid(`hostname: "${options.hostname}" is not a valid host name`);
  }
  const stopTimeout = options.stopTimeout ?? 2000;
  if (!Number.isFinite(stopTimeout) || stopTimeout < 0) invalid('stopTimeout must be a number of milliseconds >= 0');
  const cgroupParent = options.cgroupParent ?? (process.env[CGROUP_PARENT_ENV] || DEFAULT_CGROUP_PARENT);
  if (typeof cgroupParent !== 'string' || !cgroupParent.startsWith('/') || cgroupParent.split('/').includes('..')) {
    invalid(`cgroupParent: "${String(cgroupParent)}" must be an absolute cgroup path without ".."`);
  }
  if (options.network !== undefined && typeof options.network !== 'string' && (typeof options.network !== 'object' || !('addAlias' in options.network))) {
    invalid('network must be a Network from createNetwork() or a network name');
  }
  if (options.alias !== undefined && options.network === undefined) invalid('alias needs a network: alias is the name other members of the network use', 'add network: createNetwork() (or a name)');
  if (options.internet !== undefined && typeof options.internet !== 'boolean') invalid('internet must be true or false');
  const timeout = options.timeout ?? 60_000;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) invalid('timeout must be a number of milliseconds above 0');
  let seccomp: NormalizedOptions['seccomp'] = 'default';
  if (options.seccomp === 'unconfined' || options.seccomp === undefined || options.seccomp === 'default') seccomp = options.seccomp ?? 'default';
  else if (typeof options.seccomp === 'string') seccomp = seccompFor(options.seccomp, [])!; // a path: read and checked now
  else seccomp = checkSeccompProfile(options.seccomp);
  return {
    image,
    pull,
    platform: options.platform,
    cmd: stringArray(options.cmd, 'cmd'),
    entrypoint: stringArray(options.entrypoint, 'entrypoint'),
    env,
    workdir: options.workdir,
    user: options.user,
    hostname: options.hostname,
    memoryBytes,
    cpus,
    cpuset: options.cpuset,
    pids: options.pids,
    mounts,
    tmpfsSizeBytes: options.tmpfsSize === undefined ? undefined : tmpfsSize(options.tmpfsSize),
    stopTimeout,
    cgroupParent: cgroupParent.replace(/\/+$/, '') || '/',
    ports: normalizePorts(options.ports),
    files: fileCopies(options.files),
    directories: directoryCopies(options.directories),
    waitFor: normalizeWaitFor(options.waitFor),
    timeout,
    network: options.network,
    alias: options.alias,
    internet: options.internet ?? false,
    seccomp,
  };
}
