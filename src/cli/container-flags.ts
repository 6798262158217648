// The sandbox options as command-line flags, shared by `doctor` (which checks
// that they can work here) and `run` (which starts a sandbox with them).
import { resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import type { ContainerOptions, MountOption } from '../runtime/options.ts';
import type { PortOption } from '../net/ports.ts';
import type { WaitFor } from '../runtime/wait.ts';
import { UsageError } from './output.ts';

export const containerFlags = {
  memory: { type: 'string' },
  cpus: { type: 'string' },
  cpuset: { type: 'string' },
  pids: { type: 'string' },
  port: { type: 'string', short: 'p', multiple: true },
  env: { type: 'string', short: 'e', multiple: true },
  mount: { type: 'string', short: 'v', multiple: true },
  workdir: { type: 'string', short: 'w' },
  user: { type: 'string', short: 'u' },
  hostname: { type: 'string' },
  seccomp: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const containerFlagsHelp = `Sandbox options (the same as in environmentOptions.container):
  --memory SIZE        memory limit, e.g. 256m, 1g
  --cpus N             CPU quota in cores, e.g. 0.5
  --cpuset LIST        CPUs to run on, e.g. 0-1
  --pids N             most processes at once
  -p, --port [HOST:]PORT  forward a port of the sandbox to 127.0.0.1 (repeatable)
  -e, --env K=V        environment variable (repeatable)
  -v, --mount SRC:DST[:ro]  bind-mount a host path (repeatable)
  -w, --workdir DIR    working directory inside the sandbox
  -u, --user USER      user inside the sandbox: name, uid, name:group or uid:gid
  --hostname NAME      host name inside the sandbox
  --seccomp PROFILE    default, unconfined, or the path of an OCI seccomp JSON profile`;

/** How `run` waits for the sandbox to be ready before it runs the command, as the environment's waitFor and timeout. */
export const waitFlags = {
  'wait-port': { type: 'string', multiple: true },
  'wait-log': { type: 'string' },
  timeout: { type: 'string' },
  'no-wait': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export const waitFlagsHelp = `Readiness (as environmentOptions.container's waitFor and timeout):
  --wait-port PORT     wait until PORT listens inside the sandbox (repeatable);
                       by default every port the image exposes (ExposedPorts)
  --wait-log TEXT      wait until the main process prints TEXT (/regexp/ for a pattern)
  --timeout MS         how long the waits may take (default 60000)
  --no-wait            start the command at once`;

type WaitValues = { 'wait-port'?: string[]; 'wait-log'?: string; timeout?: string; 'no-wait'?: boolean };

/** The waits asked for on the command line (undefined: none asked for, use the defaults), and the timeout. */
export function waitOptions(values: WaitValues): { waitFor: WaitFor[] | undefined; timeout: number | undefined } {
  const waits: WaitFor[] = (values['wait-port'] ?? []).map((p) => {
    const n = number(p, 'wait-port');
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UsageError(`--wait-port: "${p}" is not a port number`);
    return { port: n };
  });
  const log = values['wait-log'];
  if (log !== undefined) {
    const re = /^\/(.+)\/([a-z]*)$/.exec(log);
    try {
      waits.push({ log: re ? new RegExp(re[1]!, re[2]) : log });
    } catch (err) {
      throw new UsageError(`--wait-log: ${(err as Error).message}`);
    }
  }
  if (values['no-wait'] && waits.length) throw new UsageError('--no-wait and --wait-port/--wait-log contradict each other');
  return {
    waitFor: values['no-wait'] ? [] : waits.length ? waits : undefined,
    timeout: values.timeout === undefined ? undefined : number(values.timeout, 'timeout'),
  };
}

type FlagValues = { [K in keyof typeof containerFlags]?: (typeof containerFlags)[K] extends { multiple: true } ? string[] : string };

function number(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag}: "${value}" is not a number`);
  return n;
}

function port(value: string): PortOption {
  const m = /^(?:(\d+):)?(\d+)$/.exec(value);
  if (!m) throw new UsageError(`--port: "${value}" is not PORT or HOST:PORT`);
  return m[1] === undefined ? Number(m[2]) : { port: Number(m[2]), hostPort: Number(m[1]) };
}

function mount(value: string): MountOption {
  const parts = value.split(':');
  const readonly = parts.length === 3 && parts[2] === 'ro';
  if (parts.length === 3 && !readonly && parts[2] !== 'rw') throw new UsageError(`--mount: "${value}": the third part may only be ro or rw`);
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) throw new UsageError(`--mount: "${value}" is not SRC:DST[:ro]`);
  // A relative source means the caller's directory, as with docker -v ./x:/x.
  return { source: resolve(parts[0]), target: parts[1], readonly };
}

function env(values: string[]): Record<string, string> {
  return Object.fromEntries(values.map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--env: "${kv}" is not K=V`);
    return [kv.slice(0, eq), kv.slice(eq + 1)];
  }));
}

/** Flags → ContainerOptions; only the flags given become keys, so the runtime's defaults apply to the rest. Validation beyond syntax is the runtime's. */
export function containerOptions(values: FlagValues, image: string | undefined): ContainerOptions {
  const o: ContainerOptions = {};
  if (image !== undefined) o.image = image;
  if (values.memory !== undefined) o.memory = values.memory;
  if (values.cpus !== undefined) o.cpus = number(values.cpus, 'cpus');
  if (values.cpuset !== undefined) o.cpuset = values.cpuset;
  if (values.pids !== undefined) o.pids = number(values.pids, 'pids');
  if (values.port?.length) o.ports = values.port.map(port);
  if (values.env?.length) o.env = env(values.env);
  if (values.mount?.length) o.mounts = values.mount.map(mount);
  if (values.workdir !== undefined) o.workdir = values.workdir;
  if (values.user !== undefined) o.user = values.user;
  if (values.hostname !== undefined) o.hostname = values.hostname;
  if (values.seccomp !== undefined) o.seccomp = values.seccomp;
  return o;
}

/** True when the options ask for cgroup limits (which need a writable cgroup). */
export function wantsLimits(o: ContainerOptions): boolean {
  return o.memory !== undefined || o.cpus !== undefined || o.cpuset !== undefined || o.pids !== undefined;
}
