// The redis and postgres images: what is inside, what the config says, that they
// share their base layers, and that the services really run (under runc, from
// the bundle umoci unpacks). Built into the repo's .cache/images and reused.
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { BuildResult } from '../../rootfs/lib/build-image.ts';
import { assertRunning, buildOrUnreachable, freePort, isRoot, runcExec, runcStart, skopeoConfig, umociUnpack, until } from './helpers.ts';

/** One PING over TCP from the host, without a redis client library. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      resolve(data.toString());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

describe.skipIf(!isRoot)('redis, postgres and example recipes (builds need root)', () => {
  let dir: string;
  let redis: BuildResult | undefined;
  let postgres: BuildResult | undefined;
  let example: BuildResult | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rootfs-services-'));
    redis = await buildOrUnreachable('redis');
    postgres = await buildOrUnreachable('postgres');
    example = await buildOrUnreachable('example');
  }, 900_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('redis and postgres share the busybox and debian layer blobs, not the service layer', (ctx) => {
    if (!redis || !postgres) return ctx.skip('apt cannot reach its mirrors');
    expect(redis.layers.map((l) => l.name)).toEqual(['busybox', 'debian', 'redis']);
    expect(postgres.layers.map((l) => l.name)).toEqual(['busybox', 'debian', 'postgres']);
    expect(postgres.layers[0]!.digest).toBe(redis.layers[0]!.digest);
    expect(postgres.layers[1]!.digest).toBe(redis.layers[1]!.digest);
    expect(postgres.layers[2]!.digest).not.toBe(redis.layers[2]!.digest);
    // Left out on purpose: maintainer-script tooling and LLVM.
    const packages = [...redis.layers, ...postgres.layers].flatMap((l) => l.packages.map((p) => p.split('=')[0]));
    for (const name of ['perl-base', 'debconf', 'adduser', 'dpkg', 'systemd', 'postgresql-common', 'libllvm14']) expect(packages).not.toContain(name);
    expect(packages).toContain('libc6');
  });

  test('redis config: user, port, healthcheck, command', async (ctx) => {
    if (!redis) return ctx.skip('apt cannot reach its mirrors');
    const { config } = await skopeoConfig(redis);
    expect(config.User).toBe('redis');
    expect(config.ExposedPorts).toEqual({ '6379/tcp': {} });
    expect(config.Cmd).toEqual(['redis-server', '/etc/redis/redis.conf']);
    expect(config.Healthcheck?.Test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  test('postgres config: user, entrypoint, PGDATA, PATH to the binaries, healthcheck', async (ctx) => {
    if (!postgres) return ctx.skip('apt cannot reach its mirrors');
    const { config } = await skopeoConfig(postgres);
    expect(config.User).toBe('postgres');
    expect(config.ExposedPorts).toEqual({ '5432/tcp': {} });
    expect(config.Entrypoint).toEqual(['docker-entrypoint.sh']);
    expect(config.Cmd).toEqual(['postgres']);
    expect(config.Env).toContain('PGDATA=/var/lib/postgresql/data');
    expect(config.Env?.find((e) => e.startsWith('PATH='))).toMatch(/^PATH=\/usr\/lib\/postgresql\/15\/bin:/);
    expect(config.Healthcheck?.Test[1]).toBe('pg_isready');
  });

  test('redis runs as user redis and answers PING on the host loopback', async (ctx) => {
    if (!redis) return ctx.skip('apt cannot reach its mirrors');
    const bundle = join(dir, 'redis');
    await umociUnpack(redis, bundle);
    const root = join(bundle, 'rootfs');
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toMatch(/^redis:x:999:999:.*:\/var\/lib\/redis:/m);
    expect((await stat(join(root, 'var/lib/redis'))).uid).toBe(999);
    await stat(join(root, 'usr/bin/redis-server'));
    // umoci turned User "redis" into a uid through the image's own /etc/passwd.
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: { user: { uid: number } } };
    expect(spec.process.user.uid).toBe(999);

    const port = await freePort();
    const id = `vtc-rootfs-redis-${process.pid}`;
    const remove = await runcStart(bundle, id, (cmd) => [...cmd, '--port', String(port), '--bind', '127.0.0.1']);
    try {
      const answer = await until('redis to answer', async () => {
        await assertRunning(id, bundle);
        return ping(port).catch(() => undefined);
      });
      expect(answer).toBe('+PONG\r\n');
      const cli = await runcExec(id, ['redis-cli', '-p', String(port), 'ping']);
      expect(cli.stdout).toBe('PONG');
      const pid1 = await runcExec(id, ['cat', '/proc/1/status'], '0');
      expect(pid1.stdout).toMatch(/^Uid:\s+999\s/m);
    } finally {
      await remove();
    }
  }, 120_000);

  test('postgres initializes its data dir and serves queries as user postgres, not root', async (ctx) => {
    if (!postgres) return ctx.skip('apt cannot reach its mirrors');
    const bundle = join(dir, 'postgres');
    await umociUnpack(postgres, bundle);
    const root = join(bundle, 'rootfs');
    expect(await readFile(join(root, 'etc/passwd'), 'utf8')).toMatch(/^postgres:x:999:999:/m);
    expect((await stat(join(root, 'var/lib/postgresql/data'))).uid).toBe(999);
    for (const bin of ['postgres', 'initdb', 'pg_isready', 'psql']) await stat(join(root, 'usr/lib/postgresql/15/bin', bin));

    const port = String(await freePort());
    const id = `vtc-rootfs-postgres-${process.pid}`;
    const remove = await runcStart(bundle, id, (cmd) => [...cmd, '-p', port, '-c', 'listen_addresses=127.0.0.1']);
    try {
      await until('pg_isready', async () => {
        await assertRunning(id, bundle);
        return (await runcExec(id, ['pg_isready', '-h', '127.0.0.1', '-p', port])).exitCode === 0 ? true : undefined;
      }, 60_000); // initdb first, on a busy 2-core machine
      const query = await runcExec(id, ['psql', '-h', '127.0.0.1', '-p', port, '-U', 'postgres', '-Atc', 'select current_user, version()']);
      expect(query.stdout).toMatch(/^postgres\|PostgreSQL 15\./);
      const pid1 = await runcExec(id, ['cat', '/proc/1/status'], '0');
      expect(pid1.stdout).toMatch(/^Uid:\s+999\s/m);
      expect(pid1.stdout).toMatch(/^Name:\s+postgres$/m);
      // The entrypoint's initdb ran: a cluster in PGDATA, open to TCP clients.
      expect((await runcExec(id, ['cat', '/var/lib/postgresql/data/PG_VERSION'])).stdout).toBe('15');
    } finally {
      await remove();
    }
  }, 120_000);

  test('the example recipe (memcached) runs as user memcache and answers', async (ctx) => {
    if (!example) return ctx.skip('apt cannot reach its mirrors');
    expect(example.layers[1]!.digest).toBe(redis?.layers[1]!.digest);
    const bundle = join(dir, 'example');
    await umociUnpack(example, bundle);
    const port = String(await freePort());
    const id = `vtc-rootfs-example-${process.pid}`;
    const remove = await runcStart(bundle, id, () => ['memcached', `--port=${port}`, '--listen=127.0.0.1', '--udp-port=0']);
    try {
      // busybox's nc, as the image's healthcheck uses it.
      const version = await until('memcached to answer', async () => {
        await assertRunning(id, bundle);
        const r = await runcExec(id, ['sh', '-c', `echo version | nc -w 1 127.0.0.1 ${port}`]);
        return r.stdout.startsWith('VERSION') ? r.stdout : undefined;
      });
      expect(version).toMatch(/^VERSION 1\./);
      expect((await runcExec(id, ['cat', '/proc/1/status'], '0')).stdout).toMatch(/^Uid:\s+999\s/m);
    } finally {
      await remove();
    }
  }, 120_000);
});
