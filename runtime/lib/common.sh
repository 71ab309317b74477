# shellcheck shell=bash
# Shared helpers of the edms-backup subcommands; sourced, never run.
#
# Every subcommand reads its configuration from the environment (see README, "Runtime
# contract"), reports progress on stderr, and fails with one line on stderr that names
# the cause and the fix.

EDMS_BACKUP_ID_PATTERN='^[0-9]{8}_[0-9]{6}$'

# The subcommand's name, for messages ("edms-backup backup: ...").
edms_command=${edms_command:-edms-backup}

die() {
  edms_last_error=$*
  printf '%s: %s\n' "$edms_command" "$*" >&2
  exit 1
}

say() {
  printf '%s: %s\n' "$edms_command" "$*" >&2
}

now_utc() {
  date -u +%Y-%m-%dT%H:%M:%SZ
}

# Reads and checks the settings every subcommand shares; sets the edms_* globals.
load_config() {
  [[ -n "${EDMS_BACKUP_DIR:-}" ]] ||
    die "EDMS_BACKUP_DIR is not set: set it to the folder that holds the backups"
  edms_dir=${EDMS_BACKUP_DIR%/}
  [[ -n "$edms_dir" ]] || edms_dir=/
  edms_retention_days=${EDMS_BACKUP_RETENTION_DAYS:-7}
  edms_keep_last=${EDMS_BACKUP_KEEP_LAST:-3}
  edms_schedule=${EDMS_BACKUP_SCHEDULE:-0 2 * * *}
  edms_jobs=${EDMS_BACKUP_JOBS:-$(nproc 2>/dev/null || echo 2)}
  require_count EDMS_BACKUP_RETENTION_DAYS "$edms_retention_days" 0
  require_count EDMS_BACKUP_KEEP_LAST "$edms_keep_last" 1
  require_count EDMS_BACKUP_JOBS "$edms_jobs" 1
  export TZ=${TZ:-UTC}

  edms_storage_dirs=()
  split_paths EDMS_BACKUP_STORAGE_DIRS edms_storage_dirs
  edms_config_paths=()
  split_paths EDMS_BACKUP_CONFIG_PATHS edms_config_paths
  # Config paths are the host's paths; in a container they are mounted below this root.
  edms_config_root=${EDMS_BACKUP_CONFIG_ROOT:-/}
  bypass_pg_wrapper
}

# Debian's psql, pg_dump and pg_restore (/usr/bin, also first on the postgres image's
# PATH) are a Perl wrapper that picks a version on every call: 30 ms each, measured, and a
# restore makes a dozen calls, most of them one after another. For a server that is not
# one of the machine's own clusters it picks the newest client installed, so that
# client's folder goes into PATH just before the wrapper's: whatever comes earlier in
# PATH still comes first.
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

