// A corpus of hostile images. Each must be refused with a stable error code,
// write nothing outside the cache, and leave the cache exactly as it was; a
// few hazards (device nodes, setuid, overlay xattrs) are neutralised instead.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { getXattr } from '../../src/image/syscalls.ts';
import { OciLayoutBuilder, sha256, writeImage } from './helpers/oci-builder.ts';
import { tarArchive, tarHeader } from './helpers/tar-builder.ts';
import type { TarEntrySpec } from './helpers/tar-builder.ts';
import { busyboxRootfs, isRoot, snapshot, tarOf, tempDir } from './helpers/host.ts';
import { layersDir } from '../../src/image/cache-layout.ts';

const base = tempDir('hostile');
const victim = `${base}/victim`;
const cacheDir = `${base}/cache`;
const layouts = `${base}/layouts`;
const up = '../'.repeat(12) + victim.slice(1); // climbs out of any cache path to the victim dir
const limits = { maxEntries: 2000, maxBytes: 16 << 20 };

let counter = 0;
function image(entries: TarEntrySpec[] | Buffer, opts: Parameters<typeof writeImage>[2] = {}): string {
  const dir = `${layouts}/case${counter++}`;
  writeImage(dir, [Buffer.isBuffer(entries) ? entries : tarArchive(entries)], opts);
  return dir;
}

/** Rewrites the first blob of a layout whose content matches, keeping its name (and so its claimed digest). */
function tamper(dir: string, digest: string, change: (b: Buffer) => Buffer): void {
  const path = `${dir}/blobs/sha256/${digest.slice(7)}`;
  writeFileSync(path, change(readFileSync(path)));
}

function layerDigest(dir: string): string {
  const index = JSON.parse(readFileSync(`${dir}/index.json`, 'utf8'));
  const manifest = JSON.parse(readFileSync(`${dir}/blobs/sha256/${index.manifests[0].digest.slice(7)}`, 'utf8'));
  return manifest.layers[0].digest;
}

const gzBomb = (): Buffer => {
  const zeros = Buffer.alloc(64 << 20); // 64 MiB of zeros -> ~64 KiB of gzip
  return gzipSync(tarArchive([{ name: 'zeros', data: zeros }]));
};

interface RefusedCase {
  name: string;
  code: string | RegExp;
  make: () => string;
}

