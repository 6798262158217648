// The package as users get it: `npm pack` of this checkout, installed from the tarball into a
// fresh project (npm or pnpm 10) next to a real Vitest or Jest from the registry, then run there.
//
// - The tarball is packed once per content of the build's inputs (every file but tests, benches,
//   examples and image recipes), in a staging copy: a pack rebuilds dist/, which other test files
//   run from at the same time. Cached under .cache/packed/tarballs.
// - An install is done once per (manager, tarball, dependencies) under .cache/packed/installs
//   (override the root with VTC_PACK_CACHE); a project is a fresh temporary directory with its own
//   files and that install's node_modules, removed after the test file. `fresh: true` installs
//   into the project itself, for tests about the install.
// - Installs and runs get a PATH with nothing but sh, node, npm and pnpm: no C compiler.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { leftoverCgroups } from './run-fixture.ts';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const packCache = process.env.VTC_PACK_CACHE ?? join(repo, '.cache', 'packed');
/** The pnpm major the harness installs (pnpm 10 runs no dependency's build scripts unless allowed). */
const PNPM = '10';
/** Top-level directories that are not inputs of the package's build. */
const NOT_BUILD_INPUTS = new Set(['test', 'bench', 'examples', 'rootfs', '.ci']);

export type Manager = 'npm' | 'pnpm';

/**
 * Dependency sets of the fixture projects, shared so that tests share their installs. TypeScript 5
 * (what most projects compile with) and Node's types come along, for the type tests.
 */
const TYPES = { typescript: '^5.9.0', '@types/node': '^24.0.0' };
export const FIXTURE_DEPENDENCIES = {
  jest: { jest: '^30.0.0', 'jest-environment-node': '^30.0.0', ...TYPES },
  vitest4: { vitest: '~4.1.0', ...TYPES },
  vitest5: { vitest: '^5.0.0', ...TYPES },
};

export interface CommandResult { code: number | null; output: string; ms: number }

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes `dir` once, whoever asks (test files run in parallel workers): `make` fills a temporary
 * directory, renamed to `dir` when done; the others wait for it. A lock whose process is gone is taken over.
 */
async function once(dir: string, make: (tmp: string) => Promise<void>): Promise<void> {
  mkdirSync(dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  for (;;) {
    if (existsSync(dir)) return;
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch {
      let owner = 0;
      let age = 0;
      try {
        owner = Number(readFileSync(lock, 'utf8') || 0);
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue; // let go of just now
      }
      // Its maker is gone (or died between making the lock and writing its pid into it).
      if ((owner && !alive(owner)) || (!owner && age > 60_000)) rmSync(lock, { force: true });
      else await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    const tmp = `${dir}.tmp-${process.pid}`;
    try {
      if (existsSync(dir)) return;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      await make(tmp);
      renameSync(tmp, dir);
      return;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(lock, { force: true });
    }
  }
}

/** Runs a command, collecting stdout and stderr together. */
export function runCommand(cmd: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<CommandResult> {
  const started = performance.now();
  const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => { output += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { output += c.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, output, ms: performance.now() - started });
  }));
}

/** What the test run itself put in the environment (Vitest's; npm's under `npm test`): a user's shell has none of it. */
const RUNNER_VARIABLE = /^(VITEST|npm_|JEST|NODE_OPTIONS$|NODE_ENV$|TEST$|VTC_)/;

/** This environment (proxies, CA certificates, HOME and its .npmrc) as the user's shell has it, npm's cache under packCache. */
function userEnv(): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !RUNNER_VARIABLE.test(k))), npm_config_cache: join(packCache, 'npm-cache') };
}

// ---------- tools ----------

function npmCli(): string {
  const r = spawnSync('sh', ['-c', 'command -v npm']);
  const npm = r.stdout?.toString().trim();
  if (r.status !== 0 || !npm) throw new Error('npm is not on PATH: the packed-project tests need it');
  return realpathSync(npm);
}

let pnpmCli: Promise<string | undefined> | undefined;

