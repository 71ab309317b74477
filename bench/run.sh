#!/usr/bin/env bash
# Usage: bench/run.sh [--db-mb N] [--storage-mb N] [--rounds N] [--dir DIR] [--keep] [--only pitr]
#
# Times edms-backup against the seed's commands (method-2-database-storage-backup.md) on
# the same EDMS-shaped data, in the same run, alternating, and prints the ratios:
#   full backup     edms-backup backup          vs  pg_dump -Fc + tar -czf of the storage
#   repeat backup   edms-backup backup after ~1% of the storage changed, vs the seed's full
#   restore         edms-backup restore onto a new instance  vs  pg_restore + tar -xzf
# and what the repeat backup added to the disk, against the seed's pg_dump -Fc + the changed
# files (issue 18: <= 1.25); then, off-site (restic over sftp to
# OpenSSH's server on loopback, test/bed/sshd.sh):
#   push full / repeat  seconds and bytes added to the repository; the repeat's bytes
#                       against the changed files + the new dump, zstd-compressed as restic does
#   disaster restore    pull from the repository + restore onto a new instance, the local
#                       backups gone, vs the seed's restore (which reads from a local disk);
#                       and the core-seconds it used, which bound it from below on this machine
# and point-in-time recovery: the RPO of the WAL receiver (commit to WAL safe in the backup
# volume) and a restore to a time an hour's writes after a base backup, against the restore
# of the nightly backup above (<= 1.5). With --only pitr: the nightly backup and its restore
# (the baseline), then point-in-time recovery; no seed, off-site or vault.
# Defaults: about 350 MB of database, 450 MB
# of storage (70% incompressible, like PDFs and DOCX), 5 rounds (runs vary by ±15% on a
# 2-core VM); medians are compared.
# Needs the PostgreSQL 15 server binaries (/usr/lib/postgresql/15/bin) and root (it runs
# PostgreSQL as the postgres user).
set -euo pipefail

db_mb=350 storage_mb=450 rounds=5 keep="" dir="" only=""
while (($#)); do
  case "$1" in
    --db-mb) db_mb=$2; shift 2 ;;
    --storage-mb) storage_mb=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --only) only=$2; shift 2 ;;
    -h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done
