// Recipe -> OCI image layout: resolve each layer's packages on top of the lower
// layers, skip the build when nothing changed, else download, unpack, fix up, pack.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { download, hostArch, resolve, type Package } from './apt.ts';
import { sourceDateEpoch, writeLayer, type LayerBlob } from './layer.ts';
import { withLock } from './lock.ts';
import { log, RootfsError } from './log.ts';
import { ociPlatform, writeLayout, type LayoutInput } from './oci.ts';
import type { Group, LayerSpec, Recipe, User } from './recipe.ts';
import { applyFixups, linkBusyboxApplets, prune, unpackDebs, writeAccounts, type Accounts } from './tree.ts';

export interface BuildOptions {
  /** Images land in <outDir>/<recipe name>. */
  outDir: string;
  /** Downloaded .debs (shared by every build) and scratch trees. */
  cacheDir: string;
  /** Rebuild even when the build key is unchanged. */
  force?: boolean;
}

export interface BuiltLayer extends LayerBlob {
  name: string;
  packages: string[];
}

export interface BuildResult {
  name: string;
  layout: string;
  tag: string;
  manifestDigest: string;
  layers: BuiltLayer[];
  /** True when the existing layout was reused. */
  cached: boolean;
  seconds: number;
}

/** What is stored next to the layout, as <name>.build.json. */
interface BuildRecord {
  key: string;
  manifestDigest: string;
  tag: string;
  layers: BuiltLayer[];
}

const LIB_DIR = dirname(fileURLToPath(import.meta.url));

/** The builder's own code is an input too: a fix here must rebuild the images. */
async function builderHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of (await readdir(LIB_DIR)).filter((f) => f.endsWith('.ts')).sort()) {
    hash.update(f).update(await readFile(join(LIB_DIR, f)));
  }
  return hash.digest('hex');
}

function union<T>(lists: (T[] | undefined)[]): T[] {
  return [...new Set(lists.flatMap((l) => l ?? []))];
}

function pkgId(p: Package): string {
  return `${p.name}=${p.version}`;
}

