# shellcheck shell=bash
# shellcheck disable=SC2154 # pgbin and keep are the sourcing script's
# Helpers both benchmarks share: their folder, throwaway PostgreSQL 15 clusters in it,
# timing and ratios. Reads: dir pgbin keep.

# bench_dir NAME: $dir, made if absent (mktemp /tmp/NAME.XXXXXX without --dir), readable by
# the postgres user who runs the clusters in it.
bench_dir() {
  dir=${dir:-$(mktemp -d "/tmp/$1.XXXXXX")}
  mkdir -p "$dir"
  chmod 755 "$dir"
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# start_cluster NAME PORT: a cluster in $dir/NAME, its socket in that folder, no TCP.
start_cluster() {
  local name=$1 port=$2
  rm -rf "${dir:?}/$name"
  mkdir -p "$dir/$name"
  chown postgres "$dir/$name"
  runuser -u postgres -- "$pgbin/initdb" -D "$dir/$name/data" -U edms --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$dir/$name/data" -l "$dir/$name/log" -w \
    -o "-p $port -k $dir/$name -c listen_addresses='' -c shared_buffers=256MB -c max_wal_size=4GB" start >/dev/null
}

# stop_clusters: every cluster under $dir stopped; $dir removed unless --keep.
stop_clusters() {
  local data
  for data in "$dir"/*/data; do
    [[ -f "$data/postmaster.pid" ]] || continue
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  done
  if [[ -z "$keep" ]]; then rm -rf "${dir:?}"; fi
}

now() { date +%s.%N; }
# busy: the core-seconds this machine has been busy so far (user, nice, system, irq, softirq).
busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }'; }

median() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
