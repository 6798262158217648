// Eight processes resolve the same, not yet cached, image at once: all succeed
// with the same layers, and the cache ends up with one copy of each.
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeImage } from './helpers/oci-builder.ts';
import { busyboxRootfs, inOverlay, isRoot, NODE, tarOf, tempDir } from './helpers/host.ts';
import { layersDir } from '../../src/image/cache-layout.ts';

const cli = fileURLToPath(new URL('./helpers/resolve-cli.ts', import.meta.url));

function resolveInProcess(ref: string, cacheDir: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [cli, ref, cacheDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code, out }));
  });
}

describe('concurrent unpacking', () => {
  it('8 processes unpacking one image at once: one valid entry per layer, no error', async () => {
    const rootfs = tempDir('conc-rootfs');
    busyboxRootfs(rootfs);
    const layers = [tarOf(rootfs)];
    for (let i = 0; i < 3; i++) {
      const dir = tempDir(`conc-layer${i}`);
      writeFileSync(`${dir}/blob${i}`, randomBytes(4 << 20));
      writeFileSync(`${dir}/marker`, `layer ${i}\n`);
      layers.push(tarOf(dir));
    }
    const ref = tempDir('conc-image');
    writeImage(ref, layers);
    const cacheDir = tempDir('conc-cache');

    const results = await Promise.all(Array.from({ length: 8 }, () => resolveInProcess(ref, cacheDir)));
    for (const r of results) expect(r, r.out).toMatchObject({ code: 0 });
    const images = results.map((r) => JSON.parse(r.out));
    for (const image of images) expect(image.lowerDirs).toEqual(images[0].lowerDirs);
    expect(readdirSync(layersDir(cacheDir))).toHaveLength(4);
    expect(readdirSync(`${cacheDir}/tmp`)).toEqual([]); // losers cleaned up after themselves
    const seen = inOverlay(images[0].lowerDirs, images[0].overlayOptions, 'cat "$ROOT/marker"; ls "$ROOT" | wc -l', { rootless: !isRoot });
    expect(seen.trim().split('\n')).toEqual(['layer 2', '6']) // bin etc marker blob0 blob1 blob2;
  });
});