require_count() {
  local name=$1 value=$2 min=$3
  [[ "$value" =~ ^[0-9]+$ ]] && ((10#$value >= min)) ||
    die "$name='$value' is not a whole number >= $min: set it to one (e.g. $name=$((min > 7 ? min : 7)))"
}

# split_paths VAR ARRAY: the colon-separated paths in $VAR, empty items skipped.
split_paths() {
  local -n into=$2
  local item
  local -a items=()
  IFS=: read -r -a items <<<"${!1:-}"
  for item in "${items[@]}"; do
    [[ -n "$item" ]] && into+=("$item")
  done
  return 0
}

is_backup_id() {
  [[ "$1" =~ $EDMS_BACKUP_ID_PATTERN ]] || return 1
  id_epoch "$1" >/dev/null 2>&1
}

# id_epoch ID: seconds since the epoch of a backup id (its UTC timestamp).
id_epoch() {
  local id=$1
  date -u -d "${id:0:4}-${id:4:2}-${id:6:2} ${id:9:2}:${id:11:2}:${id:13:2}" +%s
}

# Complete backups in the backup folder, newest first, one id a line. A backup is
# complete once its folder carries its id as name; the temporary folders it is built
# in are hidden (".tmp-*") and never listed.
backup_ids() {
  local path name
  local -a ids=()
  for path in "$edms_dir"/*/; do
    name=$(basename "$path")
    [[ "$name" =~ $EDMS_BACKUP_ID_PATTERN && -f "$path/manifest.json" && -f "$path/SHA256SUMS" ]] &&
      ids+=("$name")
  done
  ((${#ids[@]})) || return 0
  printf '%s\n' "${ids[@]}" | sort -r
}

# require_backup ID: dies unless ID names a complete backup.
require_backup() {
  local id=$1
  is_backup_id "$id" || die "'$id' is not a backup id (YYYYMMDD_HHMMSS, UTC): run 'edms-backup list' for the ids"
  [[ -f "$edms_dir/$id/manifest.json" && -f "$edms_dir/$id/SHA256SUMS" ]] ||
    die "no complete backup $id in $edms_dir: run 'edms-backup list' for the ids"
}

# kv_get FILE KEY: the value of KEY in a file of KEY=VALUE lines; fails when absent.
kv_get() {
  local key value
  [[ -f "$1" ]] || return 1
  while IFS='=' read -r key value; do
    if [[ "$key" == "$2" ]]; then
      printf '%s\n' "$value"
      return 0
    fi
  done <"$1"
  return 1
}

# info_get ID KEY: a value of the backup's meta/info.
info_get() {
  kv_get "$edms_dir/$1/meta/info" "$2"
}

# take_lock [WAIT_SECONDS]: one backup, prune or restore at a time per backup folder,
# waiting up to WAIT_SECONDS (default 0) for the one that runs. The lock is held by an
# open file descriptor and so released by the kernel however the process ends.
take_lock() {
  [[ -n "${EDMS_BACKUP_LOCK_HELD:-}" ]] && return 0
  local wait=${1:-0}
  exec {edms_lock_fd}>>"$edms_dir/.lock" ||
    die "cannot create $edms_dir/.lock: make $edms_dir writable by uid $(id -u)"
  if ! flock -n "$edms_lock_fd"; then
    ((wait > 0)) && say "waiting up to ${wait}s for the running backup, prune or restore to finish"
    flock -w "$wait" "$edms_lock_fd" ||
      die "another backup, prune or restore is running on $edms_dir (lock $edms_dir/.lock held): wait for it to finish"
  fi
  export EDMS_BACKUP_LOCK_HELD=1
}

# Removes what killed runs left behind: half-built backups and half-deleted ones.
# Call with the lock held.
clean_leftovers() {
  local path
  for path in "$edms_dir"/.tmp-* "$edms_dir"/.deleting-*; do
    [[ -d "$path" ]] || continue
    say "removing leftover $(basename "$path") of an interrupted run"
    rm -rf -- "$path"
  done
}

# delete_backup ID: renamed out of sight first, so a half-deleted backup is never listed.
delete_backup() {
  local id=$1
  mv -- "$edms_dir/$id" "$edms_dir/.deleting-$id"
  rm -rf -- "$edms_dir/.deleting-$id"
}

# --- status file: last success and failure, read by `status` -----------------------

status_file() {
  printf '%s/.status\n' "$edms_dir"
}

# status_set KEY VALUE...: updates the status file atomically.
status_set() {
  local file tmp key value
  file=$(status_file)
  tmp="$file.$$"
  declare -A kv=()
  if [[ -f "$file" ]]; then
    while IFS='=' read -r key value; do
      [[ -n "$key" ]] && kv[$key]=$value
    done <"$file"
  fi
  while (($# >= 2)); do
    kv[$1]=${2//$'\n'/ }
    shift 2
  done
  for key in "${!kv[@]}"; do
    printf '%s=%s\n' "$key" "${kv[$key]}"
  done | sort >"$tmp" && mv -f -- "$tmp" "$file"
}

status_get() {
  kv_get "$(status_file)" "$1"
}

# --- PostgreSQL ------------------------------------------------------------------

# The tables whose rows are counted: every ordinary table outside the system schemas
# (c: pg_class, n: pg_namespace).
EDMS_COUNTED_TABLES="c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"

# count_tables_sql CONDITION: SQL that counts the rows of every table for which the SQL
# CONDITION holds (true: all; c: pg_class, n: pg_namespace) into the temporary table
# edms_counts (t = "schema.table", n = rows): backup records them, restore checks them.
# Without JIT: on a big table its compilation costs more than it saves in one pass.
count_tables_sql() {
  cat <<SQL
SET jit = off;
SELECT 'CREATE TEMP TABLE edms_counts AS ' || coalesce(string_agg(
         format('SELECT %L::text AS t, count(*)::bigint AS n FROM ONLY %I.%I',
                n.nspname || '.' || c.relname, n.nspname, c.relname), ' UNION ALL '),
         'SELECT NULL::text AS t, NULL::bigint AS n WHERE false')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE $EDMS_COUNTED_TABLES AND ($1) \\gexec
SQL
}

psql_run() {
  psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
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
    *"could not translate host name"* | *"Connection refused"* | *"could not connect"* | *"timeout expired"* | *"No route to host"* | *"Network is unreachable"*)
      printf 'database unreachable at %s (%s): check PGHOST / PGPORT and that the database container runs on the same network' "$target" "$(first_error_line "$err")" ;;
    *)
      printf 'PostgreSQL at %s: %s' "$target" "$(first_error_line "$err")" ;;
  esac
}

first_error_line() {
  local line
  while IFS= read -r line; do
    line=${line#psql: }
    line=${line#pg_dump: }
    line=${line#error: }
    if [[ -n "$line" ]]; then
      printf '%s' "$line"
      return
    fi
  done <<<"$1"
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

# secret_fingerprint SALT VALUE: what a backup records of a secret, and restore compares.
secret_fingerprint() {
  printf '%s:%s' "$1" "$2" | sha256sum | cut -d' ' -f1
}

# --- output helpers ------------------------------------------------------------------

# json_str STRING: STRING as a JSON string literal.
json_str() {
  local s=$1 out='' c i code
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  if [[ "$s" =~ [[:cntrl:]] ]]; then
    for ((i = 0; i < ${#s}; i++)); do
      c=${s:i:1}
      if [[ "$c" =~ [[:cntrl:]] ]]; then
        printf -v code '%d' "'$c"
        printf -v c '\\u%04x' "$code"
      fi
      out+=$c
    done
    s=$out
  fi
  printf '"%s"' "$s"
}

human_bytes() {
  local bytes=$1 unit=B value
  value=$bytes
  for unit in B KiB MiB GiB TiB; do
    ((value < 10240)) && break
    value=$((value / 1024))
  done
  [[ "$unit" == B ]] && { printf '%d B' "$bytes"; return; }
  printf '%d %s' "$value" "$unit"
}

# sums_line HASH NAME: one line of SHA256SUMS, escaped as sha256sum writes it for names
# with a backslash, newline or carriage return, so `sha256sum -c` reads it back.
sums_line() {
  local hash=$1 name=$2
  if [[ "$name" == *[$'\\\n\r']* ]]; then
    name=${name//\\/\\\\}
    name=${name//$'\n'/\\n}
    name=${name//$'\r'/\\r}
    printf '\\%s  %s\n' "$hash" "$name"
  else
    printf '%s  %s\n' "$hash" "$name"
  fi
}
