# shellcheck shell=bash
# The record of what this tool made: EDMS_BACKUP_DIR/.made. A database or folder is dropped,
# removed or renamed only when a line here says this backup folder's runs made it, never
# because of its name: another role's edms_drill_reports, or the staging database of a
# restore run from another backup folder against the same server, is left alone.
#
# One line a thing, tab-separated: KIND SERVER OID NAME
#   database:staging database:drill database:previous   SERVER is the cluster's
#       system_identifier, OID the database's ("-" between the record and CREATE DATABASE
#       answering: the name was free just before, so a database of that name is ours)
#   folder:build folder:deleting folder:drill           NAME relative to EDMS_BACKUP_DIR
#   folder:stage                                        NAME the first 16 hex digits of
#       the SHA-256 of the storage folder's path (a path may hold any byte but NUL)
# Written with the lock held, atomically (beside, synced, renamed).
#
# Reads: edms_dir maintenance_db (psql_maintenance)
# Sets:  edms_server_id (server_id, once per run)
edms_server_id=""

made_file() {
  printf '%s/.made\n' "$edms_dir"
}

# made_awk PROGRAM KIND SERVER OID NAME [NAMES] [FILE...]: awk over the record's lines, with
# k s o n (and names, tab-separated) set from the arguments through the environment: awk's
# -v would read escapes in them (a backslash in a database name).
made_awk() {
  local program=$1
  MADE_K=$2 MADE_S=$3 MADE_O=$4 MADE_N=$5 MADE_NAMES=${6:-} awk -F '\t' -v OFS='\t' \
    'BEGIN { k = ENVIRON["MADE_K"]; s = ENVIRON["MADE_S"]; o = ENVIRON["MADE_O"]; n = ENVIRON["MADE_N"]; names = ENVIRON["MADE_NAMES"] }
     '"$program" "${@:7}"
}

# made_rewrite PROGRAM KIND SERVER OID NAME [NAMES]: the record, filtered through
# made_awk, put in place; one writer at a time (a base backup writes it without the
# backups' lock): a lock on the backup folder itself, which leaves no file behind.
made_rewrite() {
  local file tmp fd rc=0
  file=$(made_file)
  { exec {fd}<"$edms_dir"; } 2>/dev/null || fd=""
  [[ -z "$fd" ]] || flock -w 60 "$fd" || true
  made_rewrite_locked "$file" "$@" || rc=$?
  [[ -z "$fd" ]] || exec {fd}<&-
  return "$rc"
}

made_rewrite_locked() {
  local file=$1 tmp
  shift
  tmp="$file.$$"
  { [[ ! -f "$file" ]] || cat -- "$file"; } | (umask 077 && made_awk "$@" >"$tmp") || { rm -f -- "$tmp"; return 1; }
  if [[ -s "$tmp" ]]; then
    sync -- "$tmp" 2>/dev/null || sync
    mv -f -- "$tmp" "$file"
  else
    rm -f -- "$tmp" "$file" # nothing on record: no file
  fi
  sync -- "$edms_dir" 2>/dev/null || true
}

# made_set: an awk BEGIN block that makes the array listed of names (tab-separated) and m
# their count.
made_set='BEGIN { m = split(names, item, "\t") - 1; for (i = 1; i <= m; i++) listed[item[i]] = 1 }'

# made_add KIND SERVER OID NAME: one thing made (a record of it replaced).
made_add() {
  # shellcheck disable=SC2016 # awk's fields
  made_rewrite '!($1 == k && $2 == s && $4 == n) { print } END { print k, s, o, n }' "$1" "$2" "$3" "$4"
}

# made_forget KIND SERVER NAME...: removed, or never made (in one write, and none when the
# file holds no such record).
made_forget() {
  local kind=$1 server=$2 file names
  shift 2
  file=$(made_file)
  [[ -f "$file" ]] || return 0
  names=$(printf '%s\t' "$@")
  # shellcheck disable=SC2016 # awk's fields
  made_awk "$made_set"' $1 == k && $2 == s && $4 in listed { found = 1; exit } END { exit !found }' "$kind" "$server" - - "$names" "$file" || return 0
  # shellcheck disable=SC2016 # awk's fields
  made_rewrite "$made_set"' !($1 == k && $2 == s && $4 in listed)' "$kind" "$server" - - "$names"
}

