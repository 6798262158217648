// Dependency resolution and downloads through apt itself, so that alternatives,
// virtual packages and version constraints are resolved the way Debian does it.
//
// Resolution runs `apt-get -s install` against a synthetic dpkg status file that
// lists as installed: the packages of lower layers (at their resolved versions) and
// the packages a layer leaves out. With pkgCacheGen::Essential=none apt stops
// dragging in the Essential set (dpkg, perl-base, ...), so what it prints as `Inst`
// is exactly what this layer adds.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { log, RootfsError } from './log.ts';

export interface Package {
  name: string;
  version: string;
  arch: string;
}

/** apt could not reach its mirrors: the one condition under which tests may skip builds. */
export class AptUnreachableError extends RootfsError {}

const APT_OPTS = [
  '-o', 'Debug::NoLocking=1',
  '-o', 'pkgCacheGen::Essential=none',
  '-o', 'APT::Install-Recommends=false',
  '-o', 'APT::Install-Suggests=false',
  // Downloads go to our cache dir, which the _apt sandbox user may not be able to write.
  '-o', 'APT::Sandbox::User=root',
];

// Connection-level failures only: a 404 (a version gone from the mirror) means stale lists, not an unreachable mirror.
/**
 * Parsed package lists, kept in our cache: this machine's apt.conf disables apt's
 * own (as Docker-style setups do), and without it each apt call parses ~40 MB of
 * lists again. apt replaces the file atomically and rebuilds it when lists change.
 */
function listCacheOpts(cacheDir: string): string[] {
  return ['-o', `Dir::Cache::srcpkgcache=${join(cacheDir, 'apt', 'srcpkgcache.bin')}`, '-o', 'Dir::Cache::pkgcache='];
}

const UNREACHABLE = /Temporary failure resolving|Could not resolve|Could not connect|Connection timed out|Network is unreachable|Unable to connect|Connection failed/i;

let arch: string | undefined;
export async function hostArch(): Promise<string> {
  arch ??= (await execa('dpkg', ['--print-architecture'])).stdout.trim();
  return arch;
}

// apt takes an installed version to be the archive's version only when these
// fields match too (they enter its version hash); otherwise it "reinstalls" it.
const HASHED_FIELDS = /^(Package|Version|Architecture|Multi-Arch|Installed-Size|Depends|Pre-Depends|Recommends|Suggests|Enhances|Breaks|Conflicts|Replaces|Provides|Essential):/;

async function showStanzas(specs: string[], keep: RegExp, cacheDir: string): Promise<string[]> {
  if (specs.length === 0) return [];
  // reject: false because names apt does not know (virtual packages) only print a warning.
  const { stdout } = await execa('apt-cache', [...listCacheOpts(cacheDir), 'show', '--no-all-versions', ...specs], { reject: false, env: { LC_ALL: 'C' } });
  return stdout
    .split(/\n\n+/)
    .filter((s) => s.startsWith('Package:'))
    .map((s) => s.split('\n').filter((l) => keep.test(l)).join('\n'));
}

/** Lower layers' packages, exactly as the archive has them: their dependencies are all present. */
async function presentStanzas(present: Package[], cacheDir: string): Promise<string[]> {
  const stanzas = await showStanzas(present.map((p) => `${p.name}=${p.version}`), HASHED_FIELDS, cacheDir);
  return stanzas.map((s) => `${s}\nStatus: install ok installed`);
}

/**
 * Left-out packages without their dependencies (which are not there) and at a
 * version above any in the archive, so apt never wants to replace them and `>=`
 * constraints hold. Provides stays: it is how `debconf | debconf-2.0` is met.
 */
async function leftOutStanzas(names: string[], cacheDir: string): Promise<string[]> {
  const stanzas = await showStanzas(names, /^(Package|Architecture|Multi-Arch|Provides):/, cacheDir);
  return stanzas.map((s) => `${s}\nVersion: 99999:0\nStatus: install ok installed`);
}

/**
 * What apt knows: the package lists and sources. A resolution made with the same
 * lists is still right, so it is cached under a key that includes this.
 */
async function listsFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of ['/var/lib/apt/lists', '/etc/apt/sources.list.d']) {
    for (const f of (await readdir(dir).catch(() => [] as string[])).sort()) {
      const s = await stat(join(dir, f)).catch(() => undefined);
      if (s?.isFile()) hash.update(`${f} ${s.size} ${s.mtimeMs}\n`);
    }
  }
  return hash.digest('hex');
}

/**
 * The packages (with exact versions) that installing `roots` adds on top of
 * `present`, never unpacking anything named in `leaveOut`. Cached in `cacheDir`
 * (apt needs seconds to load a status file of its own; a no-op build should not).
 */
export async function resolve(roots: string[], present: Package[], leaveOut: string[], cacheDir: string): Promise<Package[]> {
  const key = createHash('sha256')
    .update(JSON.stringify({ roots, present, leaveOut, lists: await listsFingerprint(), arch: await hostArch() }))
    .digest('hex');
  const cached = join(cacheDir, 'resolved', `${key}.json`);
  const hit = await readFile(cached, 'utf8').then((t) => JSON.parse(t) as Package[], () => undefined);
  if (hit) return hit;
  await mkdir(join(cacheDir, 'work'), { recursive: true });
  await mkdir(join(cacheDir, 'apt'), { recursive: true });
  const added = await resolveWithApt(roots, present, leaveOut, cacheDir, await mkdtemp(join(cacheDir, 'work', 'resolve-')));
  await mkdir(dirname(cached), { recursive: true });
  await writeFile(`${cached}.${process.pid}`, JSON.stringify(added));
  await rename(`${cached}.${process.pid}`, cached);
  return added;
}

