# shellcheck shell=bash
# Point-in-time recovery: where its parts live in EDMS_BACKUP_DIR and how they are read.
#
#   pitr/base/<ID>/data/        a base backup: pg_basebackup, plain format, its WAL streamed
#                               with it and its backup_manifest (pg_verifybackup checks it)
#   pitr/base/<ID>/info         KEY=VALUE, written by basebackup: start_lsn end_lsn timeline
#                               start_time end_time (epochs) server_major system_identifier
#                               segment_size user; the folder is complete once renamed to <ID>
#   pitr/wal/                   pg_receivewal's folder: segments, one .partial, .history files
#   pitr/wal/.received          "WAL received up to": an epoch the receiver moves on while it
#                               streams (everything committed before it is in the folder)
#   pitr/wal/.receiver          the receiver's state (KEY=VALUE): pid started last_error ...
#   pitr/points/<ID>/           a storage point: storage-<i>/ (unchanged files hard links to
#                               the point before), meta/ (catalogs, info), SHA256SUMS
# Each part is made by this tool, in a folder .made records while it is built.
#
# Reads: edms_dir
# Sets:  pitr_root pitr_base pitr_wal pitr_points (pitr_paths)

pitr_paths() {
  pitr_root="$edms_dir/pitr"
  pitr_base="$pitr_root/base"
  pitr_wal="$pitr_root/wal"
  pitr_points="$pitr_root/points"
}

# pitr_mkdirs: the folders, owner only (the WAL holds every row the database writes).
pitr_mkdirs() {
  (umask 077 && mkdir -p -- "$pitr_base" "$pitr_wal" "$pitr_points") ||
    die "cannot create $pitr_root: make $edms_dir writable by uid $(id -u)"
}

# take_pitr_lock WAIT_SECONDS: one base backup, pitr prune or restore --to at a time (not the
# backups' lock: a long base backup must not hold up the night's backup).
take_pitr_lock() {
  exec {pitr_lock_fd}>>"$pitr_root/.lock" || die "cannot create $pitr_root/.lock: make $edms_dir writable by uid $(id -u)"
  if ! flock -n "$pitr_lock_fd"; then
    say "waiting up to ${1}s for the running base backup or restore to a time to finish"
    flock -w "$1" "$pitr_lock_fd" || die "a base backup or a restore to a time is running on $pitr_root (lock $pitr_root/.lock held): wait for it to finish"
  fi
}