[[ -z "$only" || "$only" == pitr ]] || { echo "bench: --only takes pitr" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
edms="$repo/runtime/edms-backup"
pgbin=/usr/lib/postgresql/15/bin
# shellcheck source=SCRIPTDIR/lib.sh
source "$repo/bench/lib.sh"
bench_dir edms-bench

# --- two throwaway clusters: the source instance and the new one ------------------------
stop_all() {
  [[ -z "${receiver_pid:-}" ]] || { kill -TERM "$receiver_pid" 2>/dev/null; wait "$receiver_pid" 2>/dev/null; } || true
  [[ ! -f "$dir/sftp/sshd.pid" ]] || bash "$repo/test/bed/sshd.sh" stop "$dir/sftp"
  stop_clusters
}
trap stop_all EXIT

src_env=(PGHOST="$dir/source" PGPORT=55501 PGUSER=edms PGDATABASE=edms)
dst_env=(PGHOST="$dir/target" PGPORT=55502 PGUSER=edms PGDATABASE=edms)
log "starting two PostgreSQL 15 clusters in $dir"
start_cluster source 55501
start_cluster target 55502
rm -f "$dir/seed-restore-cpu"

# --- EDMS-shaped data ----------------------------------------------------------------------
generate_database() {
  # Per unit: a document (title, body), two versions (bytea), ten audit rows (jsonb), a
  # session: about 3.6 KB on disk with the indexes an EDMS has.
  local units=$((db_mb * 325))
  env "${src_env[@]}" createdb edms
  env "${src_env[@]}" psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TABLE users_user (id serial PRIMARY KEY, username text UNIQUE, email text, password text, is_active boolean DEFAULT true);
INSERT INTO users_user (username, email, password)
  SELECT 'user' || g, 'user' || g || '@example.org', 'pbkdf2_sha256\$870000\$' || md5(g::text) || '\$' || encode(sha256(g::text::bytea), 'base64') FROM generate_series(1, 2000) g;
CREATE TABLE documents_document (id serial PRIMARY KEY, number text UNIQUE, title text, status text, author_id int REFERENCES users_user, body text, created timestamptz);
INSERT INTO documents_document (number, title, status, author_id, body, created)
  SELECT 'SOP-' || g, 'Document ' || g, (ARRAY['DRAFT','REVIEWED','APPROVED','EFFECTIVE'])[1 + g % 4], 1 + g % 2000,
         'Procedure step ' || g || ': the operator checks record ' || md5(g::text) || ' and signs it; reference '
           || md5((g * 7)::text) || ', ' || md5((g * 13)::text) || ', ' || md5((g * 31)::text) || '. '
           || repeat('The approved procedure applies to all sites. ', 3), now() - g * interval '1 minute'
    FROM generate_series(1, $units) g;
CREATE TABLE documents_documentversion (id serial PRIMARY KEY, document_id int REFERENCES documents_document, version int, checksum bytea);
INSERT INTO documents_documentversion (document_id, version, checksum)
  SELECT 1 + g % $units, g, sha256(g::text::bytea) FROM generate_series(1, 2 * $units) g;
CREATE INDEX ON documents_documentversion (document_id);
CREATE TABLE audit_audittrail (id bigserial PRIMARY KEY, user_id int, action text, at timestamptz, details jsonb);
INSERT INTO audit_audittrail (user_id, action, at, details)
  SELECT 1 + g % 2000, (ARRAY['VIEW','EDIT','APPROVE','LOGIN'])[1 + g % 4], now() - g * interval '1 second',
         jsonb_build_object('document', g % $units, 'ip', '10.0.' || g % 250 || '.' || g % 200, 'agent', 'Mozilla/5.0 (X11; Linux x86_64)', 'n', g)
    FROM generate_series(1, 10 * $units) g;
CREATE INDEX ON audit_audittrail (user_id, at);
CREATE TABLE django_session (session_key text PRIMARY KEY, session_data text, expire_date timestamptz);
INSERT INTO django_session SELECT md5(g::text), encode(sha256(g::text::bytea), 'base64'), now() FROM generate_series(1, $units / 4) g;
VACUUM ANALYZE;
SQL
}

generate_storage() {
  # Files of 20 KB to 1 MB in documents/YYYY/MM: 70% of the bytes random (PDF, DOCX,
  # images), 30% text.
  local root=$1 total=$((storage_mb * 1024 * 1024)) written=0 i=0 size folder
  rm -rf "${root:?}" && mkdir -p "$root" # a --dir used before holds an older tree
  local text
  text=$(for w in $(seq 1 400); do printf 'Section %d: the approved procedure applies to all sites. ' "$w"; done)
  while ((written < total)); do
    size=$(((RANDOM * 32768 + RANDOM) % (1000 * 1024) + 20 * 1024))
    folder="$root/documents/$((2020 + i % 6))/$(printf %02d $((1 + i % 12)))"
    mkdir -p "$folder"
    if ((i % 10 < 7)); then
      head -c "$size" /dev/urandom >"$folder/doc-$i.pdf"
    else
      while :; do printf '%s\n' "$text"; done 2>/dev/null | head -c "$size" >"$folder/doc-$i.txt"
    fi
    written=$((written + size))
    i=$((i + 1))
  done
  echo "$i"
}

# change_storage ROOT PERCENT: rewrites about PERCENT% of the bytes, as a day of use does.
change_storage() {
  local root=$1 percent=$2 total target changed=0 file size
  total=$(du -sb "$root" | cut -f1)
  target=$((total * percent / 100))
  while IFS= read -r -d '' file; do
    size=$(stat -c %s "$file")
    head -c "$size" /dev/urandom >"$file"
    changed=$((changed + size))
    ((changed >= target)) && break
  done < <(find "$root" -type f -name '*.pdf' -print0 | shuf -z --random-source=<(yes))
  echo "$changed"
}

log "generating about $db_mb MB of database"
generate_database
db_size=$(env "${src_env[@]}" psql -X -A -t -c "SELECT pg_database_size('edms')")
log "generating about $storage_mb MB of storage"
files=$(generate_storage "$dir/storage")
storage_size=$(du -sb "$dir/storage" | cut -f1)
sync

# --- the two sides --------------------------------------------------------------------------

seed_backup() {
  rm -rf "${dir:?}/seed" && mkdir -p "$dir/seed"
  local t0
  t0=$(now)
  env "${src_env[@]}" pg_dump -Fc edms >"$dir/seed/db.dump"
  tar -czf "$dir/seed/storage.tar.gz" -C "$dir/storage" .
  sync -f "$dir/seed"
  elapsed "$t0" "$(now)"
}

seed_restore() {
  local t0 c0
  c0=$(busy) t0=$(now)
  env "${dst_env[@]}" createdb edms
  # As the seed's restore script runs it: from a pipe, with --clean --if-exists.
  # shellcheck disable=SC2002 # a pipe, not a file pg_restore could seek in
  cat "$dir/seed/db.dump" | env "${dst_env[@]}" pg_restore -d edms --clean --if-exists
  tar -xzf "$dir/seed/storage.tar.gz" -C "$dir/restored"
  sync -f "$dir/restored"
  elapsed "$c0" "$(busy)" >>"$dir/seed-restore-cpu"
  elapsed "$t0" "$(now)"
}

ours_env() {
  env "${src_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/storage" "$@"
}

ours_full() {
  rm -rf "${dir:?}/ours" && mkdir -p "$dir/ours"
  local t0
  t0=$(now)
  ours_env "$edms" backup >/dev/null 2>"$dir/ours.log"
  elapsed "$t0" "$(now)"
}

ours_repeat() {
  local t0
  env "${src_env[@]}" psql -X -q -c "INSERT INTO audit_audittrail (user_id, action, at) SELECT 1, 'VIEW', now() FROM generate_series(1, 1000)"
  change_storage "$dir/storage" 1 >"$dir/changed-bytes"
  sleep 1
  t0=$(now)
  ours_env "$edms" backup >/dev/null 2>"$dir/ours.log"
  elapsed "$t0" "$(now)"
}

ours_restore() {
  local id t0
  id=$(ours_env "$edms" list | sed -n 1p | cut -d' ' -f1)
  t0=$(now)
  env "${dst_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/restored" \
    "$edms" restore "$id" --yes >/dev/null 2>"$dir/ours-restore.log"
  sync -f "$dir/restored"
  elapsed "$t0" "$(now)"
}

reset_target() {
  env "${dst_env[@]}" dropdb --if-exists edms
  rm -rf "${dir:?}/restored" && mkdir -p "$dir/restored"
}


# quiet: what one side left behind (dirty pages, a pending checkpoint) must not be paid by
# the other; called before every timed step, outside its timing.
quiet() {
  env "${src_env[@]}" psql -X -q -d postgres -c CHECKPOINT
  env "${dst_env[@]}" psql -X -q -d postgres -c CHECKPOINT
  sync
}

# timed ARRAY STEP: runs STEP after quiet and appends its time to ARRAY. A restore starts
# from an empty target, emptied before quiet: deleting the previous restore's database and
# files makes work for the disk (ext4 mounted with discard trims the freed blocks at its
# next commit) that the restore timed next must not pay.
timed() {
  local -n times=$1
  log "round $r/$rounds: $2"
  if [[ "$2" == *_restore ]]; then reset_target; fi
  quiet
  times+=("$("$2")")
}

# in_turn A_ARRAY A_STEP B_ARRAY B_STEP: both steps, A first in odd rounds, B first in even.
in_turn() {
  if ((r % 2)); then
    timed "$1" "$2"
    timed "$3" "$4"
  else
    timed "$3" "$4"
    timed "$1" "$2"
  fi
}

declare -a t_seed_backup=() t_seed_restore=() t_full=() t_repeat=() t_restore=() t_local_alone=()
for ((r = 1; r <= rounds; r++)); do
  if [[ -n "$only" ]]; then
    timed t_full ours_full
    timed t_restore ours_restore
    continue
  fi
  in_turn t_seed_backup seed_backup t_full ours_full
  timed t_repeat ours_repeat
  in_turn t_seed_restore seed_restore t_restore ours_restore
done

# --- off-site: restic over sftp on loopback --------------------------------------------------
offsite_and_vault() {
log "off-site: starting OpenSSH's sftp store on loopback"
declare -gA sftp=()
while IFS='=' read -r key value; do sftp[$key]=$value; done < <(bash "$repo/test/bed/sshd.sh" start "$dir/sftp" 55522)
offsite_env=(RESTIC_REPOSITORY="${sftp[SFTP_BASE]}/bench" RESTIC_PASSWORD="bench pass phrase"
  EDMS_BACKUP_OFFSITE_SSH_KEY="${sftp[EDMS_BACKUP_OFFSITE_SSH_KEY]}" EDMS_BACKUP_OFFSITE_KNOWN_HOSTS="${sftp[EDMS_BACKUP_OFFSITE_KNOWN_HOSTS]}"
  EDMS_BACKUP_STACK=bench)
repo_bytes() { du -sb "$dir/sftp/repos/bench" 2>/dev/null | cut -f1 || echo 0; }
# offsite_push ID: prints seconds and the bytes it added to the repository.
offsite_push() {
  local before t0 seconds
  before=$(repo_bytes)
  quiet
  t0=$(now)
  ours_env env "${offsite_env[@]}" "$edms" offsite push "$1" >/dev/null 2>"$dir/offsite.log"
  seconds=$(elapsed "$t0" "$(now)")
  echo "$seconds $(($(repo_bytes) - before))"
}
r=off
ours_full >/dev/null
first_id=$(ours_env "$edms" list | sed -n 1p | cut -d' ' -f1)
log "off-site: full push of $first_id"
read -r push_full_s push_full_bytes < <(offsite_push "$first_id")
ours_repeat >/dev/null
repeat_id=$(ours_env "$edms" list | sed -n 1p | cut -d' ' -f1)
off_changed=$(<"$dir/changed-bytes")
# What restic must add at least: the changed documents (random bytes: incompressible) and
# the new dump, compressed with zstd at restic's default level.
dump_zstd=$(cat "$dir/ours/$repeat_id/db/"* | zstd -3 -T0 -c | wc -c)
off_bound=$((off_changed + dump_zstd))
log "off-site: repeat push of $repeat_id"
read -r push_repeat_s push_repeat_bytes < <(offsite_push "$repeat_id")
# Disaster: the local backups are gone; pull + restore onto an empty instance.
mv "$dir/ours" "$dir/ours-lost" && mkdir -p "$dir/ours"
reset_target
quiet
log "off-site: disaster restore of $repeat_id (pull + restore)"
c0=$(busy) t0=$(now)
env "${dst_env[@]}" "${offsite_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/restored" \
  "$edms" restore "$repeat_id" --yes >/dev/null 2>"$dir/disaster.log"
sync -f "$dir/restored"
disaster_s=$(elapsed "$t0" "$(now)") disaster_cpu=$(elapsed "$c0" "$(busy)")
rm -rf "${dir:?}/ours" && mv "$dir/ours-lost" "$dir/ours"

# --- the vault: restic copy from the off-site repository into a repository of its own ------
# A night after a 1% change: `edms-backup vault sync` against `restic copy` of the same
# snapshot alone (into a twin vault holding the same snapshots, with its own cache), in
# turn; then a disaster recovery from the vault (pull + restore) against `restic restore`
# of that snapshot alone + the local restore of the same backup alone.
vault_env=(RESTIC_REPOSITORY="$dir/vault/repository" RESTIC_PASSWORD="vault pass phrase"
  RESTIC_FROM_REPOSITORY="${sftp[SFTP_BASE]}/bench" RESTIC_FROM_PASSWORD="bench pass phrase"
  EDMS_BACKUP_OFFSITE_SSH_KEY="${sftp[EDMS_BACKUP_OFFSITE_SSH_KEY]}" EDMS_BACKUP_OFFSITE_KNOWN_HOSTS="${sftp[EDMS_BACKUP_OFFSITE_KNOWN_HOSTS]}"
  EDMS_BACKUP_STACK=bench EDMS_BACKUP_DIR="$dir/vault" EDMS_BACKUP_SCHEDULE="* * * * *")
twin_env=(RESTIC_REPOSITORY="$dir/twin" RESTIC_PASSWORD="vault pass phrase"
  RESTIC_FROM_REPOSITORY="${sftp[SFTP_BASE]}/bench" RESTIC_FROM_PASSWORD="bench pass phrase"
  EDMS_BACKUP_OFFSITE_SSH_KEY="${sftp[EDMS_BACKUP_OFFSITE_SSH_KEY]}" EDMS_BACKUP_OFFSITE_KNOWN_HOSTS="${sftp[EDMS_BACKUP_OFFSITE_KNOWN_HOSTS]}"
  PATH="$repo/runtime/share/offsite-ssh:$PATH")
twin_restic() { env "${twin_env[@]}" restic --cache-dir "$dir/twin-cache" "$@"; }
vault_sync() {
  local t0
  t0=$(now)
  env "${vault_env[@]}" "$edms" vault sync >/dev/null 2>"$dir/vault.log"
  elapsed "$t0" "$(now)"
}
copy_alone() {
  local t0
  t0=$(now)
  twin_restic --no-lock copy "$night_snap" >/dev/null 2>&1
  elapsed "$t0" "$(now)"
}
log "vault: the first sync, and the twin made with restic copy"
mkdir -p "$dir/vault"
env "${vault_env[@]}" "$edms" vault sync >/dev/null 2>"$dir/vault.log"
twin_restic init --copy-chunker-params >/dev/null 2>&1
twin_restic --no-lock copy >/dev/null 2>&1
declare -ga t_vault=() t_copy=()
for r in 1 2; do
  ours_repeat >/dev/null
  night_id=$(ours_env "$edms" list | sed -n 1p | cut -d' ' -f1)
  ours_env env "${offsite_env[@]}" "$edms" offsite push "$night_id" >/dev/null 2>"$dir/offsite.log"
  night_snap=$(ours_env env "${offsite_env[@]}" "$edms" offsite list | sed -n 1p | sed 's/.*snapshot //')
  in_turn t_vault vault_sync t_copy copy_alone
done
# Disaster recovery from the vault: the local backups gone, an empty instance.
vault_snap=$(env "${vault_env[@]}" "$edms" vault list | sed -n 1p | sed 's/.*snapshot //')
rm -rf "${dir:?}/restic-alone" && quiet
log "vault: restic restore of $night_id alone"
t0=$(now)
env "${vault_env[@]}" restic --cache-dir "$dir/vault/.offsite-cache" restore "$vault_snap" --target "$dir/restic-alone" >/dev/null 2>&1
sync -f "$dir/restic-alone"
vault_restic_s=$(elapsed "$t0" "$(now)")
rm -rf "${dir:?}/restic-alone"
r=vault
timed t_local_alone ours_restore
mv "$dir/ours" "$dir/ours-lost" && mkdir -p "$dir/ours"
reset_target
quiet
log "vault: disaster recovery of $night_id from the vault (pull + restore)"
t0=$(now)
env "${dst_env[@]}" RESTIC_REPOSITORY="$dir/vault/repository" RESTIC_PASSWORD="vault pass phrase" EDMS_BACKUP_STACK=bench \
  EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/restored" "$edms" restore "$night_id" --yes >/dev/null 2>"$dir/vault-dr.log"
sync -f "$dir/restored"
vault_dr_s=$(elapsed "$t0" "$(now)")
rm -rf "${dir:?}/ours" && mv "$dir/ours-lost" "$dir/ours"
vault_parts=$(awk -v a="$vault_restic_s" -v b="${t_local_alone[0]}" 'BEGIN { printf "%.3f", a + b }')

# What the last repeat backup added to the disk (blocks not shared with the backup before).
mapfile -t ids < <(ours_env "$edms" list | cut -d' ' -f1)
added=$(du -sk "$dir/ours/${ids[1]}" "$dir/ours/${ids[0]}" | sed -n 2p | cut -f1)
dump_kib=$(du -sk "$dir/ours/${ids[0]}/db" | cut -f1)
seed_size=$(du -sk "$dir/seed" | cut -f1)
seed_dump_kib=$(du -sk "$dir/seed/db.dump" | cut -f1)
# Issue 18's disk target: what a night adds, against the seed's pg_dump -Fc + the changed files.
disk_bound_kib=$((seed_dump_kib + $(<"$dir/changed-bytes") / 1024))
changed_bytes=$(<"$dir/changed-bytes")
full_size=$(du -sk "$dir/ours/${ids[1]}" | cut -f1)
}
[[ -n "$only" ]] || offsite_and_vault

# --- point-in-time recovery: the WAL receiver's lag, and a restore to a time ----------------
# RPO: with a writer committing, how long after each commit its WAL is safe in the backup
# volume (the slot's flushed position reaches the commit's LSN; pg_receivewal --synchronous).
# Then an hour's writes (a tenth of the documents updated, their versions and audit rows
# added) after a base backup, and a restore to the time after them onto the new instance,
# against the nightly backup's restore there (the median above).
log "point in time: base backup, receiver, RPO"
ours_env EDMS_BACKUP_STACK=bench "$edms" wal receive >/dev/null 2>"$dir/wal.log" &
receiver_pid=$!
ours_env "$edms" basebackup >/dev/null 2>"$dir/basebackup.log"
for _ in $(seq 1 100); do [[ -s "$dir/ours/pitr/wal/.received" ]] && break; sleep 0.2; done
declare -a t_rpo=()
for k in $(seq 1 20); do
  lsn=$(env "${src_env[@]}" psql -X -A -t -c "INSERT INTO audit_audittrail (user_id, action, at) VALUES (1, 'RPO $k', now())" -c "SELECT pg_current_wal_lsn()" | tail -n 1)
  t0=$(now)
  until [[ "$(env "${src_env[@]}" psql -X -A -t -c "SELECT restart_lsn >= '$lsn' FROM pg_replication_slots WHERE slot_name = 'edms_backup_bench'")" == t ]]; do sleep 0.01; done
  t_rpo+=("$(elapsed "$t0" "$(now)")")
  sleep 0.2
done
log "point in time: an hour's writes, then a restore to the time after them"
env "${src_env[@]}" psql -X -q -c "UPDATE documents_document SET title = title || ' (edited)' WHERE id % 10 = 0" \
  -c "INSERT INTO audit_audittrail (user_id, action, at) SELECT 1, 'EDIT', now() FROM generate_series(1, 20000)"
sleep 2
pitr_time=$(date -u '+%Y-%m-%d %H:%M:%S')
sleep 2
ours_env "$edms" storage-point >/dev/null 2>>"$dir/basebackup.log"
for _ in $(seq 1 100); do received=$(<"$dir/ours/pitr/wal/.received"); ((${received%.*} > $(date -u -d "$pitr_time" +%s))) && break; sleep 0.2; done
reset_target
quiet
t0=$(now)
# Each step's time into pitr-steps (where the time goes, for docs/performance.md).
cat >"$dir/step-hook" <<'HOOK'
#!/bin/sh
printf '%s %s\n' "$(date +%s.%N)" "$1" >>"${0%/*}/pitr-steps"
HOOK
chmod +x "$dir/step-hook"
env "${dst_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/restored" EDMS_BACKUP_STEP_HOOK="$dir/step-hook" \
  "$edms" restore --to "$pitr_time" --yes >/dev/null 2>"$dir/pitr-restore.log"
sync -f "$dir/restored"
pitr_s=$(elapsed "$t0" "$(now)")
awk -v t0="$t0" '{ printf "    %7.2f s  %s\n", $1 - t0, $2 }' "$dir/pitr-steps" >"$dir/pitr-steps.report"
kill -TERM "$receiver_pid" 2>/dev/null || true
wait "$receiver_pid" 2>/dev/null || true
receiver_pid=""
rpo_max=$(printf '%s\n' "${t_rpo[@]}" | sort -g | tail -n 1)

m() { printf '%s\n' "$@" | median; }
of=$(m "${t_full[@]}") ors=$(m "${t_restore[@]}")

cat <<REPORT

edms-backup benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB
  data: database $((db_size / 1048576)) MB ($(env "${src_env[@]}" psql -X -A -t -c "SELECT count(*) FROM audit_audittrail") audit rows), storage $((storage_size / 1048576)) MB in $files files (70% incompressible)
  tools: $(pg_dump --version), $(tar --version | head -n 1), $(gzip --version | head -n 1), $(openssl version 2>/dev/null | cut -d' ' -f1,2)
  rounds: $rounds, alternating; medians in seconds
REPORT

full_report() {
  local sb sr orp sr_cpu disaster_floor
  sb=$(m "${t_seed_backup[@]}") sr=$(m "${t_seed_restore[@]}") orp=$(m "${t_repeat[@]}")
  # The disaster restore's floor on this machine: its work spread over every core.
  sr_cpu=$(median <"$dir/seed-restore-cpu") disaster_floor=$(awk -v c="$disaster_cpu" -v n="$(nproc)" 'BEGIN { printf "%.3f", c / n }')
  cat <<REPORT

                         seed       edms-backup   ratio   target
  full backup          $(printf '%8.2f' "$sb")     $(printf '%8.2f' "$of")      $(printf '%5.2f' "$(ratio "$of" "$sb")")   <= 0.30
  repeat backup (1%)   $(printf '%8.2f' "$sb")     $(printf '%8.2f' "$orp")      $(printf '%5.2f' "$(ratio "$orp" "$sb")")   <= 0.25
  restore (new inst.)  $(printf '%8.2f' "$sr")     $(printf '%8.2f' "$ors")      $(printf '%5.2f' "$(ratio "$ors" "$sr")")   <= 0.65

  each round, in order: seed backup ${t_seed_backup[*]}
                        full ${t_full[*]}, repeat ${t_repeat[*]}
                        seed restore ${t_seed_restore[*]}
                        restore ${t_restore[*]}

  sizes: seed backup $((seed_size / 1024)) MB, edms-backup full $((full_size / 1024)) MB
  repeat backup added $((added / 1024)) MB to the disk: its dump $((dump_kib / 1024)) MB + changed files $((changed_bytes / 1048576)) MB (+ manifests and indexes)
    against the seed's pg_dump -Fc $((seed_dump_kib / 1024)) MB + changed files = $((disk_bound_kib / 1024)) MB   ratio $(printf '%5.2f' "$(ratio "$added" "$disk_bound_kib")")   <= 1.25

  off-site (restic $(restic version | cut -d' ' -f2) over sftp on loopback), one run each:
    full push            $(printf '%8.2f' "$push_full_s") s   $((push_full_bytes / 1048576)) MB added to the repository (local backup $((full_size / 1024)) MB)
    repeat push (1%)     $(printf '%8.2f' "$push_repeat_s") s   $((push_repeat_bytes / 1048576)) MB added; changed files $((off_changed / 1048576)) MB + dump zstd $((dump_zstd / 1048576)) MB = $((off_bound / 1048576)) MB   ratio $(printf '%5.2f' "$(ratio "$push_repeat_bytes" "$off_bound")")   <= 1.10
    disaster restore     $(printf '%8.2f' "$disaster_s") s   pull + restore, local backups gone; seed restore $(printf '%.2f' "$sr") s   ratio $(printf '%5.2f' "$(ratio "$disaster_s" "$sr")")   <= 1.00
      CPU it used        $(printf '%8.2f' "$disaster_cpu") core-s (the sftp server's on loopback included; seed restore $(printf '%.2f' "$sr_cpu") core-s):
                         on $(nproc) cores no less than $(printf '%.2f' "$disaster_floor") s, ratio $(printf '%5.2f' "$(ratio "$disaster_floor" "$sr")") to the seed's restore time

  vault (restic copy from the off-site repository into a repository on this disk), a night after a 1% change, in turn:
    vault sync           $(printf '%8.2f' "$(m "${t_vault[@]}")") s   restic copy alone $(printf '%.2f' "$(m "${t_copy[@]}")") s   ratio $(printf '%5.2f' "$(ratio "$(m "${t_vault[@]}")" "$(m "${t_copy[@]}")")")   <= 1.50   (each: ${t_vault[*]} / ${t_copy[*]})
    recovery from vault  $(printf '%8.2f' "$vault_dr_s") s   restic restore alone $(printf '%.2f' "$vault_restic_s") s + local restore alone $(printf '%.2f' "${t_local_alone[0]}") s = $(printf '%.2f' "$vault_parts") s   ratio $(printf '%5.2f' "$(ratio "$vault_dr_s" "$vault_parts")")   <= 1.00
REPORT
}
if [[ -z "$only" ]]; then
  full_report
else
  printf '\n  nightly backup %s s, its restore onto the new instance %s s (each round: %s / %s)\n' "$of" "$ors" "${t_full[*]}" "${t_restore[*]}"
fi

cat <<REPORT
  point in time (pg_receivewal --synchronous through a slot into the backup volume):
    RPO, commit to WAL safe  median $(printf '%.3f' "$(m "${t_rpo[@]}")") s, max $(printf '%.3f' "$rpo_max") s over ${#t_rpo[@]} commits   <= 10 s
    restore to a time    $(printf '%8.2f' "$pitr_s") s   (base backup + an hour's writes replayed, dumped, restored) vs the nightly restore $(printf '%.2f' "$ors") s   ratio $(printf '%5.2f' "$(ratio "$pitr_s" "$ors")")   <= 1.50
    its steps, from its start:
$(cat "$dir/pitr-steps.report")
REPORT
