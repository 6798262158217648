// `pull IMAGE`: fetch a registry (or daemon) image into the layer cache, the way
// `docker pull` does: always asks for the current digest, downloads only what
// changed. Progress: a live line on a terminal, plain lines in CI and pipes.
import { parseArgs } from 'node:util';
import { defaultCacheDir, resolveImage } from '../image/index.ts';
import { formatBytes } from './format.ts';
import { note, out, UsageError } from './output.ts';

export const pullHelp = `Usage: vitest-environment-container pull IMAGE [options]

Fetches IMAGE into the layer cache and unpacks it, so that tests (and offline
runs, with the default pull: 'missing') use it with no request. Like docker
pull, it always asks the registry what IMAGE points at now and downloads only
layers the cache lacks.

IMAGE: redis:7 (Docker Hub: docker.io/library/redis:7), registry.example:5000/team/app:tag,
NAME@sha256:DIGEST, docker://REF, docker-daemon:NAME[:TAG] (the local Docker or podman
daemon), or a local layout/archive (./images/redis, oci:DIR, docker-archive:FILE).

Options:
  --platform OS/ARCH[/VARIANT]  which image of a multi-platform index (default: this host's)
  --cache-dir DIR               the cache (default: $VITEST_CONTAINER_CACHE or ~/.cache/vitest-environment-container)
  -q, --quiet                   print only the digest
  --json                        print the result as JSON

Credentials: as docker login and podman login keep them ($DOCKER_CONFIG/config.json,
~/.docker/config.json, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json).
Mirrors and insecure registries: the file named by $VITEST_CONTAINER_REGISTRIES.`;

interface LayerProgress { bytes: number; total?: number }

/** A live line on a terminal; elsewhere a line per finished layer. */
function progressPrinter(reference: string, live: boolean): { update(p: { layer: string; bytes: number; total?: number; layers: number }): void; done(): void; fetched(): { layers: number; bytes: number } } {
  const layers = new Map<string, LayerProgress>();
  let count = 0;
  const started = Date.now();
  let lastDraw = 0;
  const sum = (): number => [...layers.values()].reduce((a, l) => a + l.bytes, 0);
  const total = (): number => [...layers.values()].reduce((a, l) => a + (l.total ?? 0), 0);
  const finished = (): number => [...layers.values()].filter((l) => l.total !== undefined && l.bytes >= l.total).length;
  const speed = (): string => `${formatBytes(sum() / Math.max(0.001, (Date.now() - started) / 1000))}/s`;
  const draw = (): void => {
    process.stderr.write(`\r\x1b[K${reference}: ${finished()}/${count} layers, ${formatBytes(sum())}${total() ? ` of ${formatBytes(total())}` : ''}, ${speed()}`);
  };
  return {
    update(p) {
      count = p.layers;
      const before = layers.get(p.layer);
      layers.set(p.layer, { bytes: p.bytes, total: p.total });
      if (live) {
        if (Date.now() - lastDraw > 100) {
          lastDraw = Date.now();
          draw();
        }
      } else if (p.total !== undefined && p.bytes >= p.total && !(before && before.bytes >= p.total)) {
        note(`${reference}: layer ${p.layer.slice(7, 19)} fetched (${formatBytes(p.total)}; ${finished()}/${count})`);
      }
    },
    done() {
      if (live && layers.size) {
        draw();
        process.stderr.write('\n');
      }
    },
    fetched: () => ({ layers: layers.size, bytes: sum() }),
  };
}

export async function pull(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, strict: true, allowPositionals: true,
    options: { platform: { type: 'string' }, 'cache-dir': { type: 'string' }, quiet: { type: 'boolean', short: 'q' }, json: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `one image at a time, not ${positionals.join(' ')}` : 'which image? pull IMAGE');
  const reference = positionals[0]!;
  const quiet = values.quiet || values.json;
  const live = !quiet && Boolean(process.stderr.isTTY) && !process.env.CI;
  const printer = progressPrinter(reference, live);
  const started = Date.now();
  if (!quiet && !live) note(`pulling ${reference}`);
  let image;
  try {
    image = await resolveImage(reference, {
      cacheDir: values['cache-dir'] ?? defaultCacheDir(), platform: values.platform, pull: 'always', progress: false,
      onProgress: quiet ? undefined : (p) => printer.update(p),
    });
  } finally {
    printer.done();
  }
  const { layers, bytes } = printer.fetched();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (values.json) out(JSON.stringify({ reference, manifestDigest: image.manifestDigest, fetchedLayers: layers, fetchedBytes: bytes, lowerDirs: image.lowerDirs }, null, 2));
  else if (values.quiet) out(image.manifestDigest);
  else if (layers) out(`${reference}: pulled ${image.manifestDigest} (${layers} layer(s), ${formatBytes(bytes)} in ${seconds} s)`);
  else out(`${reference}: up to date, ${image.manifestDigest} (nothing downloaded)`);
  return 0;
}
