// Images made by third-party tools, started as sandboxes: the right files,
// whiteouts and opaque directories honoured, and the image config (Env,
// WorkingDir, User, ExposedPorts) applied the way `docker run` would.
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { withContainer } from '../../src/index.ts';
import { buildToolImages, type ToolImages } from '../image/helpers/images.ts';
import { tempDir } from '../image/helpers/host.ts';

let dir: string;
let images: ToolImages;
const cacheDir = tempDir('vtc-runtime-images-cache-');
beforeAll(() => {
  dir = tempDir('vtc-runtime-images-');
  images = buildToolImages(dir);
  process.env.VITEST_CONTAINER_CACHE = cacheDir;
});
afterAll(() => {
  delete process.env.VITEST_CONTAINER_CACHE;
  rmSync(dir, { recursive: true, force: true });
  rmSync(cacheDir, { recursive: true, force: true });
});

const show = ['sh', '-c', 'cat /etc/hello; ls /etc/remove-me 2>&1 | head -1; ls /data; echo "$GREETING $(pwd) $(id -un 2>/dev/null || id -u)"'];

describe('third-party images in a sandbox', () => {
  test('umoci OCI layout, layered: whiteout and opaque directory applied', async () => {
    await withContainer({ image: `${images.layout}:layered`, cmd: show, user: '0' }, async (c) => {
      const out = (await c.wait(), c.logs()).split('\n');
      expect(out[0]).toBe('hello from layer 2');
      expect(out[1]).toMatch(/No such file/);
      expect(out[2]).toBe('fresh'); // /data is opaque in the top layer: a, b and sub are gone
      expect(out[3]).toBe('hi /data root');
    });
  });

  test('the same image through skopeo docker-archive and a Docker 25+ save', async () => {
    for (const image of [images.dockerArchive, images.docker25Archive]) {
      await withContainer({ image, cmd: show, user: '0' }, async (c) => {
        await c.wait();
        expect(c.logs().split('\n').slice(0, 3)).toEqual(['hello from layer 2', expect.stringMatching(/No such file/), 'fresh']);
      });
    }
  });

  test('the base tag: its own files, and the image user, workdir, env and exposed port', async () => {
    await withContainer({ image: `${images.layout}:base`, user: '0', cmd: ['busybox', 'sleep', '60'] }, async (c) => {
      expect((await c.exec(['cat', '/etc/remove-me'])).stdout).toBe('doomed\n');
      expect((await c.exec(['ls', '/data'])).stdout.split('\n')).toEqual(['a', 'b', 'sub', '']);
      expect((await c.exec(['sh', '-c', 'pwd'])).stdout).toBe('/data\n');
      expect(c.ports.has(6379)).toBe(true); // ExposedPorts are forwarded
    });
  });

  test("without a user option the image's User applies, resolved through its /etc/passwd", async () => {
    await withContainer({ image: `${images.layout}:base`, cmd: ['sh', '-c', 'echo $(id -u):$(id -g) $GREETING'] }, async (c) => {
      await c.wait();
      expect(c.logs()).toBe('1000:1000 hi\n');
    });
  });
});
