// docker-daemon:NAME[:TAG] through the Docker Engine API, served by podman's
// Docker-compatible socket (podman system service), found through DOCKER_HOST.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveImage } from '../../src/image/index.ts';
import { startContainer } from '../../src/index.ts';
import { ensureImage, setQuiet } from '../../rootfs/index.ts';
import { busyboxRootfs, tarOf, tempDir } from './helpers/host.ts';
import { writeImage } from './helpers/oci-builder.ts';
import { havePodman, startPodman, type Daemon } from './helpers/registry.ts';

describe.runIf(havePodman)('images from the Docker/podman daemon', () => {
  let daemon: Daemon;
  const saved = process.env.DOCKER_HOST;
  beforeAll(async () => {
    daemon = await startPodman();
    process.env.DOCKER_HOST = daemon.url;
  });
  afterAll(() => {
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  it('docker-daemon:NAME:TAG is exported over the API; a sandbox started from it runs a command', async () => {
    setQuiet(true);
    const { layout } = await ensureImage('busybox');
    await daemon.load(`oci:${layout}:latest`, 'vtc/busybox:1');
    const cacheDir = tempDir('cache');
    process.env.VITEST_CONTAINER_CACHE = cacheDir;
    try {
      await using c = await startContainer({ image: 'docker-daemon:vtc/busybox:1', cmd: ['sleep', '300'] });
      expect(await c.exec(['sh', '-c', 'echo from-the-daemon'])).toMatchObject({ exitCode: 0, stdout: 'from-the-daemon\n' });
    } finally {
      delete process.env.VITEST_CONTAINER_CACHE;
    }
    expect(daemon.requests(/GET \/images\/sha256(?::|%3A)[0-9a-f]+\/get /)).toBe(1); // exported by id
  });

  it('a rebuilt image (same name, new id) is noticed even with pull: missing; an unchanged one is not exported again', async () => {
    const root = tempDir('rootfs');
    busyboxRootfs(root);
    const base = tarOf(root);
    const version = (text: string): string => {
      const dir = tempDir('v');
      const extra = tempDir('extra');
      writeFileSync(`${extra}/version`, text);
      writeImage(dir, [base, tarOf(extra)]);
      return dir;
    };
    const cacheDir = tempDir('cache');
    const read = async (): Promise<string> => readFileSync(`${(await resolveImage('docker-daemon:vtc/app:dev', { cacheDir, progress: false })).lowerDirs[0]}/version`, 'utf8');
    await daemon.load(`oci:${version('one')}`, 'vtc/app:dev');
    expect(await read()).toBe('one');
    const exports = daemon.requests(/\/get HTTP/);
    expect(await read()).toBe('one');
    expect(daemon.requests(/\/get HTTP/)).toBe(exports); // same id: inspected, not exported
    await daemon.load(`oci:${version('two')}`, 'vtc/app:dev');
    expect(await read()).toBe('two');
    expect(daemon.requests(/\/get HTTP/)).toBe(exports + 1);
  });

  it('an image the daemon lacks, and a daemon that is not there, are typed errors', async () => {
    const cacheDir = tempDir('cache');
    await expect(resolveImage('docker-daemon:vtc/absent:1', { cacheDir })).rejects.toMatchObject({
      code: 'DAEMON_IMAGE_NOT_FOUND', message: expect.stringContaining(daemon.url),
    });
    process.env.DOCKER_HOST = `unix://${tempDir('nodaemon')}/docker.sock`;
    try {
      await expect(resolveImage('docker-daemon:vtc/absent:1', { cacheDir })).rejects.toMatchObject({ code: 'DAEMON_UNREACHABLE', fix: expect.stringContaining('DOCKER_HOST') });
    } finally {
      process.env.DOCKER_HOST = daemon.url;
    }
  });
});
