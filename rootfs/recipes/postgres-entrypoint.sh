#!/bin/sh
# Entrypoint of the postgres image (rootfs/recipes/postgres.ts).
# On first start with an empty $PGDATA: initdb, with trust auth (local tests) or,
# when POSTGRES_PASSWORD is set, scram-sha-256 for TCP clients; listen on every
# address; create $POSTGRES_DB. Then exec the command (postgres) as the postgres user.
set -eu

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

# `image -c fsync=off` means `postgres -c fsync=off`.
if [ "${1#-}" != "$1" ]; then set -- postgres "$@"; fi

# Started as root (User overridden): own the data dir, then drop to postgres.
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  # busybox su as root asks no password; -p keeps PGDATA and friends; after `--`
  # the server's own options (-p 5433, -c x=y) are not taken for su's.
  exec su -p -s /bin/sh -c 'exec "$0" "$@"' postgres -- "$0" "$@"
fi

if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  auth="${POSTGRES_HOST_AUTH_METHOD:-}"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    : "${auth:=scram-sha-256}"
  else
    initdb --username="$POSTGRES_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    : "${auth:=trust}"
  fi
  printf '\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"
  # /run may be a fresh tmpfs the postgres user cannot write to: /tmp is the fallback socket dir.
  # jit off: the image leaves LLVM out (100 MB), so there is no JIT provider to load.
  printf "\nlisten_addresses = '*'\nunix_socket_directories = '/run/postgresql,/tmp'\njit = off\n" >> "$PGDATA/postgresql.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    echo "CREATE DATABASE \"$POSTGRES_DB\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  echo "entrypoint: initialized $PGDATA (user $POSTGRES_USER, host auth $auth)"
fi

exec "$@"
