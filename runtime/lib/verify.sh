# shellcheck shell=bash
# verify_backup ID: dies naming the first problem found in backup ID. Shared by verify
# and restore (which checks a backup before it changes anything).

# shellcheck source=SCRIPTDIR/hash.sh
source "$EDMS_BACKUP_ROOT/lib/hash.sh"

verify_backup() {
  check_layout "$edms_dir/$1" "backup $1 is damaged"
  if ! verify_fast "$1"; then
    verify_with_sha256sum "$1"
  fi
}

# report_torn ID: names the files backup ID recorded as written while it copied them:
# whole as stored, but perhaps not as the application wrote them.
report_torn() {
  local dir="$edms_dir/$1" i count n name names="" total=0
  count=$(kv_get "$dir/meta/info" storage_count || echo 0)
  for ((i = 1; i <= count; i++)); do
    n=$(kv_get "$dir/meta/info" "storage_${i}_torn" || echo 0)
    ((n > 0)) || continue
    total=$((total + n))
    while IFS= read -r -d '' name; do
      ((${#names} < 400)) && names+="${names:+, }storage-$i/$name"
    done <"$dir/meta/storage-$i.torn"
  done
  ((total == 0)) ||
    say "warning: backup $1 holds $total file(s) written while it copied them, recorded as torn (may be incomplete): ${names//[[:cntrl:]]/?}; take them from a later backup"
}

# check_layout DIR PROBLEM: the backup folder DIR is whole in its shape: SHA256SUMS lists
# every file, the dump's table of contents and the config archive read back, each storage
# copy holds the entries recorded in meta/info. Dies with "PROBLEM: <what>" otherwise.
# Backup runs it on a new folder before the rename; verify before hashing.
check_layout() {
  local dir=$1 problem=$2 listed files err i count n f
  local -a entries=() prune=()
  listed=$(wc -l <"$dir/SHA256SUMS")
  count=$(kv_get "$dir/meta/info" storage_count || echo 0)
  # One walk over the folder: the files beside the storage copies, then each copy's entries
  # and files.
  for ((i = 1; i <= count; i++)); do prune+=(-path "./storage-$i" -prune -o); done
  files=$(cd "$dir" && find . "${prune[@]}" -type f ! -path ./SHA256SUMS -printf . | wc -c)
  for ((i = 1; i <= count; i++)); do
    [[ -d "$dir/storage-$i" ]] || continue
    read -r n f < <(find "$dir/storage-$i" -mindepth 1 -printf '%y\n' | awk '{ n++ } $0 == "f" { f++ } END { print n + 0, f + 0 }')
    entries[i]=$n files=$((files + f))
  done
  ((files == listed)) ||
    die "$problem: it holds $files files but SHA256SUMS lists $listed (files added or removed)"
  err=$(pg_restore --list "$dir/db" 2>&1 >/dev/null) ||
    die "$problem: its database dump does not read back: $(first_error_line "$err")"
  err=$(tar -tzf "$dir/config.tar.gz" 2>&1 >/dev/null) ||
    die "$problem: config.tar.gz does not read back: $(first_error_line "$err")"
  for ((i = 1; i <= count; i++)); do
    [[ -n "${entries[i]+set}" ]] || die "$problem: storage-$i/ is missing"
    n=$(kv_get "$dir/meta/info" "storage_${i}_entries")
    ((n == entries[i])) ||
      die "$problem: storage-$i/ holds ${entries[i]} entries, the backup recorded $n"
  done
}

# verify_fast ID: every file SHA256SUMS lists has its recorded hash, hashed on all cores:
# by openssl, or by sha256sum -z for a name with a newline, carriage return or backslash
# (which SHA256SUMS holds escaped). Returns 1 on any disagreement or a line it does not read
# as sha256sum writes them, for verify_with_sha256sum to name the problem.
verify_fast() {
  local dir="$edms_dir/$1" work ok=yes
  command -v openssl >/dev/null 2>&1 || return 1
  work=$(mktemp -d)
  # One pass over SHA256SUMS: the plain names to hash with openssl and the lines it must
  # print; the other names, unescaped, and the records sha256sum -z must print.
  stream_awk -v w="$work/" "$sums_record_awk"'
    {
      rec = sums_record($0)
      if (rec == "") { bad = 1; exit }
      name = substr(rec, 67)
      if (substr($0, 1, 1) == "\\") { printf "%s%c", name, 0 > (w "special"); printf "%s%c", rec, 0 > (w "special.expected") }
      else { printf "%s%c", name, 0 > (w "plain"); print substr(rec, 1, 64) " *./" name > (w "plain.expected") }
    }
    END { exit bad }' "$dir/SHA256SUMS" || ok=""
  if [[ -n "$ok" && -f "$work/plain" ]]; then
    openssl_digests "$dir" "$work/plain" "$edms_jobs" "$work/plain.actual" &&
      cmp -s "$work/plain.expected" "$work/plain.actual" || ok=""
  fi
  if [[ -n "$ok" && -f "$work/special" ]]; then
    (cd "$dir" && xargs -0 -r sha256sum -z -- <"$work/special") >"$work/special.actual" &&
      cmp -s "$work/special.expected" "$work/special.actual" || ok=""
  fi
  rm -rf -- "$work"
  [[ -n "$ok" ]]
}

# verify_with_sha256sum ID: `sha256sum -c SHA256SUMS`, split in EDMS_BACKUP_JOBS parts
# checked at once; dies naming the first file that fails.
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
