# shellcheck shell=bash
# Output formats: JSON strings, sizes for people, SHA256SUMS lines.

# json_str STRING: STRING as a JSON string literal.
json_str() {
  local s=$1 out='' c i code
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\t'/\\t}
  s=${s//$'\r'/\\r}
  if [[ "$s" =~ [[:cntrl:]] ]]; then
    for ((i = 0; i < ${#s}; i++)); do
      c=${s:i:1}
      if [[ "$c" =~ [[:cntrl:]] ]]; then
        printf -v code '%d' "'$c"
        printf -v c '\\u%04x' "$code"
      fi
      out+=$c
    done
    s=$out
  fi
  [[ "$s" != *[$'\x80'-$'\xff']* ]] || s=$(utf8_or_escaped "$s")
  printf '"%s"' "$s"
}

# utf8_or_escaped STRING: STRING with each byte that is not part of valid UTF-8 (a file
# name from an old zip: caf\xe9.pdf) written \udcXX, as Python's surrogateescape does:
# JSON must be UTF-8, and the name stays recoverable. Runs under LC_ALL=C (bytes).
utf8_or_escaped() {
  local s=$1 out="" i=0 n=${#1} b c need j lo hi
  while ((i < n)); do
    printf -v b '%d' "'${s:i:1}"
    need=0 lo=128 hi=191
    if ((b < 128)); then
      out+=${s:i:1} && i=$((i + 1)) && continue
    elif ((b >= 0xc2 && b <= 0xdf)); then need=1
    elif ((b >= 0xe0 && b <= 0xef)); then need=2 && ((b == 0xe0)) && lo=160
    elif ((b >= 0xf0 && b <= 0xf4)); then need=3 && ((b == 0xf0)) && lo=144
    fi
    ((b == 0xed)) && hi=159
    ((b == 0xf4)) && hi=143
    for ((j = 1; j <= need; j++)); do
      printf -v c '%d' "'${s:i+j:1}"
      ((c >= lo && c <= hi)) || { need=0 && break; }
      lo=128 hi=191
    done
    if ((need > 0)); then
      out+=${s:i:need+1} i=$((i + need + 1))
    else
      printf -v c '\\udc%02x' "$b"
      out+=$c i=$((i + 1))
    fi
  done
  printf '%s' "$out"
}

human_bytes() {
  local bytes=$1 unit=B value
  value=$bytes
  for unit in B KiB MiB GiB TiB; do
    ((value < 10240)) && break
    value=$((value / 1024))
  done
  [[ "$unit" == B ]] && { printf '%d B' "$bytes"; return; }
  printf '%d %s' "$value" "$unit"
}

