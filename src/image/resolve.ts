// resolveImage: reference -> verified, unpacked, cached layers.
// A cached image costs: read index.json (or the archive's header table, once
// per process), read one small memo, stat the layer dirs. A pulled registry or
// daemon image with pull: 'missing' costs two small reads and the stats.
import { ImageError } from '../errors.ts';
import { logger } from '../log.ts';
import { defaultCacheDir } from './cache-layout.ts';
import { classifyImageName } from './image-name.ts';
import { readImageMemo, storeImage, toResolved } from './image-store.ts';
import { loadLegacyPlan, loadPlan } from './load-plan.ts';
import { formatPlatform, hostPlatform, parsePlatform } from './platform.ts';
import type { Platform } from './platform.ts';
import { PULL_POLICIES, pullImage } from './pull.ts';
import type { Puller } from './pull.ts';
import { formatReference } from './source/registry/reference.ts';
import type { ImageReference } from './reference.ts';
import { selectManifest } from './select-manifest.ts';
import { fileContent } from './source/file-content.ts';
import { openSource } from './source/open.ts';
import type { ResolvedImage, ResolveOptions } from './types.ts';

const log = logger('image');

export async function resolveImage(ref: string, options: ResolveOptions = {}): Promise<ResolvedImage> {
  const cache = options.cacheDir ?? defaultCacheDir();
  const platform = choosePlatform(options.platform);
  if (options.pull !== undefined && !PULL_POLICIES.includes(options.pull)) {
    throw new ImageError('IMAGE_INVALID_PULL_POLICY', `pull: ${JSON.stringify(options.pull)} is not a pull policy`, { fix: "use 'missing', 'always' or 'never'" });
  }
  const name = classifyImageName(ref);
  // Registry and daemon code (node:https, node:http) is loaded only for their images: every test
  // worker that starts a sandbox from a local layout resolves an image, and pays for its imports.
  // A registry image found in the cache (pull: 'missing') loads none of it.
  if (name.kind === 'registry') {
    let connected: Puller | undefined;
    const connect = async (): Promise<Puller> => {
      const { registryPuller } = await import('./source/registry/pull.ts');
      const { loadRegistriesConfig } = await import('./source/registry/config.ts');
      return (connected ??= registryPuller(name.ref, platform, options.registries ?? loadRegistriesConfig()));
    };
    const puller: Puller = {
      reference: formatReference(name.ref),
      from: name.ref.registry,
      current: async () => (await connect()).current(),
      open: async (current) => (await connect()).open(current),
    };
    try {
      return await pullImage(ref, puller, formatPlatform(platform), cache, options);
    } catch (err) {
      throw name.shadowedPath ? withPathHint(err, ref, name.shadowedPath) : err;
    }
  }
  if (name.kind === 'daemon') {
    const { daemonPuller } = await import('./source/daemon.ts');
    return pullImage(ref, daemonPuller(name.name, cache, platform), formatPlatform(platform), cache, options);
  }
  return resolveFromFiles(name.ref, cache, platform, options);
}

/** An OCI layout directory or an image archive. */
async function resolveFromFiles(parsed: ImageReference, cache: string, platform: Platform, options: ResolveOptions): Promise<ResolvedImage> {
  const ref = parsed.raw;
  const source = openSource(parsed.path);
  const selected = await selectManifest(source, parsed, platform);
  const cached = readImageMemo(cache, selected.digest);
  if (cached) {
    log('%s: cached as %s', ref, selected.digest);
    return toResolved(ref, cache, cached);
  }
  const content = fileContent(source);
  const plan = selected.kind === 'legacy'
    ? await loadLegacyPlan(source, ref, selected.digest, selected.manifest)
    : await loadPlan(content, ref, selected);
  return toResolved(ref, cache, await storeImage(plan, content, ref, cache, options));
}

function choosePlatform(option: ResolveOptions['platform']): Platform {
  if (option === undefined) return hostPlatform();
  if (typeof option !== 'string') return option;
  const platform = parsePlatform(option);
  if (!platform) {
    throw new ImageError('IMAGE_INVALID_PLATFORM', `platform "${option}" is not OS/ARCH[/VARIANT]`, { fix: 'write it like linux/amd64, linux/arm64 or linux/arm/v7' });
  }
  return platform;
}

/** A bare name that is also a directory here (not an image) went to a registry: say so when that failed. */
function withPathHint(err: unknown, ref: string, path: string): unknown {
  if (!(err instanceof ImageError)) return err;
  const hint = `"${ref}" was taken as a registry reference; ${path} exists but is not an image (no index.json or manifest.json). For a local image write ./${ref} or oci:${ref}`;
  const Kind = err.constructor as typeof ImageError;
  return new Kind(err.code, `${err.message.replace(/\n {2}fix: .*$/s, '')}\n  note: ${hint}`, { cause: err, fix: err.fix });
}
