#!/usr/bin/env bash
# Entrypoint of the test image: behaves like the official postgres image's for the
# variables the tests use (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA) and for
# the *.sql and *.sh scripts of /docker-entrypoint-initdb.d (the demo stack's data and
# replication role).
# Any command other than "postgres" runs as given, so the image doubles as the backup image.
set -euo pipefail

if [[ "${1:-postgres}" != postgres ]]; then
  exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
  echo "entrypoint: POSTGRES_PASSWORD is not set; set it as with the official image" >&2
  exit 1
fi

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  runuser -u postgres -- initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  runuser -u postgres -- pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [[ "$POSTGRES_DB" != postgres ]]; then
    runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
      -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  # As the official image (docker-entrypoint.sh, docker_process_init_files): the files of
  # /docker-entrypoint-initdb.d in order on first start, as the postgres user with PGDATA and
  # POSTGRES_* set: *.sh run when executable, sourced when not; *.sql through psql.
  export PGDATA POSTGRES_USER POSTGRES_DB POSTGRES_PASSWORD
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sh)
        if [[ -x "$script" ]]; then
          runuser -u postgres -- "$script"
        else
          # shellcheck disable=SC2016 # $1 is the inner shell's
          runuser -u postgres -- bash -c '. "$1"' sourced "$script"
        fi
        ;;
      *.sql) runuser -u postgres -- psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$script" >/dev/null ;;
    esac
  done
  runuser -u postgres -- pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi

shift
# docker stop sends SIGTERM, which PostgreSQL treats as a "smart" shutdown that waits for
# clients; the official image sets STOPSIGNAL SIGINT (fast shutdown), which `docker import`
# cannot set, so the entrypoint forwards SIGTERM as SIGINT.
runuser -u postgres -- postgres -D "$PGDATA" -c listen_addresses='*' "$@" &
server=$!
trap 'kill -INT "$server" 2>/dev/null' TERM INT
while kill -0 "$server" 2>/dev/null; do
  wait "$server" || true
done
wait "$server"
