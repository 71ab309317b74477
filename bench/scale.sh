#!/usr/bin/env bash
# Usage: bench/scale.sh [--files N[,N...]] [--dir DIR] [--keep] [--warm]
#
# How edms-backup's storage work grows with the number of files (issue 18). For each N
# (default 100000,1000000) it generates N documents of 1-4 KB in folders of 1,000, then
# times, in the same run, edms-backup against what the system's own tools take on the same
# tree, and prints the ratios side by side:
#   first backup              vs  cp -a of the tree
#   repeat, nothing changed   vs  cp -al of the previous copy (a hard-link farm)
#   repeat, 1% changed        vs  cp -al + copying the changed files
#   verify                    vs  sha256sum -c SHA256SUMS (one process)
#   restore onto empty folders vs cp -a of the backup's copy
# edms-backup's figures are without its database part: the same command on an empty
# storage folder (a tiny database) is timed apart and subtracted. Peak RSS is the largest
# of any process of the command (GNU time's %M), the per-file cost is the time over N.
# Every step starts from a cold page cache (timed), or with --warm from whatever the steps
# before it left cached (the tree just generated, the backup just written).
# Needs root, the PostgreSQL 15 server binaries and GNU time (/usr/bin/time).
set -euo pipefail

counts=100000,1000000 keep="" dir="" warm=""
while (($#)); do
  case "$1" in
    --files) counts=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --warm) warm=yes; shift ;;
    -h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench: unknown argument '$1' (see --help)" >&2; exit 1 ;;
  esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
edms="$repo/runtime/edms-backup"
pgbin=/usr/lib/postgresql/15/bin
# shellcheck source=SCRIPTDIR/lib.sh
source "$repo/bench/lib.sh"
bench_dir edms-scale
trap stop_clusters EXIT

src_env=(PGHOST="$dir/source" PGPORT=55511 PGUSER=edms PGDATABASE=edms)
dst_env=(PGHOST="$dir/target" PGPORT=55512 PGUSER=edms PGDATABASE=edms)
log "starting two PostgreSQL 15 clusters in $dir"
start_cluster source 55511
start_cluster target 55512
env "${src_env[@]}" createdb edms
env "${src_env[@]}" psql -X -q -v ON_ERROR_STOP=1 \
  -c "CREATE TABLE documents_document (id serial PRIMARY KEY, title text)" \
  -c "INSERT INTO documents_document (title) SELECT 'Document ' || g FROM generate_series(1, 1000) g"

# generate ROOT N: N files of 1-4 KB, 1,000 to a folder, in one process.
generate() {
  rm -rf "${1:?}" && mkdir -p "$1"
  mawk -v n="$2" -v root="$1" 'BEGIN {
    srand(1); for (i = 0; i < 4200; i++) s = s sprintf("%c", 33 + int(rand() * 90))
    for (i = 0; i < n; i++) {
      if (i % 1000 == 0) { d = root "/documents/" int(i / 1000); system("mkdir -p " d) }
      f = d "/doc-" i ".pdf"; size = 1024 + int(rand() * 3072)
      printf "%d\n%s", i, substr(s, 1 + int(rand() * (4200 - size)), size) > f; close(f)
    } }'
}

# change ROOT: rewrites 1% of the files (every 100th); prints their bytes.
change() {
  find "$1" -type f -name '*0.pdf' -print0 | sed -z -n '0~10p' >"$dir/changed"
  xargs -0 -r sed -i -e '1s/$/ changed/' <"$dir/changed"
  xargs -0 -r du -cb <"$dir/changed" | tail -n 1 | cut -f1
}

