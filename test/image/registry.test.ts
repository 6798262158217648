// Pulling from a real registry (Debian's docker-registry, distribution 2.8, on a
// loopback port), images pushed with skopeo. What is fetched is counted in the
// registry's own access log.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { layersDir } from '../../src/image/cache-layout.ts';
import { startContainer } from '../../src/index.ts';
import { ensureImage, setQuiet } from '../../rootfs/index.ts';
import { busyboxRootfs, NODE, snapshot, tarOf, tempDir } from './helpers/host.ts';
import { OciLayoutBuilder } from './helpers/oci-builder.ts';
import { haveRegistryTools, push, startProxy, startRegistry, type Registry } from './helpers/registry.ts';

const resolveCli = fileURLToPath(new URL('./helpers/resolve-cli.ts', import.meta.url));
const hostArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const otherArch = hostArch === 'amd64' ? 'arm64' : 'amd64';

const file = (name: string, data: string | Buffer): Buffer => {
  const dir = tempDir('layer');
  writeFileSync(`${dir}/${name}`, data);
  return tarOf(dir);
};

describe.runIf(haveRegistryTools)('pulling from a registry', () => {
  let registry: Registry;
  let base: Buffer;
  const opts = (cacheDir: string, extra: object = {}) => ({ cacheDir, progress: false, ...extra });

  /** An OCI layout tagged "v": the shared busybox base, then one layer per extra file. */
  function layout(files: Record<string, string | Buffer>, builder?: OciLayoutBuilder): { dir: string; layers: string[] } {
    const dir = builder?.dir ?? tempDir('layout');
    const b = builder ?? new OciLayoutBuilder(dir);
    const m = b.image([base, ...Object.entries(files).map(([n, d]) => file(n, d))], { architecture: hostArch });
    b.writeIndex([{ ...m, annotations: { 'org.opencontainers.image.ref.name': 'v' } }]);
    const manifest = JSON.parse(readFileSync(`${dir}/blobs/sha256/${m.digest.slice(7)}`, 'utf8')) as { layers: { digest: string }[] };
    return { dir, layers: manifest.layers.map((l) => l.digest) };
  }

  beforeAll(async () => {
    registry = await startRegistry();
    const root = tempDir('base');
    busyboxRootfs(root);
    base = tarOf(root);
  });

  it('pulls redis:7-style references by tag; a sandbox started from the pulled image runs a command', async () => {
    setQuiet(true);
    const { layout: dir } = await ensureImage('busybox');
    await push(`oci:${dir}:latest`, `${registry.host}/vtc/busybox:1`);
    const cacheDir = tempDir('cache');
    process.env.VITEST_CONTAINER_CACHE = cacheDir;
    try {
      await using c = await startContainer({ image: `${registry.host}/vtc/busybox:1`, cmd: ['sleep', '300'] });
      const r = await c.exec(['sh', '-c', 'echo "pulled: $(busybox | head -1 | cut -d" " -f1)"']);
      expect(r).toMatchObject({ exitCode: 0, stdout: 'pulled: BusyBox\n' });
    } finally {
      delete process.env.VITEST_CONTAINER_CACHE;
    }
    expect(registry.manifestGets('1')).toBe(1);
  });

  it("pull: 'missing' asks nothing for a cached tag; 'always' makes one manifest request and downloads nothing when the digest is unchanged", async () => {
    const { dir } = layout({ hello: 'v1' });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/policy:v`);
    const ref = `${registry.host}/vtc/policy:v`;
    const cacheDir = tempDir('cache');
    const first = await resolveImage(ref, opts(cacheDir));
    expect(readFileSync(`${first.lowerDirs[0]}/hello`, 'utf8')).toBe('v1');
    const baseGets = registry.blobGets(layout({}).layers[0]);
    const before = { log: registry.log().length, blobs: registry.blobGets(), manifests: registry.manifestGets() };
    expect(before.blobs).toBeGreaterThanOrEqual(3); // config, base, hello

    const again = await resolveImage(ref, opts(cacheDir));
    expect(again.lowerDirs).toEqual(first.lowerDirs);
    expect(registry.log().length).toBe(before.log); // not one request

    const always = await resolveImage(ref, opts(cacheDir, { pull: 'always' }));
    expect(always.manifestDigest).toBe(first.manifestDigest);
    expect(registry.manifestGets()).toBe(before.manifests + 1);
    expect(registry.blobGets()).toBe(before.blobs);

    // A new image under the same tag: 'always' fetches it, and only its new layer (the base is cached).
    const { dir: dir2, layers } = layout({ hello: 'v2' });
    await push(`oci:${dir2}:v`, ref);
    const newer = await resolveImage(ref, opts(cacheDir, { pull: 'always' }));
    expect(readFileSync(`${newer.lowerDirs[0]}/hello`, 'utf8')).toBe('v2');
    expect(registry.blobGets(layers[0])).toBe(baseGets); // the shared base: not fetched again
    expect(registry.blobGets(layers[1])).toBe(1);
    // 'missing' now finds the newer image under the tag, again with no request.
    const mark = registry.log().length;
    expect((await resolveImage(ref, opts(cacheDir))).manifestDigest).toBe(newer.manifestDigest);
    expect(registry.log().length).toBe(mark);
  });

  it('pulls by digest, and picks the platform of a multi-platform index (host by default, or the platform option)', async () => {
    const dir = tempDir('multi');
    const b = new OciLayoutBuilder(dir);
    const native = b.image([base, file('arch', hostArch)], { architecture: hostArch });
    const foreign = b.image([base, file('arch', otherArch)], { architecture: otherArch });
    const index = b.index([
      { ...foreign, platform: { os: 'linux', architecture: otherArch } },
      { ...native, platform: { os: 'linux', architecture: hostArch } },
    ]);
    b.writeIndex([{ ...index, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }]);
    await push(`oci:${dir}:multi`, `${registry.host}/vtc/multi:1`, { all: true });
    const cacheDir = tempDir('cache');
    const arch = async (ref: string, platform?: string): Promise<string> =>
      readFileSync(`${(await resolveImage(ref, opts(cacheDir, { platform }))).lowerDirs[0]}/arch`, 'utf8');

    expect(await arch(`${registry.host}/vtc/multi:1`)).toBe(hostArch);
    expect(await arch(`${registry.host}/vtc/multi:1`, `linux/${otherArch}`)).toBe(otherArch);
    // by the index's digest (the platform still chosen), and by one platform's manifest digest
    expect(await arch(`${registry.host}/vtc/multi@${index.digest}`, `linux/${otherArch}`)).toBe(otherArch);
    const byManifest = await resolveImage(`docker://${registry.host}/vtc/multi@${native.digest}`, opts(cacheDir));
    expect(byManifest.manifestDigest).toBe(native.digest);
    await expect(resolveImage(`${registry.host}/vtc/multi:1`, opts(cacheDir, { platform: 'linux/s390x' }))).rejects.toMatchObject({ code: 'IMAGE_PLATFORM_NOT_FOUND' });
  });

  it('8 processes pulling one image at once fetch each blob once and leave one consistent entry', async () => {
    const { dir, layers } = layout({ a: Buffer.alloc(3 << 20, 1), b: Buffer.alloc(3 << 20, 2), c: 'c' });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/eight:v`);
    const ref = `${registry.host}/vtc/eight:v`;
    const cacheDir = tempDir('cache');
    const blobsBefore = registry.blobGets();
    const before = layers.map((d) => registry.blobGets(d)); // the shared base was fetched by earlier tests
    const results = await Promise.all(Array.from({ length: 8 }, () => new Promise<{ code: number | null; out: string }>((done) => {
      const child = spawn(NODE, [resolveCli, ref, cacheDir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.on('close', (code) => done({ code, out }));
    })));
    for (const r of results) expect(r, r.out).toMatchObject({ code: 0 });
    const images = results.map((r) => JSON.parse(r.out) as { lowerDirs: string[]; manifestDigest: string });
    for (const image of images) expect(image.lowerDirs).toEqual(images[0]!.lowerDirs);
    layers.forEach((digest, i) => expect(registry.blobGets(digest) - before[i]!, digest).toBe(1));
    expect(registry.blobGets() - blobsBefore).toBe(layers.length + 1); // + the config
    expect(readdirSync(layersDir(cacheDir))).toHaveLength(4);
    expect(readdirSync(`${cacheDir}/refs`)).toHaveLength(1);
    expect(readdirSync(`${cacheDir}/images`)).toHaveLength(1);
    expect(readdirSync(`${cacheDir}/tmp`)).toEqual([]);
    expect(readdirSync(`${cacheDir}/locks`)).toEqual([]);
  });

  it('a blob altered in the registry\'s storage fails with the digest (or size) error, and the cache stays as it was', async () => {
    const cacheDir = tempDir('cache');
    const fine = layout({ ok: 'fine' });
    await push(`oci:${fine.dir}:v`, `${registry.host}/vtc/fine:v`);
    await resolveImage(`${registry.host}/vtc/fine:v`, opts(cacheDir));
    const before = snapshot(cacheDir);

    const { dir, layers } = layout({ victim: 'x'.repeat(100_000) });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/corrupt:v`);
    const blob = registry.blobFile(layers[1]!);
    const original = readFileSync(blob);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 20] ^= 0xff;
    writeFileSync(blob, flipped);
    await expect(resolveImage(`${registry.host}/vtc/corrupt:v`, opts(cacheDir))).rejects.toMatchObject({
      code: 'IMAGE_DIGEST_MISMATCH', message: expect.stringContaining(layers[1]!),
    });
    expect(snapshot(cacheDir)).toEqual(before);

    writeFileSync(blob, original.subarray(0, original.length - 100));
    await expect(resolveImage(`${registry.host}/vtc/corrupt:v`, opts(cacheDir))).rejects.toMatchObject({ code: 'IMAGE_SIZE_MISMATCH' });
    expect(snapshot(cacheDir)).toEqual(before);

    writeFileSync(blob, original);
    expect(readFileSync(`${(await resolveImage(`${registry.host}/vtc/corrupt:v`, opts(cacheDir))).lowerDirs[0]}/victim`, 'utf8')).toHaveLength(100_000);
  });

  it('unknown tag and unknown repository are told apart; pull: never refuses what is not cached', async () => {
    const cacheDir = tempDir('cache');
    const { dir } = layout({ t: 't' });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/tags:v`);
    await expect(resolveImage(`${registry.host}/vtc/tags:nope`, opts(cacheDir))).rejects.toMatchObject({
      code: 'REGISTRY_TAG_NOT_FOUND', message: expect.stringMatching(/has no tag nope; it has v/),
    });
    await expect(resolveImage(`${registry.host}/vtc/no-such-repo:1`, opts(cacheDir))).rejects.toMatchObject({
      code: 'REGISTRY_REPOSITORY_NOT_FOUND', message: expect.stringContaining('vtc/no-such-repo'),
    });
    await expect(resolveImage(`${registry.host}/vtc/tags:v`, opts(cacheDir, { pull: 'never' }))).rejects.toMatchObject({
      code: 'IMAGE_NOT_PULLED', fix: expect.stringContaining('vitest-environment-container pull'),
    });
    expect(existsSync(layersDir(cacheDir))).toBe(false);
  });

  it('offline: a cached image still works (missing, never), a missing one names the reference, the registry and the fix', async () => {
    const own = await startRegistry();
    const { dir } = layout({ o: 'o' });
    await push(`oci:${dir}:v`, `${own.host}/vtc/offline:v`);
    const cacheDir = tempDir('cache');
    const pulled = await resolveImage(`${own.host}/vtc/offline:v`, opts(cacheDir));
    await own.stop();
    expect((await resolveImage(`${own.host}/vtc/offline:v`, opts(cacheDir))).manifestDigest).toBe(pulled.manifestDigest);
    expect((await resolveImage(`${own.host}/vtc/offline:v`, opts(cacheDir, { pull: 'never' }))).manifestDigest).toBe(pulled.manifestDigest);
    const err = await resolveImage(`${own.host}/vtc/offline:other`, opts(cacheDir)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'REGISTRY_UNREACHABLE', name: 'RegistryError' });
    expect((err as Error).message).toContain(`${own.host}/vtc/offline:other`);
    expect((err as Error).message).toContain(`from ${own.host}`);
    expect((err as { fix: string }).fix).toMatch(/pull/);
    await expect(resolveImage(`${own.host}/vtc/offline:v`, opts(cacheDir, { pull: 'always' }))).rejects.toMatchObject({ code: 'REGISTRY_UNREACHABLE' });
  });

  it('a download broken mid-blob is resumed with a Range request', async () => {
    const big = Buffer.alloc(2 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i); // does not compress away
    const { dir, layers } = layout({ big });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/resume:v`);
    let cut = false;
    const proxy = await startProxy(registry.host, (req) => {
      if (!cut && req.url?.includes(`/blobs/${layers[1]}`)) {
        cut = true;
        return { cutAfter: 700_000 };
      }
      return { pass: true };
    });
    const image = await resolveImage(`${proxy.host}/vtc/resume:v`, opts(tempDir('cache')));
    expect(readFileSync(`${image.lowerDirs[0]}/big`).equals(big)).toBe(true);
    const gets = proxy.seen.filter((s) => s.path.includes(`/blobs/${layers[1]}`));
    expect(gets).toHaveLength(2);
    expect(gets[0]!.range).toBeUndefined();
    // from where the connection broke (what reached us of the 700,000 bytes sent before the cut)
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1]!.range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(700_000);
  });

  it('429: Retry-After is honoured up to a bound, then the error names the limit', async () => {
    const { dir } = layout({ r: 'r' });
    await push(`oci:${dir}:v`, `${registry.host}/vtc/limited:v`);
    let manifestRequests = 0;
    const polite = await startProxy(registry.host, (req) => (req.url?.includes('/manifests/') && manifestRequests++ === 0
      ? { status: 429, headers: { 'retry-after': '1' } } : { pass: true }));
    const t0 = Date.now();
    await resolveImage(`${polite.host}/vtc/limited:v`, opts(tempDir('cache')));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);

    const strict = await startProxy(registry.host, () => ({ status: 429, headers: { 'retry-after': '3600', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0' } }));
    const t1 = Date.now();
    await expect(resolveImage(`${strict.host}/vtc/limited:v`, opts(tempDir('cache')))).rejects.toMatchObject({
      code: 'REGISTRY_RATE_LIMITED', message: expect.stringMatching(/limit 100;w=21600.*wait 3600 s, more than the 60 s/),
    });
    expect(Date.now() - t1).toBeLessThan(5000);
  });

  it('an image that is not a container image, or a manifest of an unsupported media type, is refused by type', async () => {
    const dir = tempDir('artifact');
    const b = new OciLayoutBuilder(dir);
    const layerBlob = b.blob('not a tar', 'application/vnd.oci.image.layer.v1.tar+encrypted');
    const config = b.blob(JSON.stringify({ architecture: hostArch, os: 'linux', rootfs: { type: 'layers', diff_ids: ['sha256:' + '0'.repeat(64)] } }), 'application/vnd.oci.image.config.v1+json');
    const m = b.blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layerBlob] }), 'application/vnd.oci.image.manifest.v1+json');
    b.writeIndex([{ ...m, annotations: { 'org.opencontainers.image.ref.name': 'v' } }]);
    await push(`oci:${dir}:v`, `${registry.host}/vtc/encrypted:v`);
    const cacheDir = tempDir('cache');
    await expect(resolveImage(`${registry.host}/vtc/encrypted:v`, opts(cacheDir))).rejects.toMatchObject({ code: 'IMAGE_UNSUPPORTED_MEDIA_TYPE' });

    const v1 = await startProxy(registry.host, (req) => (req.url?.includes('/manifests/')
      ? { status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: '{"schemaVersion":1}' } : { pass: true }));
    await expect(resolveImage(`${v1.host}/vtc/encrypted:v`, opts(cacheDir))).rejects.toMatchObject({
      code: 'IMAGE_UNSUPPORTED_MEDIA_TYPE', fix: expect.stringContaining('schema 1'),
    });
    expect(existsSync(layersDir(cacheDir))).toBe(false);
  });

  it('mirrors are tried first; one that lacks the image passes to the registry itself', async () => {
    const mirror = await startRegistry();
    const { dir, layers } = layout({ m: 'mirrored' });
    await push(`oci:${dir}:v`, `${mirror.host}/vtc/mirrored:v`); // only the mirror has it
    const registries = { mirrors: { [registry.host]: [mirror.host] } };
    const image = await resolveImage(`${registry.host}/vtc/mirrored:v`, opts(tempDir('cache'), { registries }));
    expect(readFileSync(`${image.lowerDirs[0]}/m`, 'utf8')).toBe('mirrored');
    expect(mirror.blobGets(layers[1])).toBe(1);

    const { dir: own } = layout({ m: 'upstream' });
    await push(`oci:${own}:v`, `${registry.host}/vtc/upstream-only:v`);
    const fallback = await resolveImage(`${registry.host}/vtc/upstream-only:v`, opts(tempDir('cache'), { registries }));
    expect(readFileSync(`${fallback.lowerDirs[0]}/m`, 'utf8')).toBe('upstream');
    expect(mirror.manifestGets('v')).toBe(2); // asked first both times
  });

  it('the pull and platform options are checked before anything starts', async () => {
    await expect(startContainer({ image: `${registry.host}/vtc/x:1`, pull: 'sometimes' as 'always' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', message: expect.stringContaining('pull') });
    await expect(startContainer({ image: `${registry.host}/vtc/x:1`, platform: 'arm64' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', fix: expect.stringContaining('linux/arm64') });
  });

  afterAll(() => {
    delete process.env.VITEST_CONTAINER_CACHE;
  });
});