const refused: RefusedCase[] = [
  { name: 'file name with ".." traversal', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: `${up}/pwned`, data: 'x' }]) },
  { name: 'nested "a/../../" traversal', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'a/', type: 'dir' }, { name: `a/../../../../../../../../../..${victim}/pwned`, data: 'x' }]) },
  { name: 'absolute file name', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: `${victim}/pwned`, data: 'x' }]) },
  { name: 'PAX path overriding an innocent name with a traversal', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'innocent', data: 'x', pax: { path: `${up}/pwned` } }]) },
  { name: 'symlink to outside, then a file written through it', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/pwned', data: 'x' }]) },
  { name: 'relative symlink climbing out, then a file through it', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'up', type: 'symlink', linkname: '../../../../../../../../..' }, { name: `up${victim}/pwned`, data: 'x' }]) },
  { name: 'symlink, then a directory created through it', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/newdir/', type: 'dir' }]) },
  { name: 'symlink, then a hardlink created through it', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'f', data: 'x' }, { name: 'link', type: 'symlink', linkname: victim }, { name: 'link/pwned', type: 'hardlink', linkname: 'f' }]) },
  { name: 'symlink, then a symlink planted through it', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/evil', type: 'symlink', linkname: '/etc/shadow' }]) },
  { name: 'whiteout through a symlink', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/.wh.secret', data: '' }]) },
  { name: 'opaque marker through a symlink', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'link', type: 'symlink', linkname: victim }, { name: 'link/.wh..wh..opq', data: '' }]) },
  { name: 'hardlink to an absolute host path', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'h', type: 'hardlink', linkname: `${victim}/secret` }]) },
  { name: 'hardlink with a ".." target', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'h', type: 'hardlink', linkname: `${up}/secret` }]) },
  { name: 'hardlink to a file the layer does not have', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'h', type: 'hardlink', linkname: 'etc/shadow' }]) },
  { name: 'hardlink to a path through a symlink', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'l', type: 'symlink', linkname: victim }, { name: 'h', type: 'hardlink', linkname: 'l/secret' }]) },
  { name: 'PAX linkpath traversal on a hardlink', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'h', type: 'hardlink', linkname: 'ok', pax: { linkpath: `${up}/secret` } }]) },
  { name: 'entry below a regular file', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'f', data: 'x' }, { name: 'f/x', data: 'y' }]) },
  { name: 'whiteout naming ".."', code: 'IMAGE_LAYER_UNSAFE_ENTRY', make: () => image([{ name: 'd/', type: 'dir' }, { name: 'd/.wh...', data: '' }]) },
  { name: 'layer blob changed after the manifest was written', code: 'IMAGE_DIGEST_MISMATCH', make: () => {
    const dir = image([{ name: 'f', data: 'original' }], { compression: 'none' });
    tamper(dir, layerDigest(dir), (b) => Buffer.from(b.toString('latin1').replace('original', 'evil!!!!'), 'latin1'));
    return dir;
  } },
  { name: 'config diff_id does not match the layer', code: 'IMAGE_DIFFID_MISMATCH', make: () => image([{ name: 'f', data: 'x' }], { diffIds: [sha256('something else')] }) },
  { name: 'manifest changed after index.json was written', code: 'IMAGE_DIGEST_MISMATCH', make: () => {
    const dir = image([{ name: 'f', data: 'x' }]);
    const index = JSON.parse(readFileSync(`${dir}/index.json`, 'utf8'));
    tamper(dir, index.manifests[0].digest, (b) => Buffer.from(b.toString().replace('"schemaVersion":2', '"schemaVersion":3')));
    return dir;
  } },
  { name: 'config changed (extra env) after the manifest was written', code: 'IMAGE_DIGEST_MISMATCH', make: () => {
    const dir = image([{ name: 'f', data: 'x' }], { config: { Env: ['A=1'] } });
    const index = JSON.parse(readFileSync(`${dir}/index.json`, 'utf8'));
    const manifest = JSON.parse(readFileSync(`${dir}/blobs/sha256/${index.manifests[0].digest.slice(7)}`, 'utf8'));
    tamper(dir, manifest.config.digest, (b) => Buffer.from(b.toString().replace('A=1', 'A=2')));
    return dir;
  } },
  { name: 'descriptor size does not match the blob', code: 'IMAGE_SIZE_MISMATCH', make: () => {
    const dir = image([{ name: 'f', data: 'x' }]);
    const digest = layerDigest(dir);
    tamper(dir, digest, (b) => Buffer.concat([b, Buffer.from('trailing')]));
    return dir;
  } },
  // The blob no longer matches its descriptor: that, not the broken gzip stream, is the diagnosis.
  { name: 'truncated gzip', code: 'IMAGE_SIZE_MISMATCH', make: () => {
    const dir = image([{ name: 'f', data: 'x'.repeat(100_000) }]);
    const path = `${dir}/blobs/sha256/${layerDigest(dir).slice(7)}`;
    truncateSync(path, Math.floor(statSync(path).size / 2));
    return dir;
  } },
  { name: 'tar stream cut inside an entry', code: 'IMAGE_LAYER_CORRUPT', make: () => image(tarArchive([{ name: 'f', data: 'x', size: 4096 }], { end: false }), { compression: 'none' }) },
  { name: 'header with a bad checksum', code: 'IMAGE_LAYER_CORRUPT', make: () => {
    const h = tarHeader({ name: 'f' }, 0);
    h[0] = 'g'.charCodeAt(0);
    return image(Buffer.concat([h, Buffer.alloc(1024)]));
  } },
  { name: 'tar bomb: more entries than allowed', code: 'IMAGE_LAYER_TOO_LARGE', make: () => image(Array.from({ length: 2500 }, (_, i) => ({ name: `f${i}`, data: '' }))) },
  { name: 'gzip bomb: 64 MiB of zeros in a tiny blob', code: 'IMAGE_LAYER_TOO_LARGE', make: () => {
    const b = new OciLayoutBuilder(`${layouts}/case${counter++}`);
    const tar = tarArchive([{ name: 'zeros', data: Buffer.alloc(64 << 20) }]);
    const layer = b.blob(gzBomb(), 'application/vnd.oci.image.layer.v1.tar+gzip');
    const config = b.blob(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [sha256(tar)] } }), 'application/vnd.oci.image.config.v1+json');
    b.writeIndex([b.blob(JSON.stringify({ schemaVersion: 2, config, layers: [layer] }), 'application/vnd.oci.image.manifest.v1+json')]);
    return b.dir;
  } },
  { name: 'GNU sparse file', code: 'IMAGE_LAYER_UNSUPPORTED', make: () => image([{ name: 'sparse', type: 'S', data: '' }]) },
  { name: 'legacy manifest.json pointing a layer outside the layout', code: 'IMAGE_INVALID_MANIFEST', make: () => {
    const dir = `${layouts}/case${counter++}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/manifest.json`, JSON.stringify([{ Config: `../victim/secret`, Layers: [`${up}/secret`] }]));
    return dir;
  } },
  { name: 'a blob far too large to be a manifest', code: 'IMAGE_BLOB_TOO_LARGE', make: () => {
    const b = new OciLayoutBuilder(`${layouts}/case${counter++}`);
    b.writeIndex([b.blob(Buffer.alloc(9 << 20, 0x20), 'application/vnd.oci.image.manifest.v1+json')]);
    return b.dir;
  } },
  { name: 'index.json that is not JSON', code: 'IMAGE_INVALID_JSON', make: () => {
    const dir = image([{ name: 'f', data: 'x' }]);
    writeFileSync(`${dir}/index.json`, '{"manifests": [');
    return dir;
  } },
];