# timed NAME CMD...: runs CMD from a cold page cache, sets t_NAME (seconds) and rss_NAME
# (KiB). Cold, as a nightly run finds its trees, and the same for each side: otherwise
# whichever step read a tree last (computing ref.sums before sha256sum -c, cp -a before
# the first backup) would hand the next one a warm cache (and this VM evicts pages
# untouched for 60 s, so a tree written minutes ago is cold anyway). On tmpfs both stay in
# memory either way.
timed() {
  local name=$1 t0
  shift
  drop_caches
  log "$name"
  t0=$(now)
  /usr/bin/time -f %M -o "$dir/rss" "$@" >/dev/null 2>"$dir/$name.log"
  printf -v "t_$name" '%s' "$(elapsed "$t0" "$(now)")"
  printf -v "rss_$name" '%s' "$(tail -n 1 "$dir/rss")"
}

# drop_caches: the page cache emptied (root), so that the next step reads from the disk.
drop_caches() {
  sync
  [[ -z "$warm" ]] || return 0
  echo 3 >/proc/sys/vm/drop_caches
}

# Commands, not functions: GNU time runs them.
ours=(env "${src_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/storage" "$edms")
ours_empty=(env "${src_env[@]}" EDMS_BACKUP_DIR="$dir/ours-empty" EDMS_BACKUP_STORAGE_DIRS="$dir/empty" "$edms")
restore_ours=(env "${dst_env[@]}" EDMS_BACKUP_DIR="$dir/ours" EDMS_BACKUP_STORAGE_DIRS="$dir/restored" "$edms" restore)
restore_empty=(env "${dst_env[@]}" EDMS_BACKUP_DIR="$dir/ours-empty" EDMS_BACKUP_STORAGE_DIRS="$dir/restored-empty" "$edms" restore)
newest() { find "$1" -mindepth 1 -maxdepth 1 -regextype posix-extended -regex '.*/[0-9]{8}_[0-9]{6}' -printf '%f\n' | sort | tail -n 1; }

# measure N: every figure for a tree of N files, as "name=value" lines in $dir/figures.N.
measure() {
  local n=$1 changed_bytes peak=0 name
  log "$n files: generating"
  generate "$dir/storage" "$n"
  rm -rf "${dir:?}"/{ours,ours-empty,ref,ref-links,ref-repeat,empty,restored,restored-empty}
  mkdir -p "$dir"/{ours,ours-empty,empty,restored,restored-empty}
  # The database part, apart: the same commands on an empty storage folder.
  timed db_backup "${ours_empty[@]}" backup
  # Twice, as the timed restore below finds it: the target database there, so checked
  # first and saved by a safety backup.
  "${restore_empty[@]}" "$(newest "$dir/ours-empty")" --yes >/dev/null 2>&1
  timed db_restore "${restore_empty[@]}" "$(newest "$dir/ours-empty")" --yes

  timed cp_a cp -a "$dir/storage" "$dir/ref"
  timed first "${ours[@]}" backup
  timed cp_al cp -al "$dir/ref" "$dir/ref-links"
  timed find find "$dir/storage" -printf '%s %T@ %C@ %i %P\0'
  timed unchanged "${ours[@]}" backup
  changed_bytes=$(change "$dir/storage")
  # The reference for the changed night: the hard-link farm, then the changed files copied.
  rm -rf "${dir:?}/ref-links"
  timed cp_al2 cp -al "$dir/ref" "$dir/ref-repeat"
  # shellcheck disable=SC2016 # expanded by the inner bash
  timed cp_changed bash -c 'cd "$1" && sed -z "s|^$1/||" "$2" | tar --null -T - -cf - | tar -xf - -C "$3"' _ "$dir/storage" "$dir/changed" "$dir/ref-repeat"
  timed changed "${ours[@]}" backup
  (cd "$dir/ref" && find . -type f -print0 | xargs -0 -P2 -n 5000 sha256sum >"$dir/ref.sums")
  # shellcheck disable=SC2016 # expanded by the inner bash
  timed sha256sum_c bash -c 'cd "$1" && sha256sum --quiet -c "$2"' _ "$dir/ref" "$dir/ref.sums"
  timed verify "${ours[@]}" verify "$(newest "$dir/ours")"
  timed restore "${restore_ours[@]}" "$(newest "$dir/ours")" --yes
  for name in db_backup db_restore first unchanged changed verify restore; do
    local -n r="rss_$name"
    ((r > peak)) && peak=$r
  done
  {
    for name in db_backup db_restore cp_a first cp_al find unchanged cp_al2 cp_changed changed sha256sum_c verify restore; do
      local -n v="t_$name"
      printf '%s=%s\n' "$name" "$v"
    done
    printf 'changed_bytes=%s\npeak_rss=%s\n' "$changed_bytes" "$peak"
  } >"$dir/figures.$n"
  rm -rf "${dir:?}"/{ours,ours-empty,ref,ref-repeat,restored,restored-empty}
}