/** pnpm 10's CLI, installed with npm into the cache when absent; undefined (with the reason logged) when it cannot be had. */
export function pnpm(): Promise<string | undefined> {
  pnpmCli ??= (async () => {
    const prefix = join(packCache, 'tools', `pnpm${PNPM}`);
    try {
      await once(prefix, async (tmp) => {
        execFileSync(process.execPath, [npmCli(), 'install', '--prefix', tmp, '--no-audit', '--no-fund', `pnpm@${PNPM}`], {
          stdio: 'pipe', env: userEnv(),
        });
      });
      return join(prefix, 'node_modules', 'pnpm', 'bin', 'pnpm.cjs');
    } catch (err) {
      console.warn(`pnpm ${PNPM} could not be installed with npm, so the pnpm cases are skipped: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
  })();
  return pnpmCli;
}

/** A directory holding only sh (package managers run scripts with it), node, npm and pnpm: the whole PATH of installs and runs. */
function bareBin(pnpmPath: string | undefined): string {
  const dir = join(packCache, 'bare-bin', sha256(`sh\0${process.execPath}\0${pnpmPath ?? ''}`).slice(0, 12));
  if (!existsSync(dir)) {
    const tmp = `${dir}.tmp-${process.pid}`;
    mkdirSync(tmp, { recursive: true });
    symlinkSync('/bin/sh', join(tmp, 'sh'));
    symlinkSync(process.execPath, join(tmp, 'node'));
    symlinkSync(npmCli(), join(tmp, 'npm'));
    if (pnpmPath) symlinkSync(pnpmPath, join(tmp, 'pnpm'));
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // made meanwhile by another worker
    }
  }
  return dir;
}

/**
 * The environment of installs and runs: this one (proxies, CA certificates, HOME and its .npmrc)
 * without the test runner's variables, with a PATH on which no C compiler is to be found, and
 * npm's cache under packCache.
 */
export async function bareEnv(extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  return {
    ...userEnv(),
    PATH: bareBin(await pnpm()),
    NO_COLOR: '1',
    FORCE_COLOR: '0',
    npm_config_update_notifier: 'false',
    ...extra,
  };
}

// ---------- the tarball ----------

export interface Tarball {
  path: string;
  /** Hash of the build's inputs the tarball was packed from. */
  hash: string;
  /** Paths in the tarball, without the leading package/. */
  files: string[];
  bytes: number;
}

/** The build's inputs: what git knows of in this checkout (committed or not, never ignored files). */
function buildInputs(): string[] {
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: repo }).toString().split('\0');
  return listed.filter((f) => f && !NOT_BUILD_INPUTS.has(f.split('/')[0]!) && existsSync(join(repo, f))).sort();
}

let tarball: Promise<Tarball> | undefined;

/** A cached tarball or install untouched this long, and not of the current tarball, is removed. */
const PRUNE_AFTER_MS = 60 * 60 * 1000;

/**
 * Removes the tarballs of other contents and the installs made from them (a few hundred MB each
 * with Vitest or Jest), once nothing used them for an hour: another run of this checkout, with
 * other sources, may still be using its own.
 */
function pruneOtherThan(hash: string): void {
  const old = (path: string) => Date.now() - statSync(path).mtimeMs > PRUNE_AFTER_MS;
  for (const [kind, current] of [['tarballs', (d: string) => d === hash], ['installs', (d: string) => readFileSync(join(packCache, 'installs', d, 'tarball'), 'utf8') === hash]] as const) {
    const root = join(packCache, kind);
    for (const entry of existsSync(root) ? readdirSync(root) : []) {
      const path = join(root, entry);
      try {
        if (/\.(lock|tmp-\d+)$/.test(entry) || current(entry) || !old(path)) continue;
      } catch {
        // an install without its tarball's name: from before it was recorded
      }
      rmSync(path, { recursive: true, force: true });
    }
  }
}

/** `npm pack` of this checkout, as CI and a publish would make it (prepack and prepare included). */
export function packedTarball(): Promise<Tarball> {
  tarball ??= (async () => {
    const inputs = buildInputs();
    const hash = sha256(inputs.map((f) => `${f}\0${sha256(readFileSync(join(repo, f)))}`).join('\n')).slice(0, 16);
    const dir = join(packCache, 'tarballs', hash);
    await once(dir, async (tmp) => {
      const stage = join(tmp, 'stage');
      for (const f of inputs) cpSync(join(repo, f), join(stage, f), { recursive: false });
      symlinkSync(join(repo, 'node_modules'), join(stage, 'node_modules'));
      const env = { ...userEnv(), PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
      const r = await runCommand(process.execPath, [npmCli(), 'pack', '--pack-destination', tmp], { cwd: stage, env });
      if (r.code !== 0) throw new Error(`npm pack failed (${r.code}):\n${r.output}`);
      writeFileSync(join(tmp, 'pack.log'), r.output);
      rmSync(stage, { recursive: true, force: true });
      const [name] = execFileSync('sh', ['-c', 'ls *.tgz'], { cwd: tmp }).toString().trim().split('\n');
      renameSync(join(tmp, name!), join(tmp, 'package.tgz'));
    });
    utimesSync(dir, new Date(), new Date()); // in use: see pruneOtherThan
    pruneOtherThan(hash);
    const path = join(dir, 'package.tgz');
    const files = execFileSync('tar', ['-tzf', path]).toString().trim().split('\n').map((f) => f.replace(/^package\//, ''));
    return { path, hash, files, bytes: readFileSync(path).length };
  })();
  return tarball;
}

// ---------- projects ----------

export interface ProjectSpec {
  manager: Manager;
  /** Registry dependencies besides the package, e.g. { vitest: '~4.1.0' }. */
  dependencies?: Record<string, string>;
  /** Fields of the project's package.json besides its dependencies, e.g. { type: 'module' }. */
  packageJson?: Record<string, unknown>;
  /** A directory under test/fixtures whose files the project starts with. */
  fixture?: string;
  /** Files of the project, by relative path (written after the fixture's). */
  files?: Record<string, string>;
  /** Install into this project itself (for tests about installing); otherwise a cached install is used. */
  fresh?: boolean;
}

export interface PackedProject {
  dir: string;
  /** Where the package was installed (its real path). */
  packageDir: string;
  /** What the install printed, and how long it took (the cached install's, unless fresh). */
  install: CommandResult;
  /** Runs node with these arguments in the project, with the bare PATH and a cgroup parent of its own (VTC_CGROUP_PARENT). */
  node(args: string[], env?: Record<string, string>): Promise<CommandResult & { cgroupParent: string }>;
}

function installArgs(manager: Manager): string[] {
  // pnpm: resolve what the manifest says, however the store was filled; no lock file is kept.
  return manager === 'npm' ? ['install', '--no-audit', '--no-fund'] : ['install', '--no-frozen-lockfile', '--store-dir', join(packCache, 'pnpm-store')];
}

async function installInto(dir: string, manager: Manager, dependencies: Record<string, string>, packageJson: Record<string, unknown>, tgz: string): Promise<CommandResult> {
  writeFileSync(join(dir, 'package.json'), JSON.stringify({
    name: 'packed-project', version: '1.0.0', private: true, ...packageJson,
    dependencies: { 'vitest-environment-container': `file:${tgz}`, ...dependencies },
  }, null, 2));
  const env = await bareEnv();
  const cli = manager === 'npm' ? npmCli() : await pnpm();
  if (!cli) throw new Error('pnpm is not available');
  const r = await runCommand(process.execPath, [cli, ...installArgs(manager)], { cwd: dir, env });
  if (r.code !== 0) throw new Error(`${manager} install failed (${r.code}) in ${dir}:\n${r.output}`);
  return r;
}

const projects: string[] = [];
const cgroupParents: string[] = [];
let runs = 0;
afterAll(() => {
  for (const dir of projects.splice(0)) rmSync(dir, { recursive: true, force: true });
  for (const parent of cgroupParents.splice(0)) leftoverCgroups(parent);
});

/** A fresh project in a temporary directory with the packed package (and the given dependencies) installed. */
export async function packedProject(spec: ProjectSpec): Promise<PackedProject> {
  const tgz = await packedTarball();
  const dependencies = spec.dependencies ?? {};
  const dir = mkdtempSync(join(tmpdir(), `vtc-packed-${spec.manager}-`));
  projects.push(dir);
  let install: CommandResult;
  if (spec.fresh) {
    install = await installInto(dir, spec.manager, dependencies, spec.packageJson ?? {}, tgz.path);
  } else {
    const key = sha256(JSON.stringify([spec.manager, spec.manager === 'pnpm' ? PNPM : '', tgz.hash, dependencies])).slice(0, 16);
    const cached = join(packCache, 'installs', key);
    await once(cached, async (tmp) => {
      const r = await installInto(tmp, spec.manager, dependencies, {}, tgz.path);
      writeFileSync(join(tmp, 'install.json'), JSON.stringify(r));
      writeFileSync(join(tmp, 'tarball'), tgz.hash);
    });
    utimesSync(cached, new Date(), new Date()); // in use: see pruneOtherThan
    install = JSON.parse(readFileSync(join(cached, 'install.json'), 'utf8')) as CommandResult;
    symlinkSync(join(cached, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'packed-project', version: '1.0.0', private: true, ...spec.packageJson, dependencies }, null, 2));
  }
  if (spec.fixture) cpSync(join(repo, 'test', 'fixtures', spec.fixture), dir, { recursive: true });
  for (const [file, content] of Object.entries(spec.files ?? {})) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), content);
  }
  return {
    dir,
    packageDir: realpathSync(join(dir, 'node_modules', 'vitest-environment-container')),
    install,
    async node(args, env = {}) {
      const cgroupParent = `/vitest-container-packed-${process.pid}-${++runs}`;
      cgroupParents.push(cgroupParent);
      const r = await runCommand(process.execPath, args, { cwd: dir, env: await bareEnv({ VTC_CGROUP_PARENT: cgroupParent, ...env }) });
      return { ...r, cgroupParent };
    },
  };
}
