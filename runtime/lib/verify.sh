# shellcheck shell=bash
# verify_backup ID: dies naming the first problem found in backup ID. Shared by verify
# and restore (which checks a backup before it changes anything).

# shellcheck source=SCRIPTDIR/hash.sh
source "$EDMS_BACKUP_ROOT/lib/hash.sh"

verify_backup() {
  local id=$1 dir="$edms_dir/$1" listed files err part i expected actual
  listed=$(wc -l <"$dir/SHA256SUMS")
  files=$(cd "$dir" && find . -type f ! -path ./SHA256SUMS -printf . | wc -c)
  ((files == listed)) ||
    die "backup $id is damaged: it holds $files files but SHA256SUMS lists $listed (files added or removed)"

  if ! verify_fast "$id"; then
    verify_with_sha256sum "$id"
  fi

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

# verify_fast ID: SHA256SUMS is exactly what meta/sums.z (the unescaped list the backup
# wrote it from) gives, and every file listed there has its recorded hash, hashed on all
# cores. Returns 1 on any disagreement, for verify_with_sha256sum to name the problem.
verify_fast() {
  local id=$1 dir="$edms_dir/$1" work record name expected actual
  [[ -f "$dir/meta/sums.z" ]] || return 1
  work=$(mktemp -d)
  {
    while IFS= read -r -d '' record; do
      sums_line "${record%%  *}" "${record#*  }"
    done <"$dir/meta/sums.z"
    (cd "$dir" && sha256sum meta/sums.z)
  } >"$work/expected"
  if ! cmp -s "$work/expected" "$dir/SHA256SUMS"; then
    rm -rf -- "$work"
    return 1
  fi
  while IFS= read -r -d '' record; do
    printf '%s\0' "${record#*  }"
  done <"$dir/meta/sums.z" >"$work/list"
  : >"$work/actual"
  if ! hash_files "$dir" "$work/list" "$work/actual" "$edms_jobs"; then
    rm -rf -- "$work"
    return 1
  fi
  local -A recorded=()
  while IFS= read -r -d '' record; do
    recorded[${record#*  }]=${record%%  *}
  done <"$dir/meta/sums.z"
  while IFS= read -r -d '' record; do
    name=${record#*  }
    actual=${record%%  *}
    expected=${recorded[$name]:-}
    if [[ "$actual" != "$expected" ]]; then
      rm -rf -- "$work"
      return 1
    fi
  done <"$work/actual"
  rm -rf -- "$work"
}

# verify_with_sha256sum ID: `sha256sum -c SHA256SUMS` in two halves at once; dies naming
# the first file that fails.
verify_with_sha256sum() {
  local id=$1 dir="$edms_dir/$1" parts part err failed=""
  parts=$(mktemp -d)
  split --number=l/"$edms_jobs" -- "$dir/SHA256SUMS" "$parts/part."
  local -a pids=()
  for part in "$parts"/part.*; do
    (cd "$dir" && sha256sum --check --quiet --strict -- "$part" >"$part.out" 2>&1) &
    pids+=($!)
  done
  for part in "${pids[@]}"; do
    wait "$part" || failed=yes
  done
  if [[ -n "$failed" ]]; then
    err=$(cat "$parts"/part.*.out)
    rm -rf -- "$parts"
    die "backup $id is damaged: $(first_error_line "$err")$(more_lines "$err"): restore another backup (edms-backup list)"
  fi
  rm -rf -- "$parts"
}

more_lines() {
  local n
  n=$(grep -c . <<<"$1" || true)
  ((n > 1)) && printf ' (and %d more problems)' "$((n - 1))"
  return 0
}