# made_list KIND [SERVER]: "OID<TAB>NAME" of each thing of KIND (on SERVER).
made_list() {
  local file
  file=$(made_file)
  [[ -f "$file" ]] || return 0
  # shellcheck disable=SC2016 # awk's fields
  made_awk '$1 == k && $2 == s { print $3, $4 }' "$1" "${2:--}" - - "" "$file"
}

# made_has KIND SERVER NAME: whether a record says so; prints its OID.
made_has() {
  local oid name
  while IFS=$'\t' read -r oid name; do
    [[ "$name" == "$3" ]] && { printf '%s\n' "$oid"; return 0; }
  done < <(made_list "$1" "$2")
  return 1
}

# --- folders -------------------------------------------------------------------------

# made_folder KIND NAME...: recorded before mkdir (a record of a folder never made is
# harmless), in one write.
made_folder() {
  local kind=$1
  shift
  # shellcheck disable=SC2016 # awk's fields
  made_rewrite "$made_set"' !($1 == k && $4 in listed) { print } END { for (i = 1; i <= m; i++) print k, "-", "-", item[i] }' \
    "folder:$kind" - - - "$(printf '%s\t' "$@")"
}

folder_made() {
  made_has "folder:$1" - "$2" >/dev/null
}

# unmade_folder KIND NAME...: removed (their records).
unmade_folder() {
  local kind=$1
  shift
  made_forget "folder:$kind" - "$@"
}

