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
  printf '"%s"' "$s"
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

# sums_line HASH NAME: one line of SHA256SUMS, escaped as sha256sum writes it for names
# with a backslash, newline or carriage return, so `sha256sum -c` reads it back.
sums_line() {
  local hash=$1 name=$2
  if [[ "$name" == *[$'\\\n\r']* ]]; then
    name=${name//\\/\\\\}
    name=${name//$'\n'/\\n}
    name=${name//$'\r'/\\r}
    printf '\\%s  %s\n' "$hash" "$name"
  else
    printf '%s  %s\n' "$hash" "$name"
  fi
}
