# shellcheck shell=bash
# SHA-256 of many files on several cores, and the SHA256SUMS lines of the records. `openssl
# dgst` is used where present (it uses the CPU's SHA instructions: about 3.5 times
# coreutils' speed here); sha256sum otherwise, and always for names with a newline,
# carriage return or backslash, which openssl's one-line output cannot carry. Records are
# "HASH  NAME\0", as `sha256sum -z` writes them. Every list is a stream through awk, split
# and xargs: no work per file in bash (docs/performance.md, "Scale").

# Names per openssl start: as many as half the system's argument space holds (at most 1 MiB,
# about 40,000 names). Each start of OpenSSL 3 costs about 10 ms; xargs' default of
# 128 KiB started one every ~5,000 names (docs/performance.md, "Scale").
hash_batch_chars=$(getconf ARG_MAX 2>/dev/null || echo 262144)
hash_batch_chars=$((hash_batch_chars / 2 < 1048576 ? hash_batch_chars / 2 : 1048576))

# stream_awk ARGS...: awk on bytes (names are not text in any encoding).
stream_awk() {
  LC_ALL=C awk "$@"
}

# hash_files DIR LIST OUT JOBS: appends to OUT a record for each NUL-separated path of LIST
# (relative to DIR), hashing on JOBS processes: first the records of the plain names, then
# those of the special ones, each in LIST's order. Returns non-zero if a file cannot be read.
hash_files() {
  local dir=$1 list=$2 out=$3 jobs=$4 parts n lines rc=0
  parts=$(mktemp -d "$list.XXXXXX")
  n=$(hash_order 0 "$parts/plain" "$parts/special" <"$list")
  if ((n > 0)) && command -v openssl >/dev/null 2>&1; then
    openssl_digests "$dir" "$parts/plain" "$jobs" "$parts/openssl" || rc=1
    # "HASH *./NAME" lines to records; as many as names, or a file went unread.
    lines=$(stream_awk '
      substr($0, 65, 4) == " *./" && substr($0, 1, 64) ~ /^[0-9a-f]+$/ { printf "%s  %s%c", substr($0, 1, 64), substr($0, 69), 0; n++ }
      END { print n + 0 > "/dev/stderr" }' "$parts/openssl" 2>&1 >>"$out") || rc=1
    ((rc != 0 || lines == n)) || rc=1
  elif ((n > 0)); then
    cat -- "$parts/plain" "$parts/special" >"$parts/all" && mv -- "$parts/all" "$parts/special"
  fi
  if ((rc == 0)) && [[ -s "$parts/special" ]]; then
    (cd "$dir" && xargs -0 -r sha256sum -z -- <"$parts/special") >>"$out" || rc=1
  fi
  rm -rf -- "$parts"
  return "$rc"
}

# openssl_digests DIR LIST JOBS OUT: `openssl dgst -sha256 -r` of the files of LIST (plain
# names, relative to DIR) on JOBS processes: one line per file in LIST's order, "HASH
# *./NAME" (./ so that no name is taken for an option).
openssl_digests() {
  local dir=$1 list=$2 jobs=$3 out=$4 part failed=""
  local -a pids=()
  split --number=l/"$jobs" --separator='\0' --suffix-length=3 --numeric-suffixes -- "$list" "$out.part."
  for part in "$out".part.*; do
    (cd "$dir" && sed -z 's|^|./|' "$part" | xargs -0 -r -s "$hash_batch_chars" openssl dgst -sha256 -r >"$part.out") &
    pids+=($!)
  done
  for part in "${pids[@]}"; do
    wait "$part" || failed=yes
  done
  [[ -z "$failed" ]] && cat -- "$out".part.*.out >"$out"
  rm -f -- "$out".part.*
  [[ -z "$failed" ]]
}

# hash_order SKIP PLAIN SPECIAL: the NUL-separated records of stdin, split by their name
# (the record from character SKIP + 1 on) into PLAIN and SPECIAL (a newline, carriage
# return or backslash), each in stdin's order; prints how many are plain.
hash_order() {
  : >"$2"
  : >"$3"
  stream_awk -v skip="$1" -v plain="$2" -v special="$3" 'BEGIN { RS = "\0" }
    { if (substr($0, skip + 1) ~ /[\\\n\r]/) printf "%s%c", $0, 0 > special; else { printf "%s%c", $0, 0 > plain; n++ } }
    END { print n + 0 }'
}

# sums_lines: the SHA256SUMS lines of the records on stdin (sums_line_awk).
sums_lines() {
  stream_awk 'BEGIN { RS = "\0" } '"$sums_line_awk"' { print sums_line($0) }'
}

# sums_line_awk: sums_line(RECORD), the SHA256SUMS line of a record, its name escaped as
# sha256sum writes it (a leading backslash, then \\ \n \r) so that `sha256sum -c` reads it.
sums_line_awk='function sums_line(rec,   name, out, i, c) {
  name = substr(rec, 67)
  if (name !~ /[\\\n\r]/) return rec
  for (i = 1; i <= length(name); i++) {
    c = substr(name, i, 1)
    out = out (c == "\\" ? "\\\\" : c == "\n" ? "\\n" : c == "\r" ? "\\r" : c)
  }
  return "\\" substr(rec, 1, 66) out
}'

# sums_record_awk: sums_record(LINE), the record ("HASH  NAME") of a SHA256SUMS line, its
# name unescaped: sums_line undone. "" for a line sha256sum would not have written.
sums_record_awk='function sums_record(line,   escaped, name, out, i, c) {
  escaped = substr(line, 1, 1) == "\\"
  if (escaped) line = substr(line, 2)
  if (length(line) < 67 || substr(line, 1, 64) !~ /^[0-9a-f]+$/ || substr(line, 65, 2) != "  ") return ""
  name = substr(line, 67)
  if (!escaped) return line
  for (i = 1; i <= length(name); i++) {
    c = substr(name, i, 1)
    if (c == "\\") {
      c = substr(name, ++i, 1)
      if (c == "n") c = "\n"; else if (c == "r") c = "\r"; else if (c != "\\") return ""
    }
    out = out c
  }
  return substr(line, 1, 66) out
}'