# base_ids: complete base backups, newest first.
base_ids() {
  local path name
  local -a ids=()
  for path in "$pitr_base"/*/; do
    name=$(basename "$path")
    [[ "$name" =~ $EDMS_BACKUP_ID_PATTERN && -f "$path/info" && -d "$path/data" ]] && ids+=("$name")
  done
  ((${#ids[@]})) || return 0
  printf '%s\n' "${ids[@]}" | sort -r
}

base_get() {
  kv_get "$pitr_base/$1/info" "$2"
}

# point_ids: complete storage points, newest first.
point_ids() {
  local path name
  local -a ids=()
  for path in "$pitr_points"/*/; do
    name=$(basename "$path")
    [[ "$name" =~ $EDMS_BACKUP_ID_PATTERN && -f "$path/meta/info" && -f "$path/SHA256SUMS" ]] && ids+=("$name")
  done
  ((${#ids[@]})) || return 0
  printf '%s\n' "${ids[@]}" | sort -r
}

# replication_conninfo: libpq options for a replication connection that notices a dead
# peer within seconds (the defaults wait for the kernel's two hours).
replication_conninfo() {
  printf '%s' "dbname=replication replication=true application_name=edms-backup connect_timeout=10 keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 tcp_user_timeout=5000"
}

# replication_sql COMMAND: one replication command (IDENTIFY_SYSTEM, SHOW x,
# READ_REPLICATION_SLOT s) on a replication connection; its row, fields tab-separated.
replication_sql() {
  psql -X -q -A -t -F $'\t' -d "$(replication_conninfo)" -c "$1"
}

# replication_field COMMAND COLUMN: a column of a replication command's row, by its name
# (IDENTIFY_SYSTEM xlogpos, READ_REPLICATION_SLOT restart_lsn); empty when absent. Its
# values (LSNs, ids, names) hold no comma or quote.
replication_field() {
  psql -X -q --csv -d "$(replication_conninfo)" -c "$1" |
    awk -F, -v col="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next } NR == 2 && c { print $c }'
}

# lsn_bytes LSN: an LSN (X/Y) as a byte position.
lsn_bytes() {
  local hi=${1%%/*} lo=${1#*/}
  printf '%d\n' "$(((16#$hi << 32) + 16#$lo))"
}

# wal_slot: the replication slot's name (PostgreSQL: lower case, digits, underscores).
wal_slot() {
  local slot=${EDMS_BACKUP_WAL_SLOT:-edms_backup_${EDMS_BACKUP_STACK:-edms}}
  slot=${slot//[^a-zA-Z0-9_]/_}
  slot=${slot,,}
  printf '%s\n' "${slot:0:63}"
}

# received_up_to: the epoch (with milliseconds) up to which every WAL record is in the
# folder (0: none).
received_up_to() {
  local t
  t=$(head -n 1 -- "$pitr_wal/.received" 2>/dev/null || true)
  [[ "$t" =~ ^[0-9]+(\.[0-9]+)?$ ]] && printf '%s\n' "$t" || echo 0
}

# wal_files: the WAL in the folder, one line each, oldest first: "TLI SEGNO KIND FILE"
# (KIND: full, partial or history; SEGNO in segments of SIZE bytes, arg 1).
wal_files() {
  local size=${1:-16777216}
  find "$pitr_wal" -maxdepth 1 -type f \( -name '????????????????????????' -o -name '????????????????????????.partial' -o -name '????????.history' \) -printf '%f\n' 2>/dev/null |
    awk -v per=$((4294967296 / size)) '
      function hex(s,   i, v) { v = 0; for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789ABCDEF", toupper(substr(s, i, 1))) - 1; return v }
      # (No {n} in the patterns: mawk, Debian'"'"'s awk, lacks them.)
      /^[0-9A-F]+\.history$/ && length($0) == 16 { printf "%d 0 history %s\n", hex(substr($0, 1, 8)), $0; next }
      /^[0-9A-F]+(\.partial)?$/ && (length($0) == 24 || length($0) == 32) {
        printf "%d %d %s %s\n", hex(substr($0, 1, 8)), hex(substr($0, 9, 8)) * per + hex(substr($0, 17, 8)), (length($0) > 24 ? "partial" : "full"), $0
      }' | sort -n -k1,1 -k2,2
}

# lsn_segno LSN SIZE: the segment number an LSN lies in.
lsn_segno() {
  printf '%d\n' "$(($(lsn_bytes "$1") / $2))"
}

# wal_gaps FROM_SEGNO SIZE: the missing stretches of WAL from segment FROM_SEGNO to the
# newest received, one "FIRST LAST AFTER_FILE" line each (segment numbers; the file before
# the gap), following the newest timeline at each segment.
wal_gaps() {
  wal_files "$2" | awk -v from="$1" '
    $3 != "history" && $2 >= from { have[$2] = $4; if ($2 > max) max = $2; seen = 1 }
    END {
      if (!seen) exit
      prev = ""
      for (s = from; s <= max; s++) {
        if (s in have) { prev = have[s]; continue }
        first = s
        while (!(s in have) && s <= max) s++
        printf "%d %d %s\n", first, s - 1, (prev == "" ? "-" : prev)
        prev = have[s]
      }
    }'
}

# parse_target_time TEXT: the time as PostgreSQL reads it ("YYYY-MM-DD HH:MM:SS.ffffff+HH:MM")
# and its epoch, on one line; no zone means TZ (UTC unless set).
parse_target_time() {
  local text=$1 canonical epoch
  [[ "$text" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?\ ?(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)?$ ]] ||
    return 1
  canonical=$(date -d "$text" '+%Y-%m-%d %H:%M:%S.%6N%:z' 2>/dev/null) || return 1
  epoch=$(date -d "$text" +%s.%6N 2>/dev/null) || return 1
  printf '%s\t%s\n' "$canonical" "$epoch"
}

# pg_server_bin MAJOR: the folder of the PostgreSQL server binaries of that major version
# (the runtime image is the database's image, so it has them).
pg_server_bin() {
  local major=$1 dir
  for dir in "/usr/lib/postgresql/$major/bin" "$(pg_config --bindir 2>/dev/null || true)" "$(dirname -- "$(command -v postgres 2>/dev/null || echo /nonexistent/x)")"; do
    [[ -x "$dir/postgres" && -x "$dir/pg_ctl" ]] || continue
    [[ "$("$dir/postgres" --version 2>/dev/null)" =~ \(PostgreSQL\)\ ([0-9]+) && "${BASH_REMATCH[1]}" == "$major" ]] || continue
    printf '%s\n' "$dir"
    return 0
  done
  return 1
}

# epoch_text EPOCH: a time for people, in TZ.
epoch_text() {
  date -d "@${1%%.*}" '+%Y-%m-%d %H:%M:%S %Z'
}

# check_point ID: a complete storage point with as many folders as EDMS_BACKUP_STORAGE_DIRS.
check_point() {
  local count
  [[ -f "$pitr_points/$1/meta/info" && -f "$pitr_points/$1/SHA256SUMS" ]] || die "no complete storage point $1 in $pitr_points"
  count=$(kv_get "$pitr_points/$1/meta/info" storage_count)
  ((count == ${#edms_storage_dirs[@]})) ||
    die "storage point $1 holds $count storage folder(s) but EDMS_BACKUP_STORAGE_DIRS names ${#edms_storage_dirs[@]}: configure the same folders as when it was taken"
}

# link_point_storage I: a backup's storage-I (tmp: the folder it is built in) as the hard
# links of storage point `point`'s copy, with its catalog, its checksums (from the catalog,
# into work/sums) and its counts: nothing is read or copied again.
link_point_storage() {
  local i=$1 from="$pitr_points/$point" line key
  storage_new_bytes=${storage_new_bytes:-0}
  cp -al -- "$from/storage-$i" "$tmp/storage-$i" ||
    die "cannot hard-link storage point $point into the backup (the backup folder and $pitr_points must be one filesystem)"
  cp -- "$from/meta/storage-$i.catalog.gz" "$tmp/meta/"
  if [[ -f "$from/meta/storage-$i.torn" ]]; then cp -- "$from/meta/storage-$i.torn" "$tmp/meta/"; else : >"$tmp/meta/storage-$i.torn"; fi
  read_catalog "$tmp/meta/storage-$i.catalog.gz" | stream_awk -v prefix="storage-$i/" 'BEGIN { RS = "\0" } '"$catalog_awk"'
    { parse_record($0, f, r); if (f[1] == "f" && f[10] != "-") printf "%s  %s%s%c", f[10], prefix, r["path"], 0 }' >>"$work/sums"
  while IFS= read -r line; do
    key=${line%%=*}
    [[ "$key" == "storage_${i}_"* ]] && info+=("$line")
  done <"$from/meta/info"
  local files bytes
  files=$(kv_get "$from/meta/info" "storage_${i}_files" || echo 0)
  bytes=$(kv_get "$from/meta/info" "storage_${i}_bytes" || echo 0)
  storage_json+=("{\"index\":$i,\"source\":$(json_str "${edms_storage_dirs[i - 1]}"),\"path\":\"storage-$i\",\"format\":\"folder\",\"files\":$files,\"bytes\":$bytes,\"storagePoint\":\"$point\"}")
  storage_text+=("  $i. ${edms_storage_dirs[i - 1]} as storage point $point held it -> storage-$i/  ($files files, $(human_bytes "$bytes"))")
}
