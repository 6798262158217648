// The layer cache: reuse cost, listing, pruning, a 100-layer image mounted with
// the new mount API, and progress output.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defaultCacheDir, listCache, pruneCache, resolveImage } from '../../src/image/index.ts';
import { writeImage } from './helpers/oci-builder.ts';
import { tarArchive } from './helpers/tar-builder.ts';
import { isRoot, NODE, tempDir } from './helpers/host.ts';
import { layersDir } from '../../src/image/cache-layout.ts';

const file = (name: string, data: string | Buffer): Buffer => tarArchive([{ name, data }]);

describe('layer cache', () => {
  it('reusing a cached image reads no layer and unpacks nothing (its cost is measured in bench/)', async () => {
    const ref = tempDir('reuse');
    writeImage(ref, Array.from({ length: 20 }, (_, i) => file(`f${i}`, `layer ${i}`)));
    const cacheDir = tempDir('reuse-cache');
    const first = await resolveImage(ref, { cacheDir });
    const inodes = first.lowerDirs.map((d) => statSync(d).ino);
    // Spoil every layer blob: a reuse that read (or re-verified, or unpacked) a layer would now fail.
    const manifest = JSON.parse(readFileSync(join(ref, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const blob = (digest: string) => join(ref, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const layers = (JSON.parse(readFileSync(blob(manifest.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] }).layers;
    for (const l of layers) writeFileSync(blob(l.digest), 'spoiled');
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const again = await resolveImage(ref, { cacheDir });
      times.push(performance.now() - t0);
      expect(again.lowerDirs).toEqual(first.lowerDirs);
    }
    expect(first.lowerDirs.map((d) => statSync(d).ino)).toEqual(inodes); // the same directories, not new ones
    expect(readdirSync(join(cacheDir, 'tmp')).length).toBe(0); // no unpack in progress or left over
    times.sort((a, b) => a - b);
    console.log(`cached resolve of a 20-layer image: median ${times[times.length >> 1]!.toFixed(3)} ms`);
  });

  it('a layer removed behind its back is unpacked again', async () => {
    const ref = tempDir('stale');
    writeImage(ref, [file('a', 'a'), file('b', 'b')]);
    const cacheDir = tempDir('stale-cache');
    const first = await resolveImage(ref, { cacheDir });
    execFileSync('rm', ['-rf', first.lowerDirs[0]!.replace(/\/fs$/, '')]);
    const again = await resolveImage(ref, { cacheDir });
    expect(again.lowerDirs).toEqual(first.lowerDirs);
    expect(existsSync(`${again.lowerDirs[0]}/b`)).toBe(true);
  });

  it('lists images and layers, and prunes what no kept image uses', async () => {
    const cacheDir = tempDir('prune-cache');
    const shared = file('shared', 'shared');
    const a = tempDir('img-a');
    const b = tempDir('img-b');
    writeImage(a, [shared, file('a', 'only in a')]);
    writeImage(b, [shared, tarArchive([{ name: 'ro/', type: 'dir', mode: 0o555 }, { name: 'ro/f', data: 'x', mode: 0o444 }])]);
    const ia = await resolveImage(a, { cacheDir });
    const ib = await resolveImage(b, { cacheDir });

    const listing = await listCache({ cacheDir });
    expect(listing.images.map((i) => i.manifestDigest).sort()).toEqual([ia.manifestDigest, ib.manifestDigest].sort());
    expect(listing.layers).toHaveLength(3);
    const sharedLayer = listing.layers.find((l) => l.images.length === 2);
    expect(sharedLayer?.bytes).toBe(6);
    expect(listing.totalBytes).toBe(6 + 9 + 1);

    const dry = await pruneCache({ cacheDir, all: true, dryRun: true });
    expect(dry.removedLayers).toHaveLength(3);
    expect(readdirSync(layersDir(cacheDir))).toHaveLength(3);

    const pruned = await pruneCache({ cacheDir, olderThanMs: 0 });
    expect(pruned.removedImages).toHaveLength(2);
    expect(pruned.removedLayers).toHaveLength(3);
    expect(pruned.freedBytes).toBe(16);
    expect(readdirSync(layersDir(cacheDir))).toEqual([]);
    expect(readdirSync(`${cacheDir}/tmp`)).toEqual([]);
    expect((await resolveImage(a, { cacheDir })).lowerDirs).toEqual(ia.lowerDirs); // and it comes back
  });

  it('defaults to $VITEST_CONTAINER_CACHE, then $XDG_CACHE_HOME', () => {
    const saved = { ...process.env };
    try {
      process.env.VITEST_CONTAINER_CACHE = '/x/cache';
      expect(defaultCacheDir()).toBe('/x/cache');
      delete process.env.VITEST_CONTAINER_CACHE;
      process.env.XDG_CACHE_HOME = '/xdg';
      expect(defaultCacheDir()).toBe('/xdg/vitest-environment-container');
    } finally {
      process.env = saved;
    }
  });

  it.runIf(isRoot)('an image of 100 layers mounts with the new mount API (lowerdir+)', async () => {
    const ref = tempDir('hundred');
    writeImage(ref, Array.from({ length: 100 }, (_, i) => tarArchive([{ name: 'l/', type: 'dir' }, { name: `l/${String(i).padStart(3, '0')}`, data: String(i) }, { name: 'top', data: String(i) }])));
    const cacheDir = tempDir('hundred-cache');
    const image = await resolveImage(ref, { cacheDir });
    expect(image.lowerDirs).toHaveLength(100);
    expect(image.lowerDirs.join(':').length).toBeGreaterThan(4096); // too long for the legacy option string
    const target = tempDir('hundred-mnt');
    const script = fileURLToPath(new URL('./helpers/mount-new-api.ts', import.meta.url));
    const out = execFileSync('unshare', ['-m', '--propagation', 'private', NODE, script, target, image.overlayOptions.join(',') || '-', ...image.lowerDirs, '--', 'l'], { encoding: 'utf8' });
    expect(JSON.parse(out).l).toHaveLength(100);
  });

  it('prints progress lines for a long unpack when CI=true, and nothing for a quick one', () => {
    const progress = JSON.stringify(fileURLToPath(new URL('../../src/image/progress.ts', import.meta.url)));
    // No clock in the test: the quick unpack ends at once, the long one only once a line was printed.
    const run = (end: 'at once' | 'after the first line'): string => spawnSync(NODE, ['--input-type=module', '-e', `
      import { startProgress } from ${progress};
      const p = startProgress('./images/big', 50e6, true);
      p.update(20e6);
      if (${JSON.stringify(end)} === 'at once') p.done();
      else {
        const write = process.stderr.write.bind(process.stderr);
        process.stderr.write = (chunk, ...rest) => {
          setImmediate(() => (String(chunk).includes(' done') ? process.exit(0) : p.done()));
          return write(chunk, ...rest);
        };
        setTimeout(() => process.exit(3), 120_000); // keeps it up meanwhile (the progress timers are unref'd); never a line: fail
      }
    `], { encoding: 'utf8', env: { ...process.env, CI: 'true', VITEST_CONTAINER_PROGRESS: '' } }).stderr;
    expect(run('at once')).toBe('');
    const lines = run('after the first line').trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^vitest-environment-container: unpacking \.\/images\/big 40% \(20\.0\/50\.0 MB, \d+ s\)$/),
      expect.stringMatching(/unpacking \.\/images\/big 100% .* done$/),
    ]);
  });
});
