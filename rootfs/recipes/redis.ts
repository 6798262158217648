// redis-server from Debian, listening on every address of the container, no
// persistence (a test's data dies with its container), running as user redis.
import { defineRecipe } from '../lib/recipe.ts';
import { busyboxLayer, debianLayer, SERVICE_PRUNE } from './layers.ts';

const REDIS_CONF = `# Written by rootfs/recipes/redis.ts. Override on the command line:
#   redis-server /etc/redis/redis.conf --port 7000
bind 0.0.0.0 -::
port 6379
protected-mode no
daemonize no
supervised no
logfile ""
dir /var/lib/redis
save ""
appendonly no
`;

export default defineRecipe({
  name: 'redis',
  layers: [
    busyboxLayer,
    debianLayer,
    {
      name: 'redis',
      packages: ['redis-server'],
      prune: [...SERVICE_PRUNE, 'etc/redis/*'],
      // What the package's postinst does with adduser --system --group.
      users: [{ name: 'redis', uid: 999, gid: 999, home: '/var/lib/redis', gecos: 'redis server' }],
      groups: [{ name: 'redis', gid: 999 }],
      dirs: [
        { path: '/var/lib/redis', mode: 0o750, owner: 'redis' },
        { path: '/var/log/redis', mode: 0o2750, owner: 'redis' },
        { path: '/run/redis', mode: 0o2755, owner: 'redis' },
      ],
      files: [{ path: '/etc/redis/redis.conf', content: REDIS_CONF }],
    },
  ],
  config: {
    cmd: ['redis-server', '/etc/redis/redis.conf'],
    user: 'redis',
    workingDir: '/var/lib/redis',
    exposedPorts: ['6379/tcp'],
    stopSignal: 'SIGTERM',
    healthcheck: { test: ['CMD', 'redis-cli', 'ping'], intervalSeconds: 1, timeoutSeconds: 3, startPeriodSeconds: 1, retries: 30 },
    labels: { 'org.opencontainers.image.title': 'redis', 'org.opencontainers.image.description': 'redis-server from Debian bookworm, no persistence' },
  },
});
