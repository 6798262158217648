// The image layer: OCI image layouts and docker-archive tarballs turned into
// verified, read-only overlay lower directories in a content-addressed cache.
export { resolveImage } from './resolve.ts';
export { resolveUser } from './user.ts';
export { listCache, pruneCache } from './cache-admin.ts';
export type { CachedImage, CachedLayer, CacheListing, PulledReference, PruneOptions, PruneResult } from './cache-admin.ts';
export { probeImageSource } from './probe-source.ts';
export type { SourceProbe } from './probe-source.ts';
export { classifyImageName } from './image-name.ts';
export { defaultCacheDir } from './cache-layout.ts';
export type { ImageConfig, LayerLimits, Platform, PullPolicy, RegistriesConfig, ResolvedImage, ResolveOptions } from './types.ts';
