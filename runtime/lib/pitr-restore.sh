# shellcheck shell=bash
# restore --to TIME: the cluster brought to that time in a scratch data directory (a base
# backup, the WAL after it, recovery_target_time, promote), dumped with the storage of the
# first storage point at or after TIME into a backup of kind point-in-time; the restore
# then restores that backup as any other (side-by-side load, row check, one swap).
#
# The scratch cluster runs from a folder of EDMS_BACKUP_PITR_SCRATCH_DIR (default
# /var/tmp), as the user postgres when this runs as root (the server refuses root), on a
# Unix socket only. Its path is recorded in pitr/.scratch before it is made: a run killed
# while it ran has it stopped and removed by the next one.
#
# Reads: to_text db edms_dir edms_storage_dirs
# Sets:  id checked (the backup to restore, built and checked now), pitr_target_text
#        pitr_reached pitr_base_id pitr_point_id pitr_extra (for the report)

# restore_to_time: restore --to: the backup of the state at that time made (or found, when
# a stopped run made it), then restored.
restore_to_time() {
  [[ -z "$id" ]] || die "give a backup id or --to TIME, not both"
  check_target_settings
  [[ -n "$yes$backup_only" ]] || die "refusing to restore without --yes: it replaces database $db and the storage folders with their state at $to_text; run 'edms-backup restore --to '\''$to_text'\'' --yes'"
  take_lock "$lock_wait"
  clean_leftovers
  started=$SECONDS
  private_tmpdir
  trap on_exit EXIT
  trap 'exit 143' TERM INT HUP
  step restore.pitr.started
  point_in_time_backup
  if [[ -n "$backup_only" ]]; then
    printf '%s\n' "$id"
    return 0
  fi
  backup="$edms_dir/$id"
  restore_backup
}

