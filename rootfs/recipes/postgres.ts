// PostgreSQL 15 from Debian bookworm, running as the postgres user. The entrypoint
// initializes an empty $PGDATA on first start (trust auth, or POSTGRES_PASSWORD).
import { defineRecipe } from '../lib/recipe.ts';
import { DEFAULT_PATH } from '../lib/oci.ts';
import { busyboxLayer, debianLayer, SERVICE_PRUNE } from './layers.ts';

const BIN = '/usr/lib/postgresql/15/bin';
// Debian points these at its perl pg_wrapper (postgresql-client-common); here they point at the binaries.
const CLIENTS = ['psql', 'pg_isready', 'pg_dump', 'pg_dumpall', 'pg_restore', 'createdb', 'dropdb', 'createuser', 'dropuser'];

export default defineRecipe({
  name: 'postgres',
  layers: [
    busyboxLayer,
    debianLayer,
    {
      name: 'postgres',
      packages: ['postgresql-15'],
      leaveOut: [
        // perl wrappers and cluster tooling (pg_ctlcluster, pg_wrapper): we run the binaries directly.
        'postgresql-common', 'postgresql-client-common', 'libjson-perl',
        // LLVM for JIT: 100 MB; without its provider library postgres simply runs without JIT.
        'libllvm14', 'libz3-4',
      ],
      prune: [...SERVICE_PRUNE, 'usr/lib/postgresql/15/lib/llvmjit*', 'usr/lib/postgresql/15/lib/bitcode'],
      // What postgresql-common's postinst makes.
      users: [{ name: 'postgres', uid: 999, gid: 999, home: '/var/lib/postgresql', shell: '/bin/sh', gecos: 'PostgreSQL administrator' }],
      groups: [{ name: 'postgres', gid: 999 }],
      dirs: [
        { path: '/var/lib/postgresql', mode: 0o755, owner: 'postgres' },
        { path: '/var/lib/postgresql/data', mode: 0o700, owner: 'postgres' },
        { path: '/run/postgresql', mode: 0o2775, owner: 'postgres' },
      ],
      files: [{ path: '/usr/local/bin/docker-entrypoint.sh', source: 'postgres-entrypoint.sh', mode: 0o755 }],
      symlinks: CLIENTS.map((name) => ({ path: `/usr/bin/${name}`, target: `../lib/postgresql/15/bin/${name}` })),
    },
  ],
  config: {
    entrypoint: ['docker-entrypoint.sh'],
    cmd: ['postgres'],
    user: 'postgres',
    workingDir: '/var/lib/postgresql',
    env: { PATH: `${BIN}:${DEFAULT_PATH}`, PGDATA: '/var/lib/postgresql/data', LANG: 'C.UTF-8' },
    exposedPorts: ['5432/tcp'],
    // SIGINT is postgres' "fast shutdown": clients are disconnected, no waiting.
    stopSignal: 'SIGINT',
    healthcheck: { test: ['CMD', 'pg_isready', '-h', '127.0.0.1', '-p', '5432'], intervalSeconds: 1, timeoutSeconds: 3, startPeriodSeconds: 2, retries: 30 },
    labels: { 'org.opencontainers.image.title': 'postgres', 'org.opencontainers.image.description': 'PostgreSQL 15 from Debian bookworm' },
  },
});
