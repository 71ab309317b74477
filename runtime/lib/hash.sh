# shellcheck shell=bash
# SHA-256 of many files on several cores. `openssl dgst` is used where present (it uses the
# CPU's SHA instructions: about 3.5 times coreutils' speed here); sha256sum otherwise, and
# always for names with a newline, carriage return or backslash, which openssl's one-line
# output cannot carry. Records are "HASH  NAME\0", as `sha256sum -z` writes them.

# hash_files DIR LIST OUT JOBS: appends to OUT a record for each NUL-separated path of LIST
# (relative to DIR), hashing on JOBS processes. Returns non-zero if a file cannot be read.
hash_files() {
  local dir=$1 list=$2 out=$3 jobs=$4 path n=0 part failed=""
  local -a parts=() pids=()
  for ((part = 0; part < jobs; part++)); do
    parts+=("$list.part$part")
    : >"${parts[part]}"
  done
  while IFS= read -r -d '' path; do
    printf '%s\0' "$path" >>"${parts[n % jobs]}"
    n=$((n + 1))
  done <"$list"
  for part in "${parts[@]}"; do
    hash_part "$dir" "$part" "$part.out" &
    pids+=($!)
  done
  for part in "${pids[@]}"; do
    wait "$part" || failed=yes
  done
  for part in "${parts[@]}"; do
    [[ -f "$part.out" ]] && cat -- "$part.out" >>"$out"
    rm -f -- "$part" "$part.out" "$part.plain" "$part.special" "$part.openssl"
  done
  [[ -z "$failed" ]]
}

hash_part() {
  local dir=$1 list=$2 out=$3 path line
  : >"$out"
  : >"$list.plain"
  : >"$list.special"
  while IFS= read -r -d '' path; do
    if [[ "$path" == *[$'\n\r\\']* ]]; then
      printf '%s\0' "$path" >>"$list.special"
    else
      printf '%s\0' "$path" >>"$list.plain"
    fi
  done <"$list"
  if [[ -s "$list.plain" ]] && command -v openssl >/dev/null 2>&1; then
    # One output line per input file, in order: "HASH *NAME". Names are given as ./NAME so
    # that none is taken for an option.
    (cd "$dir" && sed -z 's|^|./|' <"$list.plain" | xargs -0 -r openssl dgst -sha256 -r) >"$list.openssl" || return 1
    while IFS= read -r -d '' path && IFS= read -r line <&3; do
      [[ "$line" =~ ^[0-9a-f]{64}\ \*\./(.*)$ && "${BASH_REMATCH[1]}" == "$path" ]] || return 1
      printf '%s  %s\0' "${line:0:64}" "$path"
    done <"$list.plain" 3<"$list.openssl" >>"$out"
  elif [[ -s "$list.plain" ]]; then
    cat -- "$list.plain" >>"$list.special"
  fi
  if [[ -s "$list.special" ]]; then
    (cd "$dir" && xargs -0 -r sha256sum -z -- <"$list.special") >>"$out" || return 1
  fi
  return 0
}
