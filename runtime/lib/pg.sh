# shellcheck shell=bash
# PostgreSQL helpers shared by the commands: psql, connection errors, versions, row counts.

# Debian's psql, pg_dump and pg_restore (/usr/bin, also first on the postgres image's
# PATH) are a Perl wrapper that picks a version on every call (docs/performance.md, "psql
# without Debian's wrapper"). For a server that is not one of the machine's own clusters
# it picks the newest client installed, so that client's folder goes into PATH just before
# the wrapper's: whatever comes earlier in PATH still comes first.
bypass_pg_wrapper() {
  local psql_path wrapper_dir dir major newest="" best=0 entry new_path=""
  psql_path=$(command -v psql) || return 0
  [[ "$(readlink -f -- "$psql_path")" == */pg_wrapper ]] || return 0
  wrapper_dir=$(dirname -- "$psql_path")
  for dir in /usr/lib/postgresql/*/bin; do
    major=${dir#/usr/lib/postgresql/}
    major=${major%/bin}
    if [[ "$major" =~ ^[0-9]+$ && -x "$dir/psql" && -x "$dir/pg_dump" && -x "$dir/pg_restore" ]] && ((major > best)); then
      best=$major newest=$dir
    fi
  done
  [[ -n "$newest" ]] || return 0
  local -a entries=()
  IFS=: read -r -a entries <<<"$PATH"
  for entry in "${entries[@]}"; do
    [[ "$entry" == "$wrapper_dir" ]] && new_path+="$newest:"
    new_path+="$entry:"
  done
  PATH=${new_path%:}
}

# The tables whose rows are counted: every ordinary table outside the system schemas
# (c: pg_class, n: pg_namespace).
EDMS_COUNTED_TABLES="c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"

# A table's key in the manifest's row counts: schema and name quoted where they need it,
# so that "x.y".z and x."y.z" stay two tables. Backups before meta/info's table_keys=quoted
# joined the bare names with a dot; their restores compare with that key.
EDMS_TABLE_KEY="quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
EDMS_TABLE_KEY_LEGACY="n.nspname || '.' || c.relname"

# count_tables_sql CONDITION [KEY]: SQL that counts the rows of every table for which the
# SQL CONDITION holds (true: all; c: pg_class, n: pg_namespace) into the temporary table
# edms_counts (t = the table's key, KEY or EDMS_TABLE_KEY; n = rows): backup records them,
# restore checks them. Without JIT: on a big table its compilation costs more than it saves
# in one pass.
count_tables_sql() {
  cat <<SQL
SET jit = off;
SELECT 'CREATE TEMP TABLE edms_counts AS ' || coalesce(string_agg(
         format('SELECT %L::text AS t, count(*)::bigint AS n FROM ONLY %I.%I',
                ${2:-$EDMS_TABLE_KEY}, n.nspname, c.relname), ' UNION ALL '),
         'SELECT NULL::text AS t, NULL::bigint AS n WHERE false')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE $EDMS_COUNTED_TABLES AND ($1) \\gexec
SQL
}

# psql_maintenance: psql on the maintenance database (CREATE, DROP and RENAME of others).
psql_maintenance() {
  PGDATABASE=${maintenance_db:-${EDMS_BACKUP_MAINTENANCE_DB:-postgres}} psql_run "$@"
}

psql_run() {
  psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# conninfo_dbname NAME: a --dbname argument that is NAME itself: a bare name holding "="
# would be read as a connection string ("invalid connection option").
conninfo_dbname() {
  local name=${1//\\/\\\\}
  printf "dbname='%s'" "${name//\'/\\\'}"
}

pg_target() {
  printf '%s@%s:%s/%s' "${PGUSER:-$(id -un)}" "${PGHOST:-localhost}" "${PGPORT:-5432}" "${PGDATABASE:-${PGUSER:-}}"
}

# explain_pg_error STDERR: one line naming the cause of a failed connection, and the fix.
explain_pg_error() {
  local err=$1 target
  target=$(pg_target)
  case "$err" in
    *"password authentication failed"* | *"no password supplied"* | *"pg_hba.conf"*)
      printf 'wrong password or not allowed for %s: set PGPASSWORD (stack config dbPassword) to the password of that user' "$target" ;;
    *"does not exist"*)
      printf 'PostgreSQL at %s: %s: set PGDATABASE / PGUSER to an existing database and user' "$target" "$(first_error_line "$err")" ;;
    *"server closed the connection"* | *"terminating connection"* | *"could not receive data"* | *"the database system is shutting down"* | *"the database system is starting up"*)
      printf 'lost the connection to PostgreSQL at %s (server restarted or stopped): run it again once the server is up' "$target" ;;
    *"could not translate host name"* | *"Connection refused"* | *"could not connect"* | *"timeout expired"* | *"No route to host"* | *"Network is unreachable"*)
      printf 'database unreachable at %s (%s): check PGHOST / PGPORT and that the database container runs on the same network' "$target" "$(first_error_line "$err")" ;;
    *)
      printf 'PostgreSQL at %s: %s' "$target" "$(first_error_line "$err")" ;;
  esac
}

# server_version_num: the server's version number (e.g. 150004); dies naming the cause.
server_version_num() {
  local out
  if ! out=$(PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10} psql_run -c 'SHOW server_version_num' 2>&1); then
    die "$(explain_pg_error "$out")"
  fi
  printf '%s\n' "$out"
}

# client_major TOOL: the major version of pg_dump or pg_restore.
client_major() {
  local version
  version=$("$1" --version) || die "$1 not found: use an image with the PostgreSQL client (postgres:<major>-bookworm)"
  [[ "$version" =~ \(PostgreSQL\)\ ([0-9]+) ]] || die "cannot read the version of $1 ('$version'): use the PostgreSQL client of postgres:<major>-bookworm"
  printf '%s\n' "${BASH_REMATCH[1]}"
}

