# shellcheck shell=bash
# The dump's data files compressed by edms-backup rather than by pg_dump: gzip members of
# at most 8 MiB of rows each, compressed on every core, the end-of-data line a member of
# its own. pg_restore reads the members as one file (gzip -d does too), so the dump stays
# restorable by hand; edms-backup's restore loads ranges of members in several streams.
# meta/dump-members says where they are: "FILE ROW_OFFSET ROW_BYTES OFFSET BYTES" per
# member.
#
# Reads: edms_jobs

EDMS_MEMBER_MAX=$((8 << 20)) # rows per member at most
EDMS_MEMBER_MIN=$((1 << 20)) # a file up to this size is one member
EDMS_END_OF_DATA=$'\\.\n\n\n' # how pg_dump ends a data file of COPY rows

# compress_dump DIR LEVEL INDEX PARTS: the data files of the pg_dump directory DIR
# compressed in place at gzip LEVEL, their members listed in INDEX; PARTS is scratch.
# A few processes in all, not some per member: gzip -n stores no name or time, so the same
# rows give the same bytes, which off-site deduplication finds again.
compress_dump() {
  local dir=$1 level=$2 index=$3 parts=$4 size name small=() split=()
  mkdir -p -- "$parts"
  # pg_dump names its files by number: one per line. The members are cut in the same pass.
  while IFS=' ' read -r size name; do
    echo "$name.gz $size"
    if ((size <= EDMS_MEMBER_MIN)); then
      small+=("$dir/$name")
    elif cut_members "$dir/$name" "$size" "$parts/$name"; then
      split+=("$name")
    else
      rm -f -- "$parts/$name".*
      small+=("$dir/$name")
    fi
  done < <(find "$dir" -maxdepth 1 -type f -name '*.dat' ! -name toc.dat -printf '%s %f\n') >"$parts/sizes"
  find "$parts" -type f -name '*.dat.*' -printf '%f %s\n' >"$parts/raw"
  { ((${#small[@]} == 0)) || printf '%s\0' "${small[@]}"; find "$parts" -type f -name '*.dat.*' -print0; } |
    xargs -0 -r -n 4 -P "$edms_jobs" gzip -"$level" -n -- || return 1
  # The index: a file in one member too, so that a restore knows every file's rows.
  {
    find "$dir" -maxdepth 1 -type f -name '*.dat.gz' -printf '%f %s\n' |
      awk 'NR == FNR { raw[$1] = $2; next } $1 in raw { print $1, 0, raw[$1], 0, $2 }' "$parts/sizes" -
    find "$parts" -type f -name '*.dat.*.gz' -printf '%f %s\n' | LC_ALL=C sort |
      awk 'NR == FNR { raw[$1 ".gz"] = $2; next }
           { f = $1; sub(/\.[^.]*\.gz$/, ".gz", f); if (f != file) { file = f; at = rows = 0 }
             print f, rows, raw[$1], at, $2; at += $2; rows += raw[$1] }' "$parts/raw" -
  } >"$index"
  for name in "${split[@]}"; do
    [[ -f "$dir/$name" ]] || continue
    # Members in order (the end-of-data line, suffix t, last): C-sorted like the index.
    cat -- "$parts/$name".*.gz >"$dir/$name.gz" || return 1
    rm -f -- "$dir/$name"
  done
  rm -rf -- "$parts"
}

# cut_members FILE SIZE PREFIX: FILE's rows cut into PREFIX.000000... of about an eighth of it
# (between 1 and 8 MiB) that end after a newline (in COPY text a newline in a value is
# written \n, so every newline ends a row); pg_dump's 5-byte end-of-data line alone in
# PREFIX.t. Fails for a file that is not COPY rows (a large object) or has a row longer
# than a member (a stream would cut it): that file stays one member.
cut_members() {
  local file=$1 size=$2 prefix=$3 rows_end=$(($2 - 5)) chunk ends
  is_end_of_data tail -c 5 -- "$file" || return 1
  chunk=$((rows_end / 8))
  ((chunk <= EDMS_MEMBER_MAX)) || chunk=$EDMS_MEMBER_MAX
  ((chunk >= EDMS_MEMBER_MIN)) || chunk=$EDMS_MEMBER_MIN
  head -c "$rows_end" -- "$file" | split --line-bytes="$chunk" --suffix-length=6 --numeric-suffixes - "$prefix." || return 1
  printf '%s' "$EDMS_END_OF_DATA" >"$prefix.t"
  # split cuts a line longer than a member: then some member ends without a newline.
  ends=$(tail -q -c 1 -- "$prefix".[0-9]* && echo x)
  [[ "${ends//$'\n'/}" == x ]]
}

# is_end_of_data COMMAND...: whether COMMAND prints pg_dump's end-of-data line and nothing
# else. (The x keeps the newlines that $() would drop.)
is_end_of_data() {
  [[ "$("$@" && echo x)" == "${EDMS_END_OF_DATA}x" ]]
}

# dump_members INDEX FILE: FILE's members from INDEX, "ROW_OFFSET ROW_BYTES OFFSET BYTES"
# per line, in order.
dump_members() {
  [[ -f "$1" ]] || return 0
  awk -v f="$2" '$1 == f { print $2, $3, $4, $5 }' "$1"
}
