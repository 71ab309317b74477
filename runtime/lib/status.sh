# shellcheck shell=bash
# The status file: last success and failure, read by `status`.

status_file() {
  printf '%s/.status\n' "$edms_dir"
}

# status_set KEY VALUE...: updates the status file atomically.
status_set() {
  local file tmp key value
  file=$(status_file)
  tmp="$file.$$"
  declare -A kv=()
  if [[ -f "$file" ]]; then
    while IFS='=' read -r key value; do
      [[ -n "$key" ]] && kv[$key]=$value
    done <"$file"
  fi
  while (($# >= 2)); do
    kv[$1]=${2//$'\n'/ }
    shift 2
  done
  for key in "${!kv[@]}"; do
    printf '%s=%s\n' "$key" "${kv[$key]}"
  done | sort >"$tmp" && mv -f -- "$tmp" "$file"
}

status_get() {
  kv_get "$(status_file)" "$1"
}

