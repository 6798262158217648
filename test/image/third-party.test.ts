// Images written by umoci and skopeo, resolved and then really mounted with
// overlayfs: the files a container would see are the right ones.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveImage, resolveUser } from '../../src/image/index.ts';
import type { ResolvedImage } from '../../src/image/index.ts';
import { buildToolImages } from './helpers/images.ts';
import type { ToolImages } from './helpers/images.ts';
import { hasTool, inOverlay, isRoot, tempDir } from './helpers/host.ts';

const tools = hasTool('umoci') && hasTool('skopeo');

describe.runIf(tools)('images made by umoci and skopeo', () => {
  let images: ToolImages;
  let cacheDir: string;
  beforeAll(() => {
    images = buildToolImages(tempDir('tools'));
    cacheDir = tempDir('cache');
  });

  /** What a process in the container sees, through a real overlay mount and chroot. */
  function look(image: ResolvedImage): string {
    return inOverlay(image.lowerDirs, image.overlayOptions, `chroot "$ROOT" /bin/sh -c '
      cat /etc/hello; ls /data; test -e /etc/remove-me && echo remove-me-visible; test -e /data/sub && echo sub-visible; echo done'`,
    { rootless: !isRoot });
  }

  it('resolves the one-layer umoci image by tag and keeps its config', async () => {
    const image = await resolveImage(`${images.layout}:base`, { cacheDir });
    expect(image.lowerDirs).toHaveLength(1);
    expect(readFileSync(`${image.lowerDirs[0]}/etc/hello`, 'utf8')).toBe('hello from layer 1\n');
    expect(image.config).toMatchObject({
      Env: expect.arrayContaining(['GREETING=hi']), Cmd: ['/bin/sh'], WorkingDir: '/data', User: 'app',
      ExposedPorts: { '6379/tcp': {} }, Labels: { 'org.example': '1' },
    });
    expect(image.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('a later layer deletes a file and replaces a directory wholesale (whiteout + opaque dir), seen through overlay', async () => {
    const image = await resolveImage(`${images.layout}:layered`, { cacheDir });
    expect(image.lowerDirs).toHaveLength(3);
    expect(look(image).trim().split('\n')).toEqual(['hello from layer 2', 'fresh', 'done']);
  });

  it('the same image from skopeo\'s docker-archive shares the cached layers', async () => {
    const oci = await resolveImage(`${images.layout}:layered`, { cacheDir });
    const archive = await resolveImage(images.dockerArchive, { cacheDir });
    expect(archive.lowerDirs).toEqual(oci.lowerDirs); // keyed by diff_id, not by how the blob was compressed
    expect(archive.config.Env).toEqual(oci.config.Env);
    expect(look(archive).trim().split('\n')).toEqual(['hello from layer 2', 'fresh', 'done']);
  });

  it('reads the Docker 25+ save format (OCI layout and manifest.json in one tar), by tag too', async () => {
    const image = await resolveImage(images.docker25Archive, { cacheDir });
    const tagged = await resolveImage(`${images.docker25Archive}:latest`, { cacheDir });
    const oci = await resolveImage(`${images.layout}:layered`, { cacheDir });
    expect(image.manifestDigest).toBe(oci.manifestDigest);
    expect(tagged.lowerDirs).toEqual(oci.lowerDirs);
  });

  it('selects by digest and explains an unknown tag or an ambiguous layout', async () => {
    const oci = await resolveImage(`${images.layout}:layered`, { cacheDir });
    const byDigest = await resolveImage(`${images.layout}@${oci.manifestDigest}`, { cacheDir });
    expect(byDigest.lowerDirs).toEqual(oci.lowerDirs);
    await expect(resolveImage(`${images.layout}:nope`, { cacheDir })).rejects.toMatchObject({ code: 'IMAGE_TAG_NOT_FOUND', message: expect.stringContaining('layered') });
    await expect(resolveImage(images.layout, { cacheDir })).rejects.toMatchObject({ code: 'IMAGE_AMBIGUOUS', message: expect.stringMatching(/base.*layered/) });
  });

  it('resolves users and groups through the image\'s own passwd and group files', async () => {
    const image = await resolveImage(`${images.layout}:layered`, { cacheDir });
    expect(await resolveUser(image, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29] });
    expect(await resolveUser(image, 'svc:wheel')).toEqual({ uid: 999, gid: 10, additionalGids: [29] });
    expect(await resolveUser(image, '1234:5678')).toEqual({ uid: 1234, gid: 5678, additionalGids: [] });
    expect(await resolveUser(image, '1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 29] });
    expect(await resolveUser(image, '')).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    await expect(resolveUser(image, 'ghost')).rejects.toMatchObject({ code: 'IMAGE_USER_NOT_FOUND' });
    await expect(resolveUser(image, 'app:ghosts')).rejects.toMatchObject({ code: 'IMAGE_GROUP_NOT_FOUND' });
  });
});
