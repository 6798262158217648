// `images [list|prune]`: what the layer cache holds, and removing what is no longer used.
import { parseArgs } from 'node:util';
import { defaultCacheDir, listCache, pruneCache, type CacheListing, type PruneOptions } from '../image/index.ts';
import { formatAge, formatBytes, parseDuration } from './format.ts';
import { out, UsageError } from './output.ts';

export const imagesHelp = `Usage: vitest-environment-container images [list|prune] [options]

  list (default)   pulled references (registry, daemon) and the digests they resolved to,
                   the cached images (by reference and manifest digest) and their unpacked layers
  prune            remove cached images not used for --older-than, then every layer no
                   remaining image uses; without --older-than or --all only unused layers
                   (and unpacks a crashed process left) go

Options:
  --cache-dir DIR     the cache (default: $VITEST_CONTAINER_CACHE or ~/.cache/vitest-environment-container)
  --older-than AGE    prune: images not used for AGE, e.g. 7d, 12h, 30m
  --all               prune: everything
  --dry-run           prune: say what would go, remove nothing
  --json              machine-readable output

Images come back on the next use: they are unpacked again from their source
(a pulled reference whose image is pruned is pulled again).`;

const short = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** Columns padded to their widest cell; the last column is left ragged. */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

function printListing(listing: CacheListing): void {
  const now = Date.now();
  out(`cache ${listing.cacheDir}: ${listing.images.length} image(s), ${listing.layers.length} layer(s), ${formatBytes(listing.totalBytes)}`);
  if (listing.references.length) {
    out();
    const rows = listing.references.map((r) => [r.reference, r.platform, r.manifestDigest, `${formatAge(now - r.pulledAt.getTime())} ago`]);
    for (const l of table([['PULLED', 'PLATFORM', 'DIGEST', 'CHECKED'], ...rows])) out(l);
  }
  if (listing.images.length) {
    out();
    const rows = listing.images.map((im) => [im.reference, short(im.manifestDigest), String(im.layers.length), `${formatAge(now - im.lastUsed.getTime())} ago`]);
    for (const l of table([['IMAGE', 'MANIFEST', 'LAYERS', 'LAST USED'], ...rows])) out(l);
  }
  if (listing.layers.length) {
    out();
    const rows = listing.layers.map((l) => [short(l.diffId), formatBytes(l.bytes), String(l.entries), String(l.images.length), `${formatAge(now - l.lastUsed.getTime())} ago`]);
    for (const l of table([['LAYER', 'SIZE', 'FILES', 'IMAGES', 'LAST USED'], ...rows])) out(l);
  }
}

export async function images(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, strict: true, allowPositionals: true,
    options: { 'cache-dir': { type: 'string' }, 'older-than': { type: 'string' }, all: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
  });
  const [action = 'list', ...extra] = positionals;
  if (extra.length) throw new UsageError(`unexpected ${extra.join(' ')}`);
  const cacheDir = values['cache-dir'] ?? defaultCacheDir();
  if (action === 'list') {
    if (values['older-than'] !== undefined || values.all || values['dry-run']) throw new UsageError('--older-than, --all and --dry-run are for prune');
    const listing = await listCache({ cacheDir });
    if (values.json) out(JSON.stringify(listing, null, 2));
    else printListing(listing);
    return 0;
  }
  if (action !== 'prune') throw new UsageError(`unknown action "${action}": list or prune`);
  if (values.all && values['older-than'] !== undefined) throw new UsageError('--all or --older-than, not both');
  const options: PruneOptions = { cacheDir, all: values.all ?? false, dryRun: values['dry-run'] ?? false };
  if (values['older-than'] !== undefined) options.olderThanMs = parseDuration(values['older-than'], '--older-than');
  const result = await pruneCache(options);
  if (values.json) {
    out(JSON.stringify({ cacheDir, dryRun: options.dryRun, ...result }, null, 2));
    return 0;
  }
  const verb = options.dryRun ? 'would remove' : 'removed';
  for (const d of result.removedImages) out(`${verb} image ${short(d)}`);
  for (const d of result.removedLayers) out(`${verb} layer ${short(d)}`);
  out(`${verb} ${result.removedImages.length} image(s), ${result.removedLayers.length} layer(s), ${formatBytes(result.freedBytes)}`);
  return 0;
}