async function readRecord(path: string): Promise<BuildRecord | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as BuildRecord;
  } catch {
    return undefined;
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export async function buildImage(recipe: Recipe, opts: BuildOptions): Promise<BuildResult> {
  try {
    return await buildOnce(recipe, opts);
  } catch (err) {
    // The package lists were refreshed on the way: resolve against the new ones, once.
    if (err instanceof RootfsError && err.code === 'APT_STALE_LISTS') return buildOnce(recipe, opts);
    throw err;
  }
}

async function buildOnce(recipe: Recipe, opts: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const { name } = recipe;
  const tag = recipe.tag ?? 'latest';
  if (process.getuid?.() !== 0) {
    throw new RootfsError('NOT_ROOT', `building ${name} needs root: files are unpacked with their owners and chowned to service users`, {
      fix: 'run the build as root (sudo npx node rootfs/build.ts ...)',
    });
  }
  // Modes of the directories we create must not depend on the caller's umask.
  process.umask(0o022);
  const arch = await hostArch();
  const layout = join(opts.outDir, name);
  const recordPath = join(opts.outDir, `${name}.build.json`);
  await mkdir(opts.outDir, { recursive: true });
  await mkdir(join(opts.cacheDir, 'work'), { recursive: true });
  // Scratch space next to the .debs (not /tmp, often a small tmpfs); unique per build.
  const work = await mkdtemp(join(opts.cacheDir, 'work', `${name}-`));

  try {
    log(`${name}: resolving packages`);
    const resolved: Package[][] = [];
    for (const [i, layer] of recipe.layers.entries()) {
      const present = resolved.flat();
      const leaveOut = union(recipe.layers.slice(0, i + 1).map((l) => l.leaveOut));
      resolved.push(await resolve(layer.packages, present, leaveOut, opts.cacheDir));
    }
    const key = createHash('sha256')
      .update(JSON.stringify({ builder: await builderHash(), recipe, arch, epoch: sourceDateEpoch(), packages: resolved.map((l) => l.map(pkgId)) }))
      .digest('hex');

    return await withLock(join(opts.outDir, `${name}.lock`), async () => {
      const old = await readRecord(recordPath);
      const intact = await stat(join(layout, 'index.json')).then(() => true, () => false);
      if (!opts.force && old?.key === key && intact) {
        log(`${name}: up to date, ${old.manifestDigest}`);
        return { name, layout, tag, manifestDigest: old.manifestDigest, layers: old.layers, cached: true, seconds: (performance.now() - started) / 1000 };
      }

      const debs = await download(resolved.flat(), join(opts.cacheDir, 'debs'));
      const debOf = new Map(resolved.flat().map((p, i) => [pkgId(p), debs[i]!]));
      const built: PackedLayer[] = [];
      const accounts: Accounts = { users: [], groups: [] };
      for (const [i, layer] of recipe.layers.entries()) {
        accounts.users = mergeById<User>(accounts.users, layer.users ?? [], (u) => u.uid);
        accounts.groups = mergeById<Group>(accounts.groups, layer.groups ?? [], (g) => g.gid);
        const pkgs = resolved[i]!;
        const packed = await packLayer(layer, pkgs.map((p) => debOf.get(pkgId(p))!), accounts, join(work, `layer-${i}`));
        log(`${name}: layer ${layer.name}: ${pkgs.length} package${pkgs.length === 1 ? '' : 's'}, ${mb(packed.size)} ${packed.digest.slice(0, 19)}`);
        const packages = pkgs.map(pkgId);
        built.push({ name: layer.name, packages, ...packed, history: `rootfs ${layer.name}: ${packages.join(' ') || '(files only)'}` });
      }

      const manifestDigest = await publish(layout, {
        platform: ociPlatform(arch),
        config: recipe.config,
        layers: built,
        tag,
        created: new Date(sourceDateEpoch() * 1000).toISOString().replace('.000Z', 'Z'),
      });
      const layers = built.map(({ file: _f, history: _h, ...l }) => l);
      const record: BuildRecord = { key, manifestDigest, tag, layers };
      await writeFile(recordPath, JSON.stringify(record, null, 2) + '\n');
      const seconds = (performance.now() - started) / 1000;
      log(`${name}: built ${manifestDigest} in ${seconds.toFixed(1)}s -> ${layout}`);
      return { name, layout, tag, manifestDigest, layers, cached: false, seconds };
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Lower layers' entries, replaced or extended by this layer's (same id = same account). */
function mergeById<T>(lower: T[], own: T[], id: (x: T) => number): T[] {
  const ids = new Set(own.map(id));
  return [...lower.filter((x) => !ids.has(id(x))), ...own].sort((a, b) => id(a) - id(b));
}

type PackedLayer = BuiltLayer & { file: string; history: string };

/** One layer: unpack its .debs, do the maintainer scripts' work, pack it next to `root` as root.tar.gz. */
async function packLayer(layer: LayerSpec, debs: string[], accounts: Accounts, root: string): Promise<LayerBlob & { file: string }> {
  await unpackDebs(debs, root);
  await prune(root, layer.prune);
  // Accounts of this layer and the lower ones, written by each layer that adds some.
  if (layer.users?.length || layer.groups?.length) await writeAccounts(root, accounts);
  await applyFixups(root, layer, accounts);
  if (layer.busyboxApplets) await linkBusyboxApplets(root);
  const file = `${root}.tar.gz`;
  const blob = await writeLayer(root, file);
  await rm(root, { recursive: true, force: true });
  return { ...blob, file };
}

/** Write the layout beside its final place, then swap it in. Returns the manifest digest. */
async function publish(layout: string, input: LayoutInput): Promise<string> {
  const tmp = join(dirname(layout), `.${basename(layout)}.tmp-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    const manifest = await writeLayout(tmp, input);
    // Readers hold no lock: they may find no layout for a moment, never half of one.
    await rm(layout, { recursive: true, force: true });
    await rename(tmp, layout);
    return manifest.digest;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