# point_in_time_backup: the backup of the state at --to's time made (or one a stopped run made
# for it found); its id into id.
point_in_time_backup() {
  local parsed target_pg target_epoch target_sec now base
  need_jq
  parsed=$(parse_target_time "$to_text") ||
    die "--to '$to_text' is not a time: give 'YYYY-MM-DD HH:MM:SS' with optional .ffffff and zone (+HH:MM or Z; without one it is $TZ)"
  IFS=$'\t' read -r target_pg target_epoch <<<"$parsed"
  target_sec=${target_epoch%.*}
  pitr_target_text=$target_pg
  now=$(date +%s)
  ((target_sec <= now)) || die "$to_text is in the future (now is $(epoch_text "$now")): give a time that has passed"
  pitr_paths
  [[ -n "$(base_ids 2>/dev/null)" ]] ||
    die "no base backup in $pitr_base: point-in-time recovery needs one (edms-backup basebackup) and the WAL after it (edms-backup wal receive)"
  # No base backup made or deleted meanwhile (the lock's descriptor is not the scratch
  # server's: see start_scratch).
  take_pitr_lock "$lock_wait"
  clean_scratch
  base=$(choose_base "$target_sec")
  pitr_base_id=$base
  wait_for_wal "$target_epoch"
  check_wal_chain "$base" "$target_sec"
  if reuse_point_in_time_backup "$target_epoch"; then return 0; fi
  pitr_point_id=""
  ((${#edms_storage_dirs[@]} == 0)) || pitr_point_id=$(choose_point "$target_epoch")
  recover_to "$base" "$target_pg" "$target_epoch"
  build_point_in_time_backup "$target_epoch"
  stop_scratch
}

# choose_base SECONDS: the newest base backup that was consistent by then.
choose_base() {
  local base oldest=""
  while IFS= read -r base; do
    oldest=$base
    (($(base_get "$base" end_time) <= $1)) && { printf '%s\n' "$base"; return 0; }
  done < <(base_ids)
  die "$to_text is before the oldest base backup: the earliest time a restore can reach is $(epoch_text "$(base_get "$oldest" end_time)") (base backup $oldest)"
}

# wait_for_wal EPOCH: the WAL up to EPOCH is in the folder; a running receiver is given a
# few seconds to get there (it records up to when, a second behind).
wait_for_wal() {
  local target=$1 received waited=0
  received=$(received_up_to)
  while ! awk -v t="$target" -v r="$received" 'BEGIN { exit !(t <= r) }'; do
    if ((waited >= 20)) || ! receiver_running || ((${received%.*} < $(date +%s) - 30)); then
      die "$to_text is after the newest WAL received: WAL received up to $(epoch_text "$received")$(receiver_running || printf ' (the receiver is not running: edms-backup wal receive)'); restore to that time or earlier"
    fi
    sleep 1
    waited=$((waited + 1))
    received=$(received_up_to)
  done
}

# check_wal_chain BASE SECONDS: the WAL from BASE's end has no gap before SECONDS, and
# each timeline it switches to has its history file.
check_wal_chain() {
  local base=$1 target=$2 size from first last after at tli
  size=$(base_get "$base" segment_size)
  from=$(lsn_segno "$(base_get "$base" end_lsn)" "$size")
  while read -r first last after; do
    at=$(base_get "$base" end_time)
    [[ "$after" == - ]] || at=$(stat -c %Y -- "$pitr_wal/$after")
    ((target > at)) || continue
    die "the WAL has a gap after $(epoch_text "$at") ($((last - first + 1)) segment(s) missing after ${after/#-/base backup $base}): restore to a time before that, or take a base backup now (edms-backup basebackup) for the times after it"
  done < <(wal_gaps "$from" "$size")
  while read -r tli; do
    [[ -f "$pitr_wal/$(printf '%08X' "$tli").history" ]] ||
      die "the WAL switches to timeline $tli after base backup $base but its history file $(printf '%08X' "$tli").history is not in $pitr_wal: the switch cannot be followed; take a base backup on the new timeline (edms-backup basebackup)"
  done < <(wal_files "$size" | awk -v tli="$(base_get "$base" timeline)" -v from="$from" '$3 != "history" && $2 >= from && $1 > tli { print $1 }' | sort -u)
}

# reuse_point_in_time_backup EPOCH: a point-in-time backup an interrupted run made for this
# very time is restored rather than made again.
reuse_point_in_time_backup() {
  local each
  while IFS= read -r each; do
    [[ "$(info_get "$each" kind || true)" == point-in-time && "$(info_get "$each" pitr_target_epoch || true)" == "$1" ]] || continue
    id=$each checked=yes
    pitr_reached=$(info_get "$id" pitr_reached || true)
    pitr_base_id=$(info_get "$id" pitr_base || true)
    pitr_point_id=$(info_get "$id" pitr_point || true)
    pitr_extra=$(info_get "$id" pitr_extra || true)
    say "backup $id already holds the state at $pitr_target_text (made by an interrupted run): restoring it"
    return 0
  done < <(backup_ids)
  return 1
}

# choose_point EPOCH: the first storage point at or after EPOCH; one taken now when none is.
choose_point() {
  local point
  while IFS= read -r point; do
    awk -v p="$(id_epoch "$point")" -v t="$1" 'BEGIN { exit !(p >= t) }' && { printf '%s\n' "$point"; return 0; }
  done < <(point_ids | sort)
  say "no storage point at or after $pitr_target_text yet: taking one now"
  "$EDMS_BACKUP_ROOT/edms-backup" storage-point | tail -n 1
}

# --- the scratch cluster -------------------------------------------------------------

# clean_scratch: the scratch cluster a killed run left, stopped and removed (its record says
# where it is; nothing else is touched).
clean_scratch() {
  local path
  path=$(kv_get "$pitr_root/.scratch" path 2>/dev/null || true)
  [[ -n "$path" ]] || return 0
  if [[ -f "$path/data/postmaster.pid" ]]; then
    say "stopping the scratch cluster an interrupted restore left in $path"
    scratch_bin=$(pg_server_bin "$(head -n 1 -- "$path/data/PG_VERSION")") &&
      as_postgres "$scratch_bin/pg_ctl" -D "$path/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [[ ! -e "$path" ]] || say "removing $path, left by an interrupted restore"
  rm -rf -- "$path"
  rm -f -- "$pitr_root/.scratch"
}

# as_postgres COMMAND...: run as the user postgres when root (the server refuses root).
as_postgres() {
  if ((EUID == 0)); then
    setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
  else
    "$@"
  fi
}

# recover_to BASE TARGET_PG EPOCH: the scratch cluster, recovered to TARGET_PG and promoted.
recover_to() {
  local base=$1 target=$2 epoch=$3 parent major size from err
  parent=${EDMS_BACKUP_PITR_SCRATCH_DIR:-/var/tmp}
  major=$(base_get "$base" server_major)
  scratch_bin=$(pg_server_bin "$major") ||
    die "the PostgreSQL $major server is not installed here: run the restore in the scheduler's image (the database's image), which has it"
  if ((EUID == 0)); then
    id -u postgres >/dev/null 2>&1 || die "there is no user postgres to run the scratch cluster as (the server refuses root): run the restore in the scheduler's image"
  fi
  scratch="${parent%/}/edms-pitr.$(date +%s).$$"
  kv_set "$pitr_root/.scratch" path "$scratch"
  mkdir -m 0700 -- "$scratch" || die "cannot create $scratch: set EDMS_BACKUP_PITR_SCRATCH_DIR to a folder with room for a copy of the database cluster"
  step restore.pitr.scratch-created
  say "bringing the cluster to $target from base backup $base and the WAL after it"
  cp -a -- "$pitr_base/$base/data" "$scratch/data" || die "cannot copy base backup $base to $scratch (disk full?): set EDMS_BACKUP_PITR_SCRATCH_DIR to a folder with room"
  rm -f -- "$scratch/data/standby.signal" "$scratch/data/recovery.signal" "$scratch/data/postmaster.pid"
  size=$(base_get "$base" segment_size)
  from=$(lsn_segno "$(base_get "$base" start_lsn)" "$size")
  copy_wal "$from" "$size"
  printf 'local all all trust\n' >"$scratch/data/pg_hba.conf"
  scratch_settings "$target" >>"$scratch/data/postgresql.auto.conf"
  : >"$scratch/data/recovery.signal"
  ((EUID != 0)) || chown -R postgres:postgres -- "$scratch"
  step restore.pitr.scratch-ready
  if ! start_scratch; then
    err=$(grep -E 'FATAL|PANIC' -- "$scratch/log" | tail -n 1)
    # No commit after the time: the WAL ends before it, in the same state as at it.
    if [[ "$err" == *"recovery ended before configured recovery target was reached"* ]] &&
      awk -v t="$epoch" -v r="$(received_up_to)" 'BEGIN { exit !(t <= r) }'; then
      sed -i '/^recovery_target_time/d' -- "$scratch/data/postgresql.auto.conf"
      start_scratch || die "the scratch cluster did not recover: $(grep -E 'FATAL|PANIC' -- "$scratch/log" | tail -n 1)"
    else
      die "the scratch cluster did not recover to $target: ${err#*FATAL:  }"
    fi
  fi
  step restore.pitr.recovered
  scratch_user
  local exists
  exists=$(scratch_psql -d template1 -c "SELECT count(*) FROM pg_database WHERE datname = '${db//\'/\'\'}'")
  ((exists == 1)) || die "database $db did not exist at $target: restore to a later time"
  pitr_reached=$(scratch_psql -d template1 -c "SELECT coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00', '')")
}

# copy_wal FROM SIZE: the WAL from segment FROM on into the scratch pg_wal, a .partial under
# its segment's name (the server reads what it holds and stops at its end).
copy_wal() {
  wal_files "$2" | awk -v from="$1" '$3 == "history" || $2 >= from { print $4 }' |
    while IFS= read -r name; do
      cp -- "$pitr_wal/$name" "$scratch/data/pg_wal/${name%.partial}" || die "cannot copy $name to the scratch cluster (disk full?)"
    done
}

# scratch_settings TARGET: the recovery's settings, last in postgresql.auto.conf (they win).
scratch_settings() {
  local q="'"
  printf "%s = '%s'\n" \
    listen_addresses "" unix_socket_directories "${scratch//$q/$q$q}" port 5432 \
    restore_command false recovery_target_action promote recovery_target_timeline latest \
    recovery_target_inclusive on archive_mode off hot_standby off primary_conninfo "" primary_slot_name "" \
    fsync off logging_collector off ssl off max_wal_size 16GB checkpoint_timeout 1h
  printf "recovery_target_time = '%s'\n" "$1"
}

# start_scratch: the scratch cluster started, and waited for until its recovery is over
# (pg_ctl -w returns as soon as a server without hot standby is replaying). Fails when the
# server ends instead (its log says why).
start_scratch() {
  # With no descriptor of this run's: the server outlives a killed restore (pg_ctl detaches
  # it), and would hold the locks (also one inherited from a drill) until the next run.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd <= 2)) || eval "exec $fd>&-" 2>/dev/null || true
    done
    as_postgres "$scratch_bin/pg_ctl" -D "$scratch/data" -l "$scratch/log" -w -t 86400 start >/dev/null 2>&1
  ) || return 1
  local pid rc
  pid=$(head -n 1 -- "$scratch/data/postmaster.pid" 2>/dev/null) || return 1
  while :; do
    rc=0
    "$scratch_bin/pg_isready" -q -h "$scratch" -p 5432 -t 5 || rc=$?
    ((rc != 0)) || return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.2
  done
}

# scratch_user: a superuser of the scratch cluster (the bootstrap one, OID 10), found as
# whichever known role it lets in (trust, on its own socket).
scratch_user() {
  local who
  scratch_super=""
  for who in "${PGUSER:-}" "$(base_get "$pitr_base_id" user || true)" postgres "$(id -un)"; do
    [[ -n "$who" ]] || continue
    scratch_super=$(PGUSER=$who scratch_psql -d template1 -c 'SELECT rolname FROM pg_roles WHERE oid = 10' 2>/dev/null) && [[ -n "$scratch_super" ]] && return 0
  done
  die "cannot log in to the scratch cluster: none of the roles $PGUSER, postgres exists in it"
}

scratch_psql() {
  scratch_env "${scratch_super:-$PGUSER}" psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

# scratch_env USER COMMAND...: COMMAND with libpq's settings those of the scratch cluster
# only (none of the live server's: no password, no SSL, no service file).
scratch_env() {
  local user=$1 name
  shift
  local -a unset=()
  for name in $(compgen -e); do [[ "$name" != PG* ]] || unset+=(-u "$name"); done
  env "${unset[@]}" PGHOST="$scratch" PGPORT=5432 PGUSER="$user" PGDATABASE="$db" "$@"
}

# stop_scratch: the scratch cluster stopped at once (no shutdown checkpoint: its folder is
# removed next) and removed.
stop_scratch() {
  as_postgres "$scratch_bin/pg_ctl" -D "$scratch/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf -- "$scratch"
  rm -f -- "$pitr_root/.scratch"
  scratch=""
}

# build_point_in_time_backup EPOCH: the scratch cluster's database and the storage point, as
# a backup of kind point-in-time (not copied off-site, no ping); its id into id.
build_point_in_time_backup() {
  local out dirs="" i pitr_info
  pitr_extra=""
  if [[ -n "$pitr_point_id" ]]; then
    for ((i = 1; i <= ${#edms_storage_dirs[@]}; i++)); do dirs+="${dirs:+:}${edms_storage_dirs[i - 1]}"; done
    pitr_extra=$(newer_files "$1")
  fi
  pitr_info=$(printf '%s\n' "pitr_target=$pitr_target_text" "pitr_target_epoch=$1" "pitr_reached=$pitr_reached" \
    "pitr_base=$pitr_base_id" "pitr_point=$pitr_point_id" "pitr_extra=$pitr_extra")
  say "dumping the database as it was at $pitr_target_text${pitr_point_id:+, with storage point $pitr_point_id}"
  # Uncompressed: it is restored at once (and pruned as any backup later).
  out=$(scratch_env "$scratch_super" RESTIC_REPOSITORY="" EDMS_BACKUP_DB_COMPRESSION=0 EDMS_BACKUP_PITR_INFO="$pitr_info" \
    "$EDMS_BACKUP_ROOT/edms-backup" backup --kind point-in-time ${pitr_point_id:+--storage-from-point "$pitr_point_id"}) ||
    die "the backup of the state at $pitr_target_text failed (see above): nothing was changed"
  id=${out##*$'\n'} checked=yes
  step restore.pitr.backup-made
}

# newer_files EPOCH: how many files of the storage point are newer than EPOCH, and the first
# few: added or changed after the time (kept: the database of that time does not name them).
newer_files() {
  local i n=0 first="" count names
  for ((i = 1; i <= ${#edms_storage_dirs[@]}; i++)); do
    read_catalog "$pitr_points/$pitr_point_id/meta/storage-$i.catalog.gz" |
      stream_awk -v t="$1" 'BEGIN { RS = "\0" } '"$catalog_awk"' { parse_record($0, f, r); if (f[1] == "f" && f[5] + 0 > t + 0) { n++; if (n <= 3) names = names (names == "" ? "" : ", ") r["path"] } }
        END { printf "%d\t%s\n", n, names }' >"$TMPDIR/newer"
    IFS=$'\t' read -r count names <"$TMPDIR/newer"
    n=$((n + count))
    [[ -z "$names" || -n "$first" ]] || first=${names//[[:cntrl:]]/?}
  done
  ((n == 0)) || printf '%d file(s) newer than the time (first: %s)' "$n" "$first"
}
