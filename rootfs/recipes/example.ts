// A recipe to copy: memcached, as a template for your own service image.
//
//   cp rootfs/recipes/example.ts my-service.ts   # anywhere; imports below are relative
//   npx node rootfs/build.ts ./my-service.ts      # -> .cache/images/<name>
//
// 1. Start from the shared layers (busybox + debian): every image that does shares their blobs.
// 2. Name the Debian package(s) of your service; their dependencies come along, minus
//    what the lower layers already have and what `leaveOut` names.
// 3. Do what the package's maintainer scripts would have done (`apt-get source` or
//    `dpkg-deb -e x.deb` shows them): system users, directories they own, config.
// 4. Describe how to run it: command, user, ports, health check.
import { defineRecipe } from '../lib/recipe.ts';
import { busyboxLayer, debianLayer, SERVICE_PRUNE } from './layers.ts';

export default defineRecipe({
  name: 'example',
  layers: [
    busyboxLayer,
    debianLayer,
    {
      name: 'memcached',
      packages: ['memcached'],
      // Add packages your service depends on but never uses at run time, e.g. 'python3'
      // for a helper script you do not need. (MAINTAINER_ONLY in layers.ts is always left out.)
      leaveOut: [],
      // Globs relative to /, on top of the default prune (docs, man pages, translations).
      prune: [...SERVICE_PRUNE, 'usr/share/memcached', 'usr/bin/memcached-tool'],
      // memcached's postinst runs `adduser --system --group memcache`.
      users: [{ name: 'memcache', uid: 999, gid: 999, home: '/nonexistent', gecos: 'Memcached' }],
      groups: [{ name: 'memcache', gid: 999 }],
      dirs: [{ path: '/run/memcached', mode: 0o755, owner: 'memcache' }],
      // Config files, inline or read from a file next to the recipe, e.g.
      //   files: [{ path: '/etc/my.conf', content: 'port 1234\n' }, { path: '/entrypoint.sh', source: 'entrypoint.sh', mode: 0o755 }],
      files: [],
    },
  ],
  config: {
    // memcached reads no config file by itself (Debian's init script does); pass the flags.
    cmd: ['memcached', '--port=11211', '--listen=0.0.0.0', '--memory-limit=64', '--udp-port=0'],
    user: 'memcache',
    exposedPorts: ['11211/tcp'],
    // CMD-SHELL runs through /bin/sh: busybox's nc and grep are there.
    healthcheck: { test: ['CMD-SHELL', 'echo version | nc -w 1 127.0.0.1 11211 | grep -q VERSION'], intervalSeconds: 1, retries: 30 },
    labels: { 'org.opencontainers.image.title': 'example (memcached)' },
  },
});
