# shellcheck shell=bash
# The WAL receiver's state, as `wal status`, `status` and `metrics` report it.
#
# Reads: pitr_wal pitr_base pitr_points (pitr_paths)
# Sets:  wal_running wal_received wal_lag_seconds wal_lag_bytes wal_retained_bytes
#        wal_newest wal_newest_time wal_gaps (those after the newest base backup) wal_gap_text wal_last_error wal_bases
#        wal_points wal_earliest (wal_facts)

# wal_state_sample POS SLOT_POS: the server's flush position and the slot's, recorded every
# tenth call (a look a second; the file is written with a sync).
wal_state_sample() {
  wal_samples=$((${wal_samples:-0} + 1))
  ((wal_samples % 10 == 1)) || return 0
  kv_set "$pitr_wal/.receiver" server_lsn "$1" slot_lsn "$2" sampled "$(date +%s)"
}

# receiver_running: whether a receiver holds the folder's lock (also one in another
# container on the same volume).
receiver_running() {
  [[ -f "$pitr_wal/.receiver.lock" ]] || return 1
  local fd rc=0
  exec {fd}<"$pitr_wal/.receiver.lock"
  flock -n -s "$fd" && rc=1
  exec {fd}<&-
  return "$rc"
}

wal_facts() {
  local now row server_lsn="" slot_lsn="" size from base
  now=$(date +%s)
  wal_running="" wal_earliest="" wal_lag_bytes="" wal_retained_bytes="" wal_gaps=0 wal_gap_text="" wal_newest="" wal_newest_time=""
  receiver_running && wal_running=yes
  wal_received=$(received_up_to)
  wal_lag_seconds=$((${wal_received%.*} > 0 ? now - ${wal_received%.*} : -1))
  wal_last_error=$(kv_get "$pitr_wal/.receiver" last_error 2>/dev/null || true)
  # The server's view when it answers (PG* of the receiver's role), else the last sample.
  if [[ -n "${PGHOST:-}${PGPORT:-}${PGUSER:-}" ]] && server_lsn=$(PGCONNECT_TIMEOUT=5 replication_field IDENTIFY_SYSTEM xlogpos 2>/dev/null); then
    slot_lsn=$(PGCONNECT_TIMEOUT=5 replication_field "READ_REPLICATION_SLOT $(wal_slot)" restart_lsn 2>/dev/null) || slot_lsn=""
  fi
  if [[ "$server_lsn" != */* || "$slot_lsn" != */* ]]; then
    server_lsn=$(kv_get "$pitr_wal/.receiver" server_lsn 2>/dev/null || true)
    slot_lsn=$(kv_get "$pitr_wal/.receiver" slot_lsn 2>/dev/null || true)
  fi
  if [[ "$server_lsn" == */* && "$slot_lsn" == */* ]]; then
    # A physical slot holds the WAL from where the receiver has it: lag and retention agree.
    wal_lag_bytes=$(($(lsn_bytes "$server_lsn") - $(lsn_bytes "$slot_lsn")))
    ((wal_lag_bytes >= 0)) || wal_lag_bytes=0
    wal_retained_bytes=$wal_lag_bytes
  fi
  mapfile -t wal_bases < <(base_ids)
  mapfile -t wal_points < <(point_ids)
  size=16777216 from=""
  if ((${#wal_bases[@]})); then
    base=${wal_bases[-1]}
    size=$(base_get "$base" segment_size)
    # The WAL from the base backup's end on: up to there its own pg_wal holds it.
    from=$(lsn_segno "$(base_get "$base" end_lsn)" "$size")
    wal_earliest=$(base_get "$base" end_time)
  fi
  row=$(wal_files "$size" | awk '$3 != "history" { last = $4 } END { print last }')
  if [[ -n "$row" ]]; then
    wal_newest=$row
    wal_newest_time=$(stat -c %Y -- "$pitr_wal/$row" 2>/dev/null || true)
  fi
  if [[ -n "$from" ]]; then
    local first last after
    local newest_end
    newest_end=$(lsn_segno "$(base_get "${wal_bases[0]}" end_lsn)" "$size")
    while read -r first last after; do
      # A gap before the newest base backup's end only narrows the times a restore reaches.
      ((last < newest_end)) || wal_gaps=$((wal_gaps + 1))
      wal_gap_text+="${wal_gap_text:+; }$((last - first + 1)) segment(s) missing after $after"
    done < <(wal_gaps "$from" "$size")
  fi
}