IFS=, read -r -a sizes <<<"$counts"
for n in "${sizes[@]}"; do measure "$n"; done

# --- report -----------------------------------------------------------------------------------
declare -A f=()
for n in "${sizes[@]}"; do
  while IFS='=' read -r key value; do f[$n.$key]=$value; done <"$dir/figures.$n"
done
sub() { awk -v a="$1" -v b="$2" 'BEGIN { v = a - b; printf "%.2f\n", (v > 0 ? v : 0) }'; }
# row LABEL TARGET OURS_KEY DB_KEY REF_EXPR: one line, each size's "ours ref ratio".
row() {
  local label=$1 target=$2 key=$3 db=$4 refkeys=$5 n o ref k line
  line=$(printf '  %-26s' "$label")
  for n in "${sizes[@]}"; do
    o=$(sub "${f[$n.$key]}" "${db:+${f[$n.$db]}}")
    ref=0
    for k in ${refkeys//+/ }; do ref=$(awk -v a="$ref" -v b="${f[$n.$k]}" 'BEGIN { print a + b }'); done
    line+=$(printf ' %8.2f %8.2f %6.2f  ' "$o" "$ref" "$(ratio "$o" "$ref")")
  done
  printf '%s %s\n' "$line" "$target"
}
header=$(printf '  %-26s' "") columns=$header
for n in "${sizes[@]}"; do
  header+=$(printf ' %-26s' "$n files")
  columns+=$(printf ' %8s %8s %6s  ' ours ref ratio)
done

cat <<REPORT

edms-backup scale benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(free -g | awk '/Mem:/ { print $2 }') GiB
  trees: 1-4 KB files, 1,000 to a folder; 1% changed = every 100th file; seconds, one run
  edms-backup's figures exclude its database part (backup $(for n in "${sizes[@]}"; do printf '%s s ' "${f[$n.db_backup]}"; done), restore $(for n in "${sizes[@]}"; do printf '%s s ' "${f[$n.db_restore]}"; done)on an empty folder)

$header
$columns target
$(row "first backup" "<= 1.5 x cp -a" first db_backup cp_a)
$(row "repeat, nothing changed" "<= 2 x cp -al" unchanged db_backup cp_al)
$(row "repeat, 1% changed" "<= 2 x (cp -al + copy)" changed db_backup cp_al2+cp_changed)
$(row "verify" "<= 1 x sha256sum -c" verify "" sha256sum_c)
$(row "restore onto empty folders" "<= 1.3 x cp -a" restore db_restore cp_a)

  peak RSS of any process (MB): $(for n in "${sizes[@]}"; do printf '%s files %s  ' "$n" "$((${f[$n.peak_rss]} / 1024))"; done)  target <= 200 at 1M
  per file (µs, first / unchanged / verify / restore): $(for n in "${sizes[@]}"; do
  printf '%s files %s  ' "$n" "$(awk -v n="$n" -v a="$(sub "${f[$n.first]}" "${f[$n.db_backup]}")" -v b="$(sub "${f[$n.unchanged]}" "${f[$n.db_backup]}")" \
    -v c="${f[$n.verify]}" -v d="$(sub "${f[$n.restore]}" "${f[$n.db_restore]}")" 'BEGIN { printf "%.0f/%.0f/%.0f/%.0f", a * 1e6 / n, b * 1e6 / n, c * 1e6 / n, d * 1e6 / n }')"
done)
REPORT
