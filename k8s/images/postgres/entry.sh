#!/bin/bash
# iotpipe/postgres's entry (see its Dockerfile): initdb on first start, then the server.
set -euo pipefail
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD (from a Secret)}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres-entry: initialising $PGDATA"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=scram-sha-256 \
    --auth-host=scram-sha-256 --encoding=UTF8 --no-instructions >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -w -o "-c listen_addresses=''" start >/dev/null
    PGPASSWORD="$POSTGRES_PASSWORD" createdb --username="$user" "$db"
    pg_ctl -w stop >/dev/null
  fi
fi
exec postgres -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
