// container.commit(): the sandbox's writable layer becomes an image layer in the layer cache,
// on top of the image the sandbox was started from. The runtime streams the overlay's upper
// directory (tree --upper); src/image/commit/ turns it into an OCI layer and an image.
import { InvalidOptionsError, SandboxError } from '../errors.ts';
import { logger } from '../log.ts';
import type { ImageConfig, RuntimeImage } from './image.ts';
import type { NormalizedOptions } from './options.ts';
import { launchTree, type TreeTarget } from './tree-process.ts';
import { TreeDecoder } from './tree-stream.ts';

const log = logger('runtime');

export interface CommitOptions {
  /**
   * Stop the sandbox first (its stop signal, SIGKILL after `timeout` ms; see stop()), then commit what it
   * left: the consistent way to commit a service that has no "flush to disk now" command. true, or { timeout }.
   */
  stop?: boolean | { timeout?: number };
  /** Added to (and overriding) the committed image's environment. */
  env?: Record<string, string>;
  /** The committed image's Cmd. */
  cmd?: string[];
  /** The committed image's Entrypoint (and, as in a Dockerfile, an empty Cmd unless cmd is given). */
  entrypoint?: string[];
  /** The committed image's working directory (absolute). */
  workdir?: string;
  /** The committed image's user ('name', 'uid', 'name:group' or 'uid:gid'). */
  user?: string;
  /** Ports the committed image exposes, besides the ones it exposed already. */
  ports?: number[];
  /** Labels added to the committed image's. */
  labels?: Record<string, string>;
}

/** What commit needs of the sandbox (Container hands it over). */
export interface CommitTarget extends TreeTarget {
  image: RuntimeImage;
  options: NormalizedOptions;
  running: boolean;
  /** pid 1's descriptor of the scratch tmpfs (see native/rootfs.c), once it reported it */
  scratchFd: number | undefined;
  stop(options: { timeout?: number }): Promise<unknown>;
}

const KNOWN = new Set(['stop', 'env', 'cmd', 'entrypoint', 'workdir', 'user', 'ports', 'labels']);