async function resolveWithApt(roots: string[], present: Package[], leaveOut: string[], cacheDir: string, workDir: string): Promise<Package[]> {
  const have = new Set(present.map((p) => p.name));
  const status = [...(await presentStanzas(present, cacheDir)), ...(await leftOutStanzas(leaveOut.filter((n) => !have.has(n)), cacheDir))].join('\n\n');
  await mkdir(workDir, { recursive: true });
  const statusFile = join(workDir, 'status');
  await writeFile(statusFile, status ? `${status}\n` : ''); // a lone newline is a parse error to apt
  try {
    return await aptSimulate(roots, have, leaveOut, [...listCacheOpts(cacheDir), '-o', `Dir::State::status=${statusFile}`]);
  } catch (err) {
    // Package lists missing or older than the recipe (a fresh machine): refresh once and retry.
    if (!(err instanceof RootfsError && err.code === 'APT_UNKNOWN_PACKAGE') || updated) throw err;
    await update();
    return await resolveWithApt(roots, present, leaveOut, cacheDir, workDir);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

async function aptSimulate(roots: string[], have: Set<string>, leaveOut: string[], opts: string[]): Promise<Package[]> {
  const result = await execa('apt-get', ['-s', ...APT_OPTS, ...opts, 'install', ...roots], { reject: false, env: { LC_ALL: 'C' } });
  if (result.exitCode !== 0 && /Unable to locate package|has no installation candidate/.test(result.stderr)) {
    throw new RootfsError('APT_UNKNOWN_PACKAGE', `apt knows no installable ${roots.join(' ')}:\n${result.stderr.trim()}`, {
      fix: 'check the package names (apt-cache policy NAME) and run apt-get update',
    });
  }
  if (result.exitCode !== 0) {
    throw new RootfsError('APT_RESOLVE', `apt could not resolve ${roots.join(' ')}:\n${result.stderr.trim()}`, {
      fix: 'check the package names (apt-cache policy NAME) and run apt-get update',
    });
  }
  const added: Package[] = [];
  // Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
  for (const m of result.stdout.matchAll(/^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)/gm)) {
    added.push({ name: m[1]!, version: m[2]!, arch: m[3]! });
  }
  // Guard against apt "reinstalling" what we told it is there: that would duplicate files across layers.
  const again = added.filter((p) => have.has(p.name) || leaveOut.includes(p.name));
  if (again.length > 0) {
    throw new RootfsError('APT_RESOLVE', `apt wants to reinstall ${again.map((p) => p.name).join(', ')} although it is present or left out`);
  }
  return added.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

let updated = false;
export async function update(): Promise<void> {
  if (updated) return;
  updated = true;
  log('apt-get update');
  const r = await execa('apt-get', ['update', '-q'], { reject: false, env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0) {
    const text = `${r.stdout}\n${r.stderr}`;
    if (UNREACHABLE.test(text)) throw new AptUnreachableError('APT_UNREACHABLE', `apt-get update could not reach the mirrors:\n${r.stderr.trim()}`);
    throw new RootfsError('APT_UPDATE', `apt-get update failed:\n${r.stderr.trim()}`, { fix: 'run apt-get update as root and fix what it reports' });
  }
}

/** dpkg-deb's file name for a package: the epoch colon is escaped as %3a. */
export function debFileName(p: Package): string {
  return `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** Make sure every package's .deb is in `cacheDir`; returns their paths in the order given. */
export async function download(packages: Package[], cacheDir: string): Promise<string[]> {
  await mkdir(cacheDir, { recursive: true });
  const missing: Package[] = [];
  for (const p of packages) if (!(await exists(join(cacheDir, debFileName(p))))) missing.push(p);
  if (missing.length > 0) {
    log(`  downloading ${missing.length} .deb${missing.length === 1 ? '' : 's'}`);
    // Into a private dir first, then renamed: concurrent builds never see half a file.
    const tmp = await mkdtemp(join(cacheDir, '.download-'));
    try {
      const args = ['download', '-q', ...APT_OPTS, ...missing.map((p) => `${p.name}=${p.version}`)];
      const r = await execa('apt-get', args, { cwd: tmp, reject: false, env: { LC_ALL: 'C' } });
      if (r.exitCode !== 0 && UNREACHABLE.test(r.stderr)) {
        throw new AptUnreachableError('APT_UNREACHABLE', `apt-get download could not reach the mirror:\n${r.stderr.trim()}`, {
          fix: 'check that the Debian mirror in /etc/apt/sources.list is reachable',
        });
      }
      if (r.exitCode !== 0 && !updated) {
        // Most likely a version gone from the mirror since the lists were fetched:
        // refresh them; the caller resolves again.
        await update();
        throw new RootfsError('APT_STALE_LISTS', `apt-get download failed with stale package lists (now refreshed):\n${r.stderr.trim()}`);
      }
      if (r.exitCode !== 0) {
        throw new RootfsError('APT_DOWNLOAD', `apt-get download failed:\n${r.stderr.trim()}`, {
          fix: 'run the apt-get download command above by hand and fix what it reports',
        });
      }
      for (const f of await readdir(tmp)) await rename(join(tmp, f), join(cacheDir, f));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  const paths = packages.map((p) => join(cacheDir, debFileName(p)));
  for (const path of paths) {
    if (!(await exists(path))) throw new RootfsError('APT_DOWNLOAD', `apt-get download did not produce ${path}`);
  }
  return paths;
}
