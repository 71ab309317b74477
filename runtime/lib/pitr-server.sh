# shellcheck shell=bash
# The database server as point-in-time recovery reaches it: a replication connection with
# PG*, what it needs there, and the one line that names what is missing.
#
# Reads: PG*

# explain_replication_error STDERR: the cause of a failed replication connection, and the fix.
explain_replication_error() {
  local err=$1 user=${PGUSER:-$(id -un)}
  case "$err" in
    *"no pg_hba.conf entry for replication connection"*)
      printf 'pg_hba.conf of the database does not let %s make a replication connection from this host: add the line "host replication %s <this host or network> scram-sha-256" and reload the server (SELECT pg_reload_conf())' "$user" "$user" ;;
    *"must be superuser or replication role"* | *"permission denied to start WAL sender"* | *"must have the REPLICATION attribute"*)
      printf 'role %s may not stream the WAL: give it the attribute with "ALTER ROLE %s REPLICATION" (or set PGUSER to a role that has it)' "$user" "$user" ;;
    *"number of requested standby connections exceeds max_wal_senders"* | *"max_wal_senders"*)
      printf 'the server has no free WAL sender (max_wal_senders): raise max_wal_senders and restart it' ;;
    *"all replication slots are in use"*)
      printf 'the server has no free replication slot (max_replication_slots): raise max_replication_slots and restart it' ;;
    *"wal_level"*)
      printf 'the server'"'"'s wal_level is minimal: set wal_level = replica and restart it' ;;
    *) explain_pg_error "$err" ;;
  esac
}

# check_replication_access: a replication connection works; dies naming what to change.
check_replication_access() {
  local out
  command -v pg_basebackup >/dev/null && command -v pg_receivewal >/dev/null ||
    die "pg_basebackup and pg_receivewal are not installed: use the scheduler's image (the database's image), which has them"
  if ! out=$(replication_sql IDENTIFY_SYSTEM 2>&1); then
    die "$(explain_replication_error "$out")"
  fi
}

# ensure_slot: the receiver's physical slot, made if missing, with its WAL reserved from now
# (pg_receivewal --create-slot reserves none: a receiver starting on such a slot asked for
# the server's first segment, long removed). Prints nothing; fails with the server's error.
ensure_slot() {
  local err
  err=$(replication_sql "CREATE_REPLICATION_SLOT $(wal_slot) PHYSICAL RESERVE_WAL" 2>&1 >/dev/null) && return 0
  [[ "$err" == *"already exists"* ]] && return 0
  printf '%s\n' "$err"
  return 1
}

# segment_size: the server's WAL segment size in bytes (SHOW answers in kB, MB or GB).
segment_size() {
  local text
  text=$(replication_sql 'SHOW wal_segment_size') || die "cannot read wal_segment_size from $(pg_target)"
  case "$text" in
    *GB) echo $((${text%GB} * 1073741824)) ;;
    *MB) echo $((${text%MB} * 1048576)) ;;
    *kB) echo $((${text%kB} * 1024)) ;;
    *) die "cannot read wal_segment_size '$text' of $(pg_target)" ;;
  esac
}

# slot_advice: a warning when the server lets a slot keep WAL without bound: a receiver that
# is down for long would fill the database's disk.
slot_advice() {
  local keep
  keep=$(replication_sql 'SHOW max_slot_wal_keep_size' 2>/dev/null) || return 0
  if [[ "$keep" == -1 ]]; then
    say "warning: max_slot_wal_keep_size is -1 on $(pg_target): a receiver that is down keeps WAL on the database's disk without bound; set it (ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf())"
  fi
}
