// Media types, compressions and multi-platform indexes, on hand-built layouts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { hostPlatform } from '../../src/image/platform.ts';
import { OciLayoutBuilder, writeImage } from './helpers/oci-builder.ts';
import type { Compression } from './helpers/oci-builder.ts';
import { tarArchive } from './helpers/tar-builder.ts';
import { inOverlay, isRoot, tempDir } from './helpers/host.ts';

const cacheDir = tempDir('formats-cache');
const file = (name: string, data: string): Buffer => tarArchive([{ name, data }]);

describe('layer formats', () => {
  it.each<[Compression, boolean]>([['gzip', false], ['zstd', false], ['none', false], ['gzip', true], ['zstd', true], ['none', true]])(
    '%s layers with %s media types', async (compression, docker) => {
      const dir = tempDir('fmt');
      writeImage(dir, [file('hello', `${compression}-${docker}`)], { compression, docker });
      const image = await resolveImage(dir, { cacheDir });
      expect(readFileSync(`${image.lowerDirs[0]}/hello`, 'utf8')).toBe(`${compression}-${docker}`);
    });

  it('refuses layers of unknown media types, naming the type', async () => {
    const dir = tempDir('fmt');
    const b = new OciLayoutBuilder(dir);
    const m = b.image([file('x', 'x')]);
    const manifest = JSON.parse(readFileSync(`${dir}/blobs/sha256/${m.digest.slice(7)}`, 'utf8'));
    manifest.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip+encrypted';
    b.writeIndex([b.blob(JSON.stringify(manifest), m.mediaType)]);
    await expect(resolveImage(dir, { cacheDir })).rejects.toMatchObject({ code: 'IMAGE_UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('encrypted') });
  });

  it('keeps layers apart and in overlay order (top-most first), sharing a repeated layer once', async () => {
    const dir = tempDir('fmt');
    const empty = tarArchive([]);
    writeImage(dir, [file('one', '1'), empty, file('two', '2'), empty]);
    const image = await resolveImage(dir, { cacheDir });
    expect(image.lowerDirs).toHaveLength(3);
    expect(readFileSync(`${image.lowerDirs[1]}/two`, 'utf8')).toBe('2');
    expect(readFileSync(`${image.lowerDirs[2]}/one`, 'utf8')).toBe('1');
  });
});

describe('whiteouts within one layer', () => {
  it('a whiteout followed by a new directory of the same name hides the lower one (opaque)', async () => {
    const dir = tempDir('wh');
    writeImage(dir, [
      tarArchive([{ name: 'd/', type: 'dir' }, { name: 'd/old', data: 'old' }, { name: 'gone', data: 'x' }]),
      tarArchive([{ name: '.wh.d', data: '' }, { name: 'd/', type: 'dir' }, { name: 'd/new', data: 'new' }, { name: '.wh.gone', data: '' }]),
    ]);
    const image = await resolveImage(dir, { cacheDir });
    const seen = inOverlay(image.lowerDirs, image.overlayOptions, 'ls "$ROOT/d"; ls "$ROOT"', { rootless: !isRoot });
    expect(seen.trim().split('\n')).toEqual(['new', 'd']);
  });
});

describe('multi-platform indexes', () => {
  const host = hostPlatform();
  const other = host.architecture === 'arm64' ? 'amd64' : 'arm64';

  function multiPlatform(): string {
    const dir = tempDir('multi');
    const b = new OciLayoutBuilder(dir);
    const native = b.image([file('arch', host.architecture)], { architecture: host.architecture });
    const foreign = b.image([file('arch', other)], { architecture: other });
    const attestation = b.image([file('attestation', 'in-toto')]);
    // Like BuildKit: platforms plus an unknown/unknown attestation manifest, in a nested index.
    const nested = b.index([
      { ...foreign, platform: { os: 'linux', architecture: other } },
      { ...attestation, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } },
      { ...native, platform: { os: 'linux', architecture: host.architecture } },
    ]);
    b.writeIndex([{ ...nested, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]);
    return dir;
  }

  it('picks the host platform through a nested index and skips attestations', async () => {
    const dir = multiPlatform();
    const image = await resolveImage(`${dir}:v1`, { cacheDir });
    expect(readFileSync(`${image.lowerDirs[0]}/arch`, 'utf8')).toBe(host.architecture);
  });

  it('picks another platform when asked', async () => {
    const image = await resolveImage(multiPlatform(), { cacheDir, platform: { os: 'linux', architecture: other } });
    expect(readFileSync(`${image.lowerDirs[0]}/arch`, 'utf8')).toBe(other);
  });

  it('lists what is offered when nothing matches (and never picks the attestation)', async () => {
    await expect(resolveImage(multiPlatform(), { cacheDir, platform: { os: 'linux', architecture: 's390x' } })).rejects.toMatchObject({
      code: 'IMAGE_PLATFORM_NOT_FOUND',
      message: expect.stringMatching(new RegExp(`offers linux/${other}, linux/${host.architecture}; none matches linux/s390x`)),
    });
  });

  it('matches variants: arm/v7 is not arm/v6, arm64 without a variant is v8', async () => {
    const dir = tempDir('multi');
    const b = new OciLayoutBuilder(dir);
    const v6 = b.image([file('v', 'v6')]);
    const v7 = b.image([file('v', 'v7')]);
    const a64 = b.image([file('v', 'arm64')]);
    b.writeIndex([
      { ...v6, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { ...v7, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { ...a64, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const pick = async (p: { os: string; architecture: string; variant?: string }): Promise<string> =>
      readFileSync(`${(await resolveImage(dir, { cacheDir, platform: p })).lowerDirs[0]}/v`, 'utf8');
    expect(await pick({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('v7');
    expect(await pick({ os: 'linux', architecture: 'arm', variant: 'v6' })).toBe('v6');
    expect(await pick({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe('arm64');
  });

  it('reads a platform manifest named by digest even though index.json lists only the index', async () => {
    const dir = multiPlatform();
    const index = JSON.parse(readFileSync(`${dir}/index.json`, 'utf8'));
    const nested = JSON.parse(readFileSync(`${dir}/blobs/sha256/${index.manifests[0].digest.slice(7)}`, 'utf8'));
    const foreign = nested.manifests[0].digest;
    const image = await resolveImage(`${dir}@${foreign}`, { cacheDir });
    expect(image.manifestDigest).toBe(foreign);
  });
});
