// Builds through the real builder, and checks through tools that are not ours:
// skopeo and umoci read the layout, runc runs what umoci unpacks.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { AptUnreachableError, ensureImage, setQuiet, type BuildOptions, type BuildResult } from '../../rootfs/index.ts';

export const isRoot = process.getuid?.() === 0;

/**
 * Build a recipe (by default into the repo's .cache/images, so later runs reuse it).
 * Undefined only when apt cannot reach its mirrors: the one reason to skip, on a developer's
 * machine. In CI (CI=true) that is a failure: a green run there must have built and checked them.
 */
export async function buildOrUnreachable(recipe: string, opts: Partial<BuildOptions> = {}): Promise<BuildResult | undefined> {
  setQuiet(true);
  try {
    return await ensureImage(recipe, opts);
  } catch (err) {
    if (err instanceof AptUnreachableError && !inCI()) return undefined;
    throw err;
  }
}

/** CI sets CI=true (as .ci/run's environment does); any value but "false" and "0" counts. */
function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
}

export interface OciConfig {
  architecture: string;
  os: string;
  config: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[];
    Cmd?: string[];
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string>;
    Healthcheck?: { Test: string[] };
  };
  rootfs: { type: string; diff_ids: string[] };
}

/** The config blob as skopeo finds it (raw: its parsed form drops Docker's Healthcheck). */
export async function skopeoConfig(image: BuildResult): Promise<OciConfig> {
  const { stdout } = await execa('skopeo', ['inspect', '--config', '--raw', `oci:${image.layout}:${image.tag}`]);
  return JSON.parse(stdout) as OciConfig;
}

export async function skopeoInspect(image: BuildResult): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  const { stdout } = await execa('skopeo', ['inspect', `oci:${image.layout}:${image.tag}`]);
  return JSON.parse(stdout) as { Digest: string; Layers: string[]; Architecture: string };
}

/** umoci verifies every digest while it unpacks; the bundle holds rootfs/ and config.json. */
export async function umociUnpack(image: BuildResult, bundle: string): Promise<void> {
  await execa('umoci', ['unpack', '--image', `${image.layout}:${image.tag}`, bundle]);
}

/** sha256 of a blob's bytes, and of its gunzipped bytes, computed here rather than by the builder. */
export async function blobDigests(image: BuildResult, digest: string): Promise<{ digest: string; diffId: string }> {
  const bytes = await readFile(join(image.layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  return { digest: sha(bytes), diffId: sha(gunzipSync(bytes)) };
}

export { freePort } from '../helpers/host.ts';

interface RuntimeSpec {
  process: { args: string[]; terminal?: boolean; env?: string[] };
  linux: { namespaces: { type: string }[] };
}

/**
 * Run a umoci bundle with runc, detached. The network namespace is dropped so the
 * service is reachable on the host's loopback (only for this check: the project's
 * own runtime gives containers private networks). Returns a function that removes it.
 */
export async function runcStart(bundle: string, id: string, args: (image: string[]) => string[]): Promise<() => Promise<void>> {
  const path = join(bundle, 'config.json');
  const spec = JSON.parse(await readFile(path, 'utf8')) as RuntimeSpec;
  spec.process.terminal = false;
  spec.process.args = args(spec.process.args);
  spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== 'network');
  await writeFile(path, JSON.stringify(spec));
  // The container inherits runc's stdout/stderr: a file descriptor, not a pipe that
  // would stay open (and keep us waiting) as long as the service runs.
  const log = openSync(join(bundle, 'container.log'), 'w');
  try {
    const runc = spawn('runc', ['run', '--detach', '--bundle', bundle, id], { stdio: ['ignore', log, log] });
    const [code] = (await once(runc, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`runc run exited with ${code}: ${await readFile(join(bundle, 'container.log'), 'utf8')}`);
  } finally {
    closeSync(log);
  }
  return async () => {
    await execa('runc', ['delete', '--force', id]);
  };
}

/** Fails fast, with the service's output, when the container is no longer running. */
export async function assertRunning(id: string, bundle: string): Promise<void> {
  const { stdout } = await execa('runc', ['state', id]);
  const { status } = JSON.parse(stdout) as { status: string };
  if (status !== 'running') {
    const log = await readFile(join(bundle, 'container.log'), 'utf8').catch(() => '');
    throw new Error(`container ${id} is ${status}; its output:\n${log}`);
  }
}

export async function runcExec(id: string, args: string[], user?: string) {
  return execa('runc', ['exec', ...(user ? ['--user', user] : []), id, ...args], { reject: false });
}

export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