# remove_made_folders KIND: every folder of KIND in EDMS_BACKUP_DIR a record names, removed
# with its record; says what it removed.
remove_made_folders() {
  local kind=$1 oid name
  local -a names=()
  while IFS=$'\t' read -r oid name; do
    # A name below EDMS_BACKUP_DIR (pitr/base/.tmp-<id>), never one that leaves it.
    [[ -n "$name" && "$name" != /* && "/$name/" != */../* && "/$name/" != */./* ]] || continue
    if [[ -e "$edms_dir/$name" ]]; then
      say "removing $name, left by an interrupted run"
      rm -rf -- "${edms_dir:?}/$name"
    fi
    names+=("$name")
  done < <(made_list "folder:$kind")
  ((${#names[@]} == 0)) || unmade_folder "$kind" "${names[@]}"
}

# --- databases -----------------------------------------------------------------------

# server_id: the cluster's system_identifier (readable by any role), into edms_server_id
# once per run (not in a subshell: the answer is kept).
server_id() {
  [[ -z "$edms_server_id" ]] || return 0
  local err
  err=$(psql_maintenance 2>&1 <<<'SELECT system_identifier FROM pg_control_system()') ||
    die "cannot ask the database server for its identity ($(first_error_line "$err")): check PGHOST, PGUSER and EDMS_BACKUP_MAINTENANCE_DB"
  edms_server_id=$err
}

# database_oid NAME: the OID of database NAME, or nothing when there is none.
database_oid() {
  psql_maintenance -v name="$1" <<<"SELECT oid FROM pg_database WHERE datname = :'name'"
}

# database_made KIND NAME [OID]: whether database NAME on this server is the one this
# folder's record says it made: same OID (OID, when the caller has it, saves asking again),
# or a pending record and a database of that name.
database_made() {
  local recorded oid=${3:-}
  server_id
  recorded=$(made_has "database:$1" "$edms_server_id" "$2") || return 1
  [[ -n "$oid" ]] || oid=$(database_oid "$2") || return 1
  [[ -n "$oid" && ("$recorded" == - || "$recorded" == "$oid") ]]
}

# create_made_database KIND NAME ENCODING: CREATE DATABASE NAME, recorded. A database of
# that name that this folder made (a stopped run's) is dropped first; anyone else's is
# refused, untouched. The common case, no record and the name free, costs one psql.
create_made_database() {
  local kind=$1 name=$2 encoding=$3 out oid
  [[ "$name" != *[[:cntrl:]]* ]] || die "database name '${name//[[:cntrl:]]/?}' holds a control character: name the database without one (PGDATABASE)"
  server_id
  if made_has "database:$kind" "$edms_server_id" "$name" >/dev/null; then
    drop_made_database "$kind" "$name" || (($? == 2)) || die "$(foreign_database_problem "$name")"
  fi
  made_add "database:$kind" "$edms_server_id" - "$name"
  if ! out=$(psql_maintenance -v name="$name" -v enc="$encoding" 2>&1 <<'SQL'
SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'name') AS taken \gset
\if :taken
\echo taken
\else
CREATE DATABASE :"name" TEMPLATE template0 ENCODING :'enc';
SELECT oid FROM pg_database WHERE datname = :'name';
\endif
SQL
  ) || [[ "$out" == taken || "$out" == *"already exists"* ]]; then
    made_forget "database:$kind" "$edms_server_id" "$name"
    [[ "$out" != taken && "$out" != *"already exists"* ]] || die "$(foreign_database_problem "$name")"
    die "cannot create database $name: $(first_error_line "$out"): PGUSER needs CREATEDB (or be the superuser)"
  fi
  oid=${out##*$'\n'}
  [[ ! "$oid" =~ ^[0-9]+$ ]] || made_add "database:$kind" "$edms_server_id" "$oid" "$name"
}

# refuse_foreign_database KIND NAME: dies, before anything changes, when a database of NAME
# exists that this folder's record does not say it made.
refuse_foreign_database() {
  local out oid
  # The server's identity with it, in one round trip.
  out=$(psql_maintenance -F ' ' -v name="$2" <<<"SELECT system_identifier, (SELECT oid FROM pg_database WHERE datname = :'name') FROM pg_control_system()") ||
    die "cannot read the databases of the server: check PGUSER and EDMS_BACKUP_MAINTENANCE_DB"
  read -r edms_server_id oid <<<"$out"
  [[ -z "$oid" ]] || database_made "$1" "$2" "$oid" || die "$(foreign_database_problem "$2")"
}

foreign_database_problem() {
  printf 'database %s exists and was not made by edms-backup for %s (no record in %s): it is left alone; rename or drop it yourself if it is not needed' \
    "$1" "$edms_dir" "$(made_file)"
}

# drop_made_database KIND NAME: NAME dropped (its sessions ended) when this folder made it,
# and its record forgotten; returns 1 when it is someone else's, and 2 when it was gone
# already (its record forgotten).
drop_made_database() {
  local kind=$1 name=$2 err oid
  server_id
  oid=$(database_oid "$name") || die "cannot read the databases of the server: check PGUSER and EDMS_BACKUP_MAINTENANCE_DB"
  if [[ -z "$oid" ]]; then
    made_forget "database:$kind" "$edms_server_id" "$name"
    return 2
  fi
  database_made "$kind" "$name" "$oid" || return 1
  err=$(psql_maintenance -v name="$name" 2>&1 <<<'DROP DATABASE IF EXISTS :"name" WITH (FORCE)') ||
    die "cannot drop database $name, which edms-backup made: $(first_error_line "$err")"
  made_forget "database:$kind" "$edms_server_id" "$name"
}

# made_database KIND OID NAME / unmade_database KIND NAME: a database of this server on
# record, or no longer.
made_database() {
  server_id
  made_add "database:$1" "$edms_server_id" "$2" "$3"
}

unmade_database() {
  server_id
  made_forget "database:$1" "$edms_server_id" "$2"
}

# made_databases KIND: the names of this server's databases of KIND on record.
made_databases() {
  local oid name
  server_id
  while IFS=$'\t' read -r oid name; do
    [[ -n "$name" ]] && printf '%s\n' "$name"
  done < <(made_list "database:$1" "$edms_server_id")
  return 0
}
