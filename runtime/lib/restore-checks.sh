# shellcheck shell=bash
# The checks a restore makes before it changes anything: the storage targets, the secrets
# against the backup's fingerprints, the database server and target. Each dies naming the
# cause and the fix, with nothing changed.
#
# Reads: id backup db edms_storage_dirs maintenance_db toast_compression
# Sets:  targets (the storage folders, resolved), secret_notes, db_exists, db_has_rows,
#        server_index_workers, and toast_compression cleared when the server lacks it.

check_storage_targets() {
  local count i dir
  count=$(info_get "$id" storage_count || echo 0)
  ((count == ${#edms_storage_dirs[@]})) ||
    die "backup $id holds $count storage folder(s) but EDMS_BACKUP_STORAGE_DIRS names ${#edms_storage_dirs[@]}: configure the same folders, in the same order, as when it was taken"
  for dir in "${edms_storage_dirs[@]}"; do
    [[ -d "$dir" ]] || die "storage folder $dir does not exist: create it (empty) or mount its volume there"
  done
  resolve_storage_dirs
  targets=("${storage_real[@]}")
  for ((i = 0; i < count; i++)); do
    [[ -w "${targets[i]}" ]] || die "storage folder ${edms_storage_dirs[i]} is not writable by uid $(id -u): mount it read-write for the restore"
  done
}

# Secrets recorded by the backup (salted fingerprints) against this environment's
# EDMS_SECRET_* values: a must-match mismatch refuses, others are reported.
check_secrets() {
  local name salt fingerprint var must allow
  secret_notes=()
  local -a must_match allowed
  IFS=', ' read -r -a must_match <<<"${EDMS_BACKUP_SECRETS_MUST_MATCH-ENCRYPTION_KEY}"
  IFS=', ' read -r -a allowed <<<"${EDMS_BACKUP_ALLOW_SECRET_MISMATCH:-}"
  [[ -f "$backup/meta/secrets.tsv" ]] || return 0
  while IFS=$'\t' read -r name salt fingerprint; do
    [[ -n "$name" ]] || continue
    var="EDMS_SECRET_$name"
    if [[ -z "${!var+set}" ]]; then
      secret_notes+=("$name: not given to this restore, not checked")
      continue
    fi
    [[ "$(secret_fingerprint "$salt" "${!var}")" == "$fingerprint" ]] && continue
    must="" allow=""
    in_list "$name" "${must_match[@]}" && must=yes
    in_list "$name" "${allowed[@]}" && allow=yes
    if [[ -n "$must" && -z "$allow" ]]; then
      die "secret $name differs from the one backup $id was taken with: $(secret_effect "$name"); restore with the backup's $name (pulumi config cp / copy-config-from), or allow it with EDMS_BACKUP_ALLOW_SECRET_MISMATCH=$name; nothing was changed"
    fi
    secret_notes+=("$name differs from the backup's: $(secret_effect "$name")")
  done <"$backup/meta/secrets.tsv"
  local note
  for note in "${secret_notes[@]}"; do say "secret $note"; done
}

in_list() {
  local item=$1
  shift
  local each
  for each in "$@"; do [[ "$each" == "$item" ]] && return 0; done
  return 1
}

secret_effect() {
  case "$1" in
    SECRET_KEY) echo "sessions, CSRF tokens and tokens signed with it become invalid, so users must log in again; their passwords still work" ;;
    ENCRYPTION_KEY) echo "files and fields encrypted with the old key will not decrypt" ;;
    JWT_SECRET_KEY) echo "JWT tokens issued before become invalid, so users must log in again" ;;
    *PASSWORD* | *DATABASE_URL*) echo "the application must be configured with the new value to connect" ;;
    *) echo "whatever was signed or encrypted with the old value will not verify or decrypt" ;;
  esac
}

check_database_target() {
  local out dump_num restore_major
  # One round trip: the server answers, says whether the target database exists, which
  # TOAST compression methods it has (PostgreSQL 14 and later) and how many parallel
  # workers an index build may have.
  if ! out=$(PGDATABASE=$maintenance_db PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10} psql_run -v name="$db" 2>&1 <<'SQL'
SELECT (SELECT count(*) FROM pg_database WHERE datname = :'name') || ' ' ||
       coalesce((SELECT array_to_string(enumvals, ',') FROM pg_settings WHERE name = 'default_toast_compression'), 'none') || ' ' ||
       current_setting('max_parallel_maintenance_workers')
SQL
  ); then
    die "$(explain_pg_error "$out")"
  fi
  read -r db_exists server_toast_methods server_index_workers <<<"$out"
  # A method the server lacks (built without lz4, or older than 14) is not asked for.
  [[ ",$server_toast_methods," == *",$toast_compression,"* ]] || toast_compression=""
  restore_major=$(client_major pg_restore)
  need_jq
  dump_num=$(jq -r '.database.serverVersionNum' -- "$backup/manifest.json" 2>/dev/null) || dump_num=""
  [[ "$dump_num" =~ ^[0-9]+$ ]] ||
    die "cannot read the PostgreSQL version backup $id was taken from (manifest.json, database.serverVersionNum): run 'edms-backup verify $id'"
  ((restore_major >= dump_num / 10000)) ||
    die "pg_restore $restore_major is older than the PostgreSQL $((dump_num / 10000)) the backup was taken from: use the image postgres:$((dump_num / 10000))-bookworm or newer"
  # A database whose tables hold no row, as on a new instance whose application has
  # created its schema, has nothing to keep. One row is looked for in each table; a table
  # this user cannot read, or one locked or slow to answer, counts as holding rows.
  db_has_rows=0
  if ((db_exists)); then
    db_has_rows=$(psql_run 2>/dev/null <<SQL
SET lock_timeout = '2s';
SET statement_timeout = '10s';
SELECT 'SELECT count(*) FROM (' || coalesce(string_agg(format('(SELECT FROM ONLY %I.%I LIMIT 1)', n.nspname, c.relname), ' UNION ALL '), 'SELECT WHERE false')
       || ' UNION ALL (SELECT FROM pg_largeobject_metadata LIMIT 1)) r'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE $EDMS_COUNTED_TABLES \\gexec
SQL
    ) || db_has_rows=1
    [[ "$db_has_rows" =~ ^[0-9]+$ ]] || db_has_rows=1
  fi
}

# target_is_empty: no row in the database and nothing in the storage folders.
target_is_empty() {
  local target
  ((db_has_rows == 0)) || return 1
  for target in "${targets[@]}"; do
    [[ -z "$(find "$target" -mindepth 1 -maxdepth 1 ! -name 'lost+found' -print -quit)" ]] || return 1
  done
}
