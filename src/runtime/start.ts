// startContainer / withContainer: options → image → cgroup → bundle → sandbox.
import { statSync } from 'node:fs';
import { CopyError, HostCapabilityError, InvalidOptionsError } from '../errors.ts';
import { cgroupDriver, createSandboxCgroup, type SandboxCgroup } from './cgroups/index.ts';
import { Container } from './container.ts';
import { hostInfo } from './host.ts';
import { loadImage } from './image.ts';
import { normalizeOptions, type ContainerOptions } from './options.ts';
import { reapStale, sandboxId } from './reaper.ts';
import { buildSpec, commandLine } from './spec.ts';
import { makeBundle, removeBundle, writeSpec } from './bundle.ts';
import { launchRuntime } from './launch.ts';
import { waitUntilReady } from './wait.ts';
import { Network, networkNamed } from '../net/network.ts';

/** Starts a sandbox. Resolves once its main process is running; dispose it with `await using` or stop(). */
export function startContainer(options: ContainerOptions = {}): Promise<Container> {
  return startSandbox(options);
}

/** What the project's own adapters may ask for beyond ContainerOptions. */
export interface InternalStartOptions {
  /** A Node IPC channel to the main process (see Container.channel). */
  ipc?: boolean;
  /** See SpecInput.privileged. */
  privileged?: boolean;
  /** A network namespace of its own even in a pool worker (a network's pause sandbox: the network is private). */
  ownNetwork?: boolean;
}

/** Set inside the pool's worker sandboxes; '1' (a worker for one file): sandboxes a test file starts share its worker's localhost. */
export const POOL_WORKER_ENV = 'VITEST_CONTAINER_POOL_WORKER';

export async function startSandbox(options: ContainerOptions, internal: InternalStartOptions = {}): Promise<Container> {
  const normalized = normalizeOptions(options);
  const host = hostInfo();
  await reapStale(host.runRoot, cgroupDriver(), normalized.cgroupParent);
  const image = await loadImage(normalized.image, { pull: normalized.pull, platform: normalized.platform });
  if (!commandLine(normalized, image).length) {
    throw new InvalidOptionsError('INVALID_OPTIONS', `the sandbox has no command: cmd and entrypoint are empty${normalized.cmd?.length === 0 ? ' (cmd: [])' : ''} and the image ${normalized.image} gives none`,
      { fix: "give cmd, e.g. cmd: ['sleep', 'infinity'], or an image with a Cmd or Entrypoint" });
  }
  const user = normalized.user ?? image.config.User;
  const identity = user ? await image.resolveUser(user) : { uid: 0, gid: 0, additionalGids: [] };
  if (normalized.internet) {
    throw new HostCapabilityError('INTERNET_UNAVAILABLE', 'internet access from a sandbox is not available: sandboxes get private networks only (no route out, no host network changes)',
      { fix: 'reach outside services through a bind-mounted socket, or run them as sandboxes on the same network' });
  }
  const network = normalized.network === undefined ? undefined
    : normalized.network instanceof Network ? normalized.network : await networkNamed(normalized.network, pauseSandbox);
  if (normalized.alias) network!.addAlias(normalized.alias);
  const id = sandboxId();
  // c<pid>-<start>-<seq>-<ns> → sbx-<seq>-<pid>: short, and unique among this host's sandboxes
  const [, , seq] = id.split('-');
  const hostname = normalized.hostname ?? normalized.alias ?? `sbx-${seq}-${process.pid}`;
  const runDir = makeBundle(host.runRoot, id);
  let cgroup: SandboxCgroup | undefined;
  try {
    cgroup = createSandboxCgroup(cgroupDriver(), normalized.cgroupParent, id, {
      memoryBytes: normalized.memoryBytes,
      cpus: normalized.cpus,
      cpuset: normalized.cpuset,
      // +1: the sandbox's own pid 1 counts against the limit too.
      pidsMax: normalized.pids === undefined ? undefined : normalized.pids + 1,
    });
    const shared = network && { ...network.namespaces(), hostsFile: network.hostsFile };
    const spec = buildSpec({ options: normalized, image, host, hostname, identity, home: identity.uid === 0 ? '/root' : '/', cgroupPath: cgroup?.path, join: shared,
      inheritNetwork: !network && !internal.ownNetwork && process.env[POOL_WORKER_ENV] === '1', privileged: internal.privileged });
    writeSpec(runDir, spec);
    const monitor = await launchRuntime(['run', '--bundle', runDir], { runRoot: host.runRoot, ipc: internal.ipc });
    const container = new Container({
      id, hostname, image, options: normalized, spec, runDir, cgroup, rootless: host.rootless,
      resolveUser: (u) => image.resolveUser(u), monitor, runRoot: host.runRoot,
    });
    try {
      if (normalized.files.length || normalized.directories.length) {
        await Promise.race([container.held, container.started]);
        await copyIn(container, normalized).catch(async (err: unknown) => {
          container.kill('SIGKILL');
          throw err;
        });
        container.kill('SIGCONT'); // pid 1 starts the main process now
      }
      await container.started;
    } catch (err) {
      await container.wait();
      throw err;
    }
    try {
      await waitUntilReady(container, normalized.waitFor, normalized.timeout);
    } catch (err) {
      await container.stop({ timeout: 0 });
      throw err;
    }
    return container;
  } catch (err) {
    if (cgroup) await cgroup.remove().catch(() => {});
    removeBundle(runDir);
    throw err;
  }
}

/** The files and directories options: copied in while pid 1 holds, before the main process exists. */
async function copyIn(container: Container, options: ReturnType<typeof normalizeOptions>): Promise<void> {
  for (const d of options.directories) {
    const stats = statSync(d.source, { throwIfNoEntry: false });
    if (!stats?.isDirectory()) {
      throw new CopyError(stats ? 'COPY_INVALID_SOURCE' : 'COPY_SOURCE_NOT_FOUND', `directories: ${d.source} ${stats ? 'is not a directory' : 'does not exist'}`);
    }
    await container.copyTo(d.source, d.target, d.owner === undefined ? {} : { owner: d.owner });
  }
  for (const f of options.files) {
    if (f.source !== undefined && !statSync(f.source, { throwIfNoEntry: false })?.isFile()) {
      throw new CopyError('COPY_SOURCE_NOT_FOUND', `files: ${f.source} is not a file`);
    }
    await container.copyTo(f.source ?? Buffer.from(f.content!), f.target, { mode: f.mode, owner: f.owner });
  }
}

/** The sandbox that holds a network's namespace open: nothing but a sleeping process. */
function pauseSandbox(options: { cmd: string[]; hostname: string }): Promise<Container> {
  return startSandbox({ image: 'host', ...options }, { ownNetwork: true });
}

/** A private network: sandboxes started with `network` set to it reach each other by `alias`. */
export function createNetwork(name?: string): Promise<Network> {
  return networkNamed(name, pauseSandbox);
}

/** Runs fn with a fresh sandbox and tears it down afterwards, even when fn throws. */
export async function withContainer<T>(options: ContainerOptions, fn: (container: Container) => Promise<T> | T): Promise<T> {
  const container = await startContainer(options);
  try {
    return await fn(container);
  } finally {
    await container.stop();
  }
}
