// Images made by third-party tools, started as sandboxes: the right files,
// whiteouts and opaque directories honoured, and the image config (Env,
// WorkingDir, User, ExposedPorts, Entrypoint/Cmd, StopSignal, Healthcheck)
// applied the way `docker run` would.
import { readFileSync, rmSync, symlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startContainer, withContainer } from '../../src/index.ts';
import { buildToolImages, type ToolImages } from '../image/helpers/images.ts';
import { busyboxRootfs, tarOf, tempDir } from '../image/helpers/host.ts';
import { writeImage } from '../image/helpers/oci-builder.ts';
import { collect, gated, startsOnlyAfterGate } from './helpers.ts';

let dir: string;
let images: ToolImages;
/** A one-layer busybox image whose config has an Entrypoint and Cmd, a StopSignal and a Healthcheck. */
let configured: string;
const cacheDir = tempDir('vtc-runtime-images-cache-');
beforeAll(() => {
  dir = tempDir('vtc-runtime-images-');
  images = buildToolImages(dir);
  const root = tempDir('vtc-configured-rootfs-');
  busyboxRootfs(root);
  for (const tool of ['echo', 'sleep', 'touch']) symlinkSync('busybox', `${root}/bin/${tool}`);
  configured = tempDir('vtc-configured-image-');
  writeImage(configured, [tarOf(root)], { config: {
    Env: ['PATH=/bin'], Entrypoint: ['/bin/echo', 'image-entrypoint'], Cmd: ['image-cmd'], StopSignal: 'SIGUSR1',
    Healthcheck: { Test: ['CMD-SHELL', 'test -e /tmp/healthy'] },
  } });
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

  test('@sha256:<digest> starts exactly that manifest of the layout', async () => {
    const index = JSON.parse(readFileSync(`${images.layout}/index.json`, 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
    const digest = (tag: string) => index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!.digest;
    const removeMe = ['sh', '-c', 'cat /etc/remove-me 2>&1'];
    await withContainer({ image: `${images.layout}@${digest('base')}`, cmd: removeMe, user: '0' }, async (c) => {
      await c.wait();
      expect(c.logs()).toBe('doomed\n');
    });
    await withContainer({ image: `${images.layout}@${digest('layered')}`, cmd: removeMe, user: '0' }, async (c) => {
      await c.wait();
      expect(c.logs()).toMatch(/No such file/); // the layered image deleted it
    });
    await expect(startContainer({ image: `${images.layout}@sha256:${'0'.repeat(64)}` })).rejects.toMatchObject({ name: 'ImageError' });
  });

  test("user 'name:group' at start: the user's uid, the group's gid, resolved in the image", async () => {
    await withContainer({ image: `${images.layout}:base`, user: 'app:audio', cmd: ['sh', '-c', 'echo $(id -u):$(id -g)'] }, async (c) => {
      await c.wait();
      expect(c.logs()).toBe('1000:29\n');
    });
    await expect(startContainer({ image: `${images.layout}:base`, user: 'app:no-such-group' })).rejects.toMatchObject({
      code: 'IMAGE_GROUP_NOT_FOUND', message: expect.stringContaining('no-such-group'),
    });
  });

  test('the ExposedPorts an image declares are forwarded and reach the service', async () => {
    // busybox nc as the service: it answers one connection on the image's port 6379.
    await withContainer({ image: `${images.layout}:base`, user: '0', cmd: ['busybox', 'sh', '-c', 'echo pong | busybox nc -l -p 6379'], waitFor: { port: 6379 } }, async (c) => {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(c.endpoint(6379));
        const got = collect(socket);
        socket.on('error', reject).on('close', () => resolve(got.text()));
      });
      expect(reply).toBe('pong\n');
    });
  });
});

describe('image config: Entrypoint and Cmd, StopSignal, Healthcheck', () => {
  test('entrypoint replaces the image\'s and drops its Cmd (Docker semantics); cmd replaces only the Cmd', async () => {
    const run = async (options: { entrypoint?: string[]; cmd?: string[] }) => {
      const c = await startContainer({ image: configured, ...options });
      await c.wait();
      return c.logs();
    };
    expect(await run({})).toBe('image-entrypoint image-cmd\n');
    expect(await run({ cmd: ['mine'] })).toBe('image-entrypoint mine\n');
    expect(await run({ entrypoint: ['/bin/echo', 'my-entrypoint'] })).toBe('my-entrypoint\n');
    expect(await run({ entrypoint: ['/bin/echo', 'my-entrypoint'], cmd: ['mine'] })).toBe('my-entrypoint mine\n');
  });

  test("stop() sends the image's StopSignal, not SIGTERM", async () => {
    const c = await startContainer({ image: configured, entrypoint: ['/bin/sh', '-c', 'trap "echo got-usr1; exit 0" USR1; trap "echo got-term; exit 0" TERM; echo armed; while :; do sleep 0.05; done'],
      waitFor: { log: 'armed' } });
    expect(await c.stop({ timeout: 30_000 })).toMatchObject({ exitCode: 0 }); // ended by its trap, long before a SIGKILL
    expect(c.logs()).toBe('armed\ngot-usr1\n');
  });

  test('waitFor {healthcheck} resolves only once the image\'s healthcheck passes; one that never passes is WAIT_TIMEOUT', async () => {
    const c = await startsOnlyAfterGate(gated('touch /tmp/healthy'), { image: configured, entrypoint: [], waitFor: { healthcheck: true } });
    try {
      expect((await c.exec(['test', '-e', '/tmp/healthy'])).exitCode).toBe(0);
    } finally {
      await c.stop({ timeout: 0 });
    }
    await expect(startContainer({ image: configured, entrypoint: ['/bin/sleep', '3600'], waitFor: { healthcheck: true }, timeout: 500 })).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT', message: expect.stringContaining('the image healthcheck passing'),
    });
  });
});

