# shellcheck shell=bash
# verify_backup ID: dies naming the first problem found in backup ID. Shared by verify
# and restore (which checks a backup before it changes anything).

verify_backup() {
  local id=$1 dir="$edms_dir/$1" listed files err part i expected actual
  listed=$(wc -l <"$dir/SHA256SUMS")
  files=$(cd "$dir" && find . -type f ! -path ./SHA256SUMS -printf . | wc -c)
  ((files == listed)) ||
    die "backup $id is damaged: it holds $files files but SHA256SUMS lists $listed (files added or removed)"

  # Two halves checked at once: hashing is what verification spends its time on.
  local parts
  parts=$(mktemp -d)
  split --number=l/"$edms_jobs" -- "$dir/SHA256SUMS" "$parts/part."
  local -a pids=()
  for part in "$parts"/part.*; do
    (cd "$dir" && sha256sum --check --quiet --strict -- "$part" >"$part.out" 2>&1) &
    pids+=($!)
  done
  local failed=""
  for part in "${pids[@]}"; do
    wait "$part" || failed=yes
  done
  if [[ -n "$failed" ]]; then
    err=$(cat "$parts"/part.*.out)
    rm -rf -- "$parts"
    die "backup $id is damaged: $(first_error_line "$err")$(more_lines "$err"): restore another backup (edms-backup list)"
  fi
  rm -rf -- "$parts"

  err=$(pg_restore --list "$dir/db" 2>&1 >/dev/null) ||
    die "backup $id is damaged: its database dump does not read back: $(first_error_line "$err")"
  err=$(tar -tzf "$dir/config.tar.gz" 2>&1 >/dev/null) ||
    die "backup $id is damaged: config.tar.gz does not read back: $(first_error_line "$err")"
  local count
  count=$(info_get "$id" storage_count || echo 0)
  for ((i = 1; i <= count; i++)); do
    [[ -d "$dir/storage-$i" ]] || die "backup $id is damaged: storage-$i/ is missing"
    expected=$(info_get "$id" "storage_${i}_entries")
    actual=$(find "$dir/storage-$i" -mindepth 1 -printf . | wc -c)
    ((expected == actual)) ||
      die "backup $id is damaged: storage-$i/ holds $actual entries, the backup recorded $expected"
  done
}

more_lines() {
  local n
  n=$(grep -c . <<<"$1" || true)
  ((n > 1)) && printf ' (and %d more problems)' "$((n - 1))"
  return 0
}
