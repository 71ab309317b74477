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

# compress_dump DIR LEVEL INDEX PARTS: the data files of the pg_dump directory DIR
# compressed in place at gzip LEVEL, their members listed in INDEX; PARTS is scratch.
# gzip -n stores no name or time: the same rows give the same bytes, which off-site
# deduplication finds again.
compress_dump() {
  local dir=$1 level=$2 index=$3 parts=$4 size name small=() split=()
  mkdir -p -- "$parts"
  # pg_dump names its files by number: one per line.
  while IFS=' ' read -r size name; do
    if ((size <= EDMS_MEMBER_MIN)); then small+=("$name"); else split+=("$name"); fi
    echo "$name $size"
  done < <(find "$dir" -maxdepth 1 -type f -name '*.dat' ! -name toc.dat -printf '%s %f\n') >"$parts/sizes"
  ((${#small[@]} == 0)) || printf '%s\0' "${small[@]/#/$dir/}" | xargs -0 -r -n 64 -P "$edms_jobs" gzip -"$level" -n -- || return 1
  # A file in one member is listed too: the index tells a restore every file's rows.
  find "$dir" -maxdepth 1 -type f -name '*.dat.gz' -printf '%f %s\n' |
    awk 'NR == FNR { raw[$1 ".gz"] = $2; next } { print $1, 0, raw[$1], 0, $2 }' "$parts/sizes" - >"$index"
  ((${#split[@]})) || { rm -rf -- "$parts"; return 0; }
  for name in "${split[@]}"; do plan_members "$dir/$name" "$name"; done >"$parts/plan"
  tr ' \n' '\0\0' <"$parts/plan" |
    xargs -0 -n 4 -P "$edms_jobs" bash -c 'set -o pipefail
      dd if="$1/$3" iflag=skip_bytes,count_bytes skip="$4" count="$5" bs=1M status=none | gzip -"$0" -n >"$2/$3.$6"' \
      "$level" "$dir" "$parts" || return 1
  # The plan and the members' sizes make the index; each file's members, in order, its .gz.
  find "$parts" -type f ! -name plan -printf '%f %s\n' |
    awk 'NR == FNR { bytes[$1] = $2; next }
         { n = bytes[$1 "." $4]; if ($1 != f) { f = $1; at = 0 }
           print $1 ".gz", $2, $3, at, n; at += n }' - "$parts/plan" >>"$index"
  for name in "${split[@]}"; do
    cat -- "$parts/$name".* >"$dir/$name.gz" || return 1
    rm -f -- "$parts/$name".* "$dir/$name"
  done
  rm -rf -- "$parts"
}

# plan_members FILE NAME: FILE's members, "NAME ROW_OFFSET ROW_BYTES SEQ" each: ranges of
# about an eighth of it (between 1 and 8 MiB) that end after a newline (in COPY text a
# newline in a value is written \n, so every newline ends a row), then pg_dump's 5-byte
# end-of-data line alone.
plan_members() {
  local file=$1 name=$2 size rows_end start=0 end chunk seq=0
  size=$(stat -c %s -- "$file")
  rows_end=$size
  [[ "$(tail -c 5 -- "$file" | od -An -tx1 | tr -d ' \n')" != 5c2e0a0a0a ]] || rows_end=$((size - 5))
  chunk=$((rows_end / 8))
  ((chunk <= EDMS_MEMBER_MAX)) || chunk=$EDMS_MEMBER_MAX
  ((chunk >= EDMS_MEMBER_MIN)) || chunk=$EDMS_MEMBER_MIN
  while ((start < rows_end)); do
    end=$((start + chunk))
    if ((end < rows_end)); then
      end=$((end + $(set +o pipefail; tail -c +$((end + 1)) -- "$file" | head -n 1 | wc -c)))
    fi
    ((end <= rows_end)) || end=$rows_end
    printf '%s %s %s %05d\n' "$name" "$start" "$((end - start))" "$seq"
    start=$end seq=$((seq + 1))
  done
  ((rows_end == size)) || printf '%s %s %s %05d\n' "$name" "$rows_end" 5 "$seq"
}

# dump_members INDEX FILE: FILE's members from INDEX, "ROW_OFFSET ROW_BYTES OFFSET BYTES"
# per line, in order.
dump_members() {
  [[ -f "$1" ]] || return 0
  awk -v f="$2" '$1 == f { print $2, $3, $4, $5 }' "$1"
}