function invalid(message: string, fix?: string): never {
  throw new InvalidOptionsError('INVALID_COMMIT_OPTIONS', `commit: ${message}`, fix ? { fix } : {});
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isStringRecord = (v: unknown): v is Record<string, string> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');

export function checkCommitOptions(o: CommitOptions): void {
  if (typeof o !== 'object' || o === null) invalid('options must be an object');
  const unknown = Object.keys(o).filter((k) => !KNOWN.has(k));
  if (unknown.length) invalid(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`, `the options are: ${[...KNOWN].join(', ')}`);
  if (o.stop !== undefined && typeof o.stop !== 'boolean' && (typeof o.stop !== 'object' || o.stop === null || (o.stop.timeout !== undefined && !(o.stop.timeout >= 0)))) {
    invalid('stop must be true, false or { timeout: milliseconds }');
  }
  if (o.env !== undefined && (!isStringRecord(o.env) || Object.keys(o.env).some((k) => !k || k.includes('=')))) invalid('env must map variable names to string values');
  if (o.cmd !== undefined && !isStringArray(o.cmd)) invalid('cmd must be an array of strings');
  if (o.entrypoint !== undefined && !isStringArray(o.entrypoint)) invalid('entrypoint must be an array of strings');
  if (o.workdir !== undefined && (typeof o.workdir !== 'string' || !o.workdir.startsWith('/'))) invalid('workdir must be an absolute path');
  if (o.user !== undefined && (typeof o.user !== 'string' || !o.user)) invalid('user must be a non-empty string');
  if (o.ports !== undefined && (!Array.isArray(o.ports) || o.ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))) invalid('ports must be port numbers (1-65535)');
  if (o.labels !== undefined && !isStringRecord(o.labels)) invalid('labels must map names to string values');
}

function envMap(list: string[] | undefined): Map<string, string> {
  const env = new Map<string, string>();
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return env;
}

/**
 * The committed image's config: the sandbox's as it was started (the image's config with the
 * start options' env, command, workdir, user and ports over it), then commit's options over
 * that, as `docker commit` does.
 */
export function committedConfig(image: RuntimeImage, started: NormalizedOptions, o: CommitOptions): ImageConfig {
  const base = image.config;
  const env = envMap(base.Env);
  for (const [k, v] of Object.entries({ ...started.env, ...o.env })) env.set(k, v);
  let entrypoint = started.entrypoint ?? base.Entrypoint;
  let cmd = started.cmd ?? (started.entrypoint ? [] : base.Cmd);
  if (o.entrypoint) {
    entrypoint = o.entrypoint;
    cmd = o.cmd ?? [];
  } else if (o.cmd) {
    cmd = o.cmd;
  }
  const ports = new Set([...Object.keys(base.ExposedPorts ?? {}), ...started.ports.map((p) => `${p.port}/tcp`), ...(o.ports ?? []).map((p) => `${p}/tcp`)]);
  const labels = { ...base.Labels, ...o.labels };
  const config: ImageConfig = { ...base, Env: [...env].map(([k, v]) => `${k}=${v}`) };
  if (entrypoint) config.Entrypoint = entrypoint; else delete config.Entrypoint;
  if (cmd) config.Cmd = cmd; else delete config.Cmd;
  const workdir = o.workdir ?? started.workdir ?? base.WorkingDir;
  if (workdir) config.WorkingDir = workdir;
  const user = o.user ?? started.user ?? base.User;
  if (user) config.User = user;
  if (ports.size) config.ExposedPorts = Object.fromEntries([...ports].sort().map((p) => [p, {}]));
  if (Object.keys(labels).length) config.Labels = labels;
  return config;
}

export async function commitSandbox(target: CommitTarget, options: CommitOptions = {}): Promise<string> {
  checkCommitOptions(options);
  const base = target.image.base;
  if (!base) {
    const what = target.image.reference === 'host' ? "the host's own file tree (image 'host')" : `a directory (${target.image.reference})`;
    throw new SandboxError('COMMIT_UNSUPPORTED', `cannot commit sandbox ${target.id}: it runs ${what}, not an image of the layer cache that a layer could be added to`,
      { fix: "start it from an image (an OCI layout, an archive or a registry reference: image: './images/busybox') to commit it; image 'host' has only /tmp writable when started as root" });
  }
  if (!target.running || !target.pid) {
    throw new SandboxError('NOT_RUNNING', `cannot commit sandbox ${target.id}: it is not running, and its writable layer went with it`,
      { fix: 'commit before it stops; commit({ stop: true }) stops it cleanly and commits what it left' });
  }
  if (target.scratchFd === undefined) {
    throw new SandboxError('COMMIT_UNSUPPORTED', `cannot commit sandbox ${target.id}: its runtime did not report a writable layer`);
  }
  const config = committedConfig(target.image, target.options, options);
  const started = Date.now();
  const { LayerCommit } = await import('../image/index.ts');
  const commit = new LayerCommit(base, config);
  const decoder = new TreeDecoder(commit);
  const stop = options.stop === undefined || options.stop === false ? undefined : options.stop === true ? {} : options.stop;
  try {
    const tree = await launchTree(target, ['--upper', String(target.scratchFd), '--stage', commit.stageDir, ...(stop ? ['--hold'] : [])], {
      fail: (e) => new SandboxError('COMMIT_FAILED', `commit of sandbox ${target.id} failed${e ? `: ${e.message}${e.path ? ` (${e.path})` : ''}${e.code ? `: ${e.code}` : ''}` : ''}`),
    });
    if (stop) {
      // The layer is open: it outlives the sandbox for as long as the tree process holds it.
      await Promise.race([tree.ready, tree.done]);
      await target.stop(stop);
      tree.go();
    }
    // 'data' events, not an async iterator: a layer of 100 MB is ~1700 chunks, and each await costs.
    await new Promise<void>((resolve, reject) => {
      tree.stdout.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
          commit.release(chunk); // written out: its memory may move to the thread that hashes it
        } catch (err) {
          tree.kill();
          reject(err as Error);
        }
      });
      tree.stdout.once('end', resolve);
      tree.stdout.once('error', reject);
    });
    await tree.done;
    decoder.finish();
    const result = await commit.finish();
    log('%s committed in %d ms: %s (%d entries, %d bytes of tar)', target.id, Date.now() - started, result.reference, result.entries, result.tarBytes);
    return result.reference;
  } catch (err) {
    commit.abort();
    throw err;
  }
}
