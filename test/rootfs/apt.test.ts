// Resolution through apt (no network: package lists only) and the one failure
// that lets the other rootfs tests skip outside CI: a mirror apt cannot reach.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AptUnreachableError, resolve } from '../../rootfs/lib/apt.ts';
import { buildImage } from '../../rootfs/lib/build-image.ts';
import { setQuiet } from '../../rootfs/lib/log.ts';
import { MAINTAINER_ONLY } from '../../rootfs/recipes/layers.ts';
import { buildOrUnreachable, isRoot } from './helpers.ts';

describe('apt', () => {
  let cache: string;
  beforeAll(async () => {
    cache = await mkdtemp(join(tmpdir(), 'rootfs-apt-'));
  });
  afterAll(async () => {
    await rm(cache, { recursive: true, force: true });
  });

  test('resolution leaves out maintainer-only packages and what lower layers have', async () => {
    const base = await resolve(['libc6'], [], MAINTAINER_ONLY, cache);
    expect(base.map((p) => p.name)).toContain('libc6');
    const redis = await resolve(['redis-server'], base, MAINTAINER_ONLY, cache);
    const names = redis.map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['redis-server', 'redis-tools', 'libjemalloc2']));
    for (const name of [...base.map((p) => p.name), 'perl-base', 'adduser', 'debconf', 'dpkg', 'init-system-helpers', 'lsb-base']) {
      expect(names).not.toContain(name);
    }
    // Exact versions, as apt would install them.
    for (const p of redis) expect(p.version).toMatch(/^[\w.:~+-]+$/);
  }, 60_000);

  test.skipIf(!isRoot)('a mirror apt cannot reach is AptUnreachableError (the one reason rootfs tests skip, and only outside CI)', async () => {
    setQuiet(true);
    const saved = { http_proxy: process.env.http_proxy, APT_CONFIG: process.env.APT_CONFIG, CI: process.env.CI };
    // Port 9 (discard) on loopback refuses: apt cannot fetch anything through this proxy.
    process.env.http_proxy = 'http://127.0.0.1:9';
    // apt reads this file first, on top of its usual config: no retries with back-off.
    process.env.APT_CONFIG = join(cache, 'apt.conf');
    await writeFile(process.env.APT_CONFIG, 'Acquire::Retries "0";\n');
    try {
      const recipe = { name: 'unreachable', layers: [{ name: 'busybox', packages: ['busybox-static'] }], config: {} };
      const build = buildImage(recipe, { outDir: join(cache, 'out'), cacheDir: cache });
      await expect(build).rejects.toBeInstanceOf(AptUnreachableError);
      // What the other rootfs tests do with it: skip on a developer's machine, fail in CI.
      const fresh = { outDir: join(cache, 'fresh-out'), cacheDir: join(cache, 'fresh-cache') };
      delete process.env.CI;
      await expect(buildOrUnreachable('busybox', fresh)).resolves.toBeUndefined();
      process.env.CI = 'true';
      await expect(buildOrUnreachable('busybox', fresh)).rejects.toBeInstanceOf(AptUnreachableError);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  }, 60_000);
});
