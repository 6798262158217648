// The builder's core promises on the smallest recipe: a valid OCI layout that
// third-party tools accept, byte-for-byte reproducible, and reused when unchanged.
import { mkdtemp, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { BuildResult } from '../../rootfs/lib/build-image.ts';
import { blobDigests, buildOrUnreachable, isRoot, skopeoConfig, skopeoInspect, umociUnpack } from './helpers.ts';

describe.skipIf(!isRoot)('busybox recipe (builds need root)', () => {
  let dir: string;
  let first: BuildResult | undefined;
  let second: BuildResult | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rootfs-busybox-'));
    // Two fresh output dirs: nothing of the first build can be reused by the second.
    first = await buildOrUnreachable('busybox', { outDir: join(dir, 'a') });
    second = await buildOrUnreachable('busybox', { outDir: join(dir, 'b') });
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('two builds into fresh dirs give the same digests and the same bytes', async (ctx) => {
    if (!first || !second) return ctx.skip('apt cannot reach its mirrors');
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(false);
    expect(second.manifestDigest).toBe(first.manifestDigest);
    expect(second.layers.map((l) => l.digest)).toEqual(first.layers.map((l) => l.digest));
    const index = (r: BuildResult) => readFile(join(r.layout, 'index.json'), 'utf8');
    expect(await index(second)).toBe(await index(first));
  });

  test('an unchanged recipe is not rebuilt', async (ctx) => {
    if (!first) return ctx.skip('apt cannot reach its mirrors');
    const before = await stat(join(first.layout, 'index.json'));
    const again = await buildOrUnreachable('busybox', { outDir: join(dir, 'a') });
    expect(again?.cached).toBe(true);
    expect(again?.manifestDigest).toBe(first.manifestDigest);
    expect((await stat(join(first.layout, 'index.json'))).mtimeMs).toBe(before.mtimeMs);
  });

  test('skopeo reads the layout: tag, platform, config', async (ctx) => {
    if (!first) return ctx.skip('apt cannot reach its mirrors');
    const inspect = await skopeoInspect(first);
    expect(inspect.Digest).toBe(first.manifestDigest);
    expect(inspect.Layers).toEqual(first.layers.map((l) => l.digest));
    const config = await skopeoConfig(first);
    expect(config.os).toBe('linux');
    expect(config.config.Cmd).toEqual(['sh']);
    expect(config.config.Env).toContain('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: first.layers.map((l) => l.diffId) });
  });

  test('blob names and diff_ids are the sha256 of the bytes', async (ctx) => {
    if (!first) return ctx.skip('apt cannot reach its mirrors');
    for (const layer of first.layers) {
      expect(await blobDigests(first, layer.digest)).toEqual({ digest: layer.digest, diffId: layer.diffId });
    }
  });

  test('umoci unpacks it: busybox, its applets, accounts, sticky /tmp', async (ctx) => {
    if (!first) return ctx.skip('apt cannot reach its mirrors');
    const bundle = join(dir, 'bundle');
    await umociUnpack(first, bundle);
    const root = join(bundle, 'rootfs');
    expect((await stat(join(root, 'bin/busybox'))).mode & 0o111).not.toBe(0);
    expect(await readlink(join(root, 'bin/sh'))).toBe('/bin/busybox');
    expect(await readlink(join(root, 'usr/bin/env'))).toBe('/bin/busybox');
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toMatch(/^root:x:0:0:/m);
    expect((await stat(join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
    // Docs are pruned, copyright files kept.
    await expect(stat(join(root, 'usr/share/man'))).rejects.toThrow();
    await stat(join(root, 'usr/share/doc/busybox-static/copyright'));
  });
});