describe('hostile images', () => {
  beforeAll(async () => {
    mkdirSync(victim, { recursive: true });
    writeFileSync(`${victim}/secret`, 'top secret\n');
    // A cache that already holds a good image, so "unchanged" means something.
    const good = `${layouts}/good`;
    const root = tempDir('good-rootfs');
    busyboxRootfs(root);
    writeImage(good, [tarOf(root)]);
    await resolveImage(good, { cacheDir });
    mkdirSync(`${cacheDir}/tmp`, { recursive: true });
  });

  it('has at least 20 cases', () => {
    expect(refused.length).toBeGreaterThanOrEqual(20);
  });

  it.each(refused)('refuses $name', async ({ code, make }) => {
    const ref = make();
    const before = snapshot(base.replace(/\/$/, ''));
    const err = await resolveImage(ref, { cacheDir, limits }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ name: 'ImageError', code });
    expect((err as Error).message).toContain(ref); // names the image
    const after = snapshot(base);
    expect(after.filter((l) => !l.startsWith('./layouts'))).toEqual(before.filter((l) => !l.startsWith('./layouts')));
    expect(readdirSync(victim)).toEqual(['secret']);
  });

  it('hardlink then a same-named file replaces the link instead of writing into the target (CVE-2018-20834)', async () => {
    const image_ = await resolveImage(image([{ name: 'f', data: 'original' }, { name: 'h', type: 'hardlink', linkname: 'f' }, { name: 'h', data: 'replaced' }]), { cacheDir, limits });
    const [dir] = image_.lowerDirs;
    expect(readFileSync(`${dir}/f`, 'utf8')).toBe('original');
    expect(readFileSync(`${dir}/h`, 'utf8')).toBe('replaced');
  });

  it('skips device nodes, keeps FIFOs and symlinks pointing anywhere without following them', async () => {
    const image_ = await resolveImage(image([
      { name: 'dev/', type: 'dir' },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
      { name: 'dev/mem', type: 'char', devmajor: 1, devminor: 1 },
      { name: 'fifo', type: 'fifo', mode: 0o644 },
      { name: 'abs-link', type: 'symlink', linkname: `${victim}/secret` },
    ]), { cacheDir, limits });
    const [dir] = image_.lowerDirs;
    expect(readdirSync(`${dir}/dev`)).toEqual([]);
    expect(lstatSync(`${dir}/fifo`).isFIFO()).toBe(true);
    expect(lstatSync(`${dir}/abs-link`).isSymbolicLink()).toBe(true);
    expect(readFileSync(`${victim}/secret`, 'utf8')).toBe('top secret\n');
  });

  it('never applies overlay or trusted xattrs carried in the layer', async () => {
    const image_ = await resolveImage(image([
      { name: 'd/', type: 'dir', pax: { 'SCHILY.xattr.trusted.overlay.redirect': '/etc', 'SCHILY.xattr.user.overlay.opaque': 'y', 'SCHILY.xattr.user.note': 'kept' } },
    ]), { cacheDir, limits });
    const d = `${image_.lowerDirs[0]}/d`;
    expect(getXattr(d, 'trusted.overlay.redirect')).toBeUndefined();
    expect(getXattr(d, 'user.overlay.opaque')).toBeUndefined();
    expect(getXattr(d, 'user.note')?.toString()).toBe('kept');
  });

  it('setuid bits: kept only when unpacking as root, and then the layer store is root-only', async () => {
    const image_ = await resolveImage(image([{ name: 'su', data: '#!/bin/sh\n', mode: 0o4755 }, { name: 'sg', data: '', mode: 0o2755 }]), { cacheDir, limits });
    const [dir] = image_.lowerDirs;
    if (isRoot) {
      expect(statSync(`${dir}/su`).mode & 0o7777).toBe(0o4755);
      expect(statSync(layersDir(cacheDir)).mode & 0o777).toBe(0o700); // host users cannot reach it
    } else {
      expect(statSync(`${dir}/su`).mode & 0o7777).toBe(0o755);
      expect(statSync(`${dir}/sg`).mode & 0o7777).toBe(0o755);
    }
  });

  it('file modes are the layer\'s, bits the umask takes included (files get theirs at open(), then chmod only where needed)', async () => {
    const modes = [0o644, 0o666, 0o777, 0o640, 0o400, 0o1755];
    const ref = image(modes.map((mode) => ({ name: `m${mode.toString(8)}`, data: 'x', mode })));
    const [dir] = (await resolveImage(ref, { cacheDir, limits })).lowerDirs;
    for (const mode of modes) expect(statSync(`${dir}/m${mode.toString(8)}`).mode & 0o7777).toBe(mode);
  });

  it('keeps a file mode of 000 and read-only directories (removal is covered in cache.test.ts)', async () => {
    const ref = image([{ name: 'ro/', type: 'dir', mode: 0o555 }, { name: 'ro/locked', data: 'x', mode: 0 }]);
    const image_ = await resolveImage(ref, { cacheDir, limits });
    const [dir] = image_.lowerDirs;
    expect(statSync(`${dir}/ro`).mode & 0o777).toBe(0o555);
    expect(statSync(`${dir}/ro/locked`).mode & 0o777).toBe(0);
    expect(existsSync(`${dir}/ro/locked`)).toBe(true);
  });
});

