// `images list` and `images prune` on a cache the test fills through the real
// resolver, with images written by the image tests' own OCI builder.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { tempDir } from '../image/helpers/host.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';
import { tarArchive } from '../image/helpers/tar-builder.ts';
import { cli, repo } from './helpers.ts';
import { layersDir } from '../../src/image/cache-layout.ts';

const layer = (name: string, data: string): Buffer => tarArchive([{ name, data }]);

interface Listing { cacheDir: string; images: { reference: string; manifestDigest: string; layers: string[] }[]; layers: { diffId: string; images: string[] }[]; totalBytes: number }

/** Two images sharing a base layer, both resolved into a fresh cache; "old" last used 30 days ago. */
async function filledCache(): Promise<{ cacheDir: string; fresh: string; old: string }> {
  const cacheDir = tempDir('cli-cache');
  const fresh = tempDir('cli-fresh'), old = tempDir('cli-old');
  writeImage(fresh, [layer('base', 'shared'), layer('fresh', 'x'.repeat(5000))]);
  writeImage(old, [layer('base', 'shared'), layer('old', 'y'.repeat(7000))]);
  await resolveImage(fresh, { cacheDir, progress: false });
  const { manifestDigest } = await resolveImage(old, { cacheDir, progress: false });
  const monthAgo = Date.now() / 1000 - 30 * 86400;
  utimesSync(join(cacheDir, 'images', `${manifestDigest.slice('sha256:'.length)}.json`), monthAgo, monthAgo);
  return { cacheDir, fresh, old };
}

function list(cacheDir: string): Listing {
  const r = cli(['images', 'list', '--cache-dir', cacheDir, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Listing;
}

describe('images', () => {
  test('a reader that stopped reading (images list | head -1) ends the listing quietly: exit 0, no EPIPE', async () => {
    const { cacheDir } = await filledCache();
    // The pipe's reading end is closed before the CLI writes a byte: every write of it fails with EPIPE.
    const child = spawn(process.execPath, [join(repo, 'src/cli/main.ts'), 'images', 'list', '--cache-dir', cacheDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const status = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(status).toBe(0);
  });

  test('list shows each image, its layers, and the shared layer once', async () => {
    const { cacheDir, fresh, old } = await filledCache();
    const listing = list(cacheDir);
    expect(listing.images.map((i) => i.reference).sort()).toEqual([fresh, old].sort());
    expect(listing.layers).toHaveLength(3);
    expect(listing.layers.filter((l) => l.images.length === 2)).toHaveLength(1);
    expect(listing.totalBytes).toBe(6 + 5000 + 7000);

    const text = cli(['images', '--cache-dir', cacheDir]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/2 image\(s\), 3 layer\(s\)/);
    expect(text.stdout).toMatch(new RegExp(`${fresh}\\s+[0-9a-f]{12}\\s+2\\s+\\d+s ago`));
    expect(text.stdout).toMatch(new RegExp(`${old}\\s+[0-9a-f]{12}\\s+2\\s+30d ago`));
  });

  test('prune --older-than removes the stale image and the layer only it used; --dry-run removes nothing', async () => {
    const { cacheDir, fresh } = await filledCache();
    const before = list(cacheDir);
    const dry = cli(['images', 'prune', '--cache-dir', cacheDir, '--older-than', '7d', '--dry-run']);
    expect(dry.stdout).toMatch(/would remove 1 image\(s\), 1 layer\(s\), 6\.8 KiB/);
    expect(list(cacheDir)).toEqual(before);

    const r = cli(['images', 'prune', '--cache-dir', cacheDir, '--older-than', '7d']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/removed 1 image\(s\), 1 layer\(s\), 6\.8 KiB/);
    const after = list(cacheDir);
    expect(after.images.map((i) => i.reference)).toEqual([fresh]);
    expect(after.layers).toHaveLength(2);
    expect(readdirSync(layersDir(cacheDir))).toHaveLength(2);
    // The fresh image still resolves from the cache as it was.
    expect((await resolveImage(fresh, { cacheDir, progress: false })).lowerDirs.every((d) => existsSync(d))).toBe(true);
  });

  test('prune --all empties the cache; bad arguments are usage errors (exit 2)', async () => {
    const { cacheDir } = await filledCache();
    const r = cli(['images', 'prune', '--cache-dir', cacheDir, '--all', '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ removedImages: [expect.any(String), expect.any(String)], freedBytes: 12006 });
    expect(list(cacheDir)).toMatchObject({ images: [], layers: [], totalBytes: 0 });
    expect(cli(['images', 'prune', '--older-than', 'soon', '--cache-dir', cacheDir]).status).toBe(2);
    expect(cli(['images', 'remove']).status).toBe(2);
  });
});

describe('help and version', () => {
  test('--version is package.json\'s; every command has --help; unknown commands exit 2', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    expect(cli(['--version']).stdout.trim()).toBe(pkg.version);
    expect(cli(['--help']).stdout).toMatch(/doctor[\s\S]*run[\s\S]*images/);
    for (const command of ['doctor', 'run', 'images']) {
      const r = cli([command, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: vitest-environment-container ${command}`));
    }
    expect(cli(['run', '--help']).stdout).toMatch(/no pseudo-terminal/);
    expect(cli(['frobnicate']).status).toBe(2);
  });
});
