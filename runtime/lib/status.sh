# shellcheck shell=bash
# The status file: last success and failure, read by `status`.

status_file() {
  printf '%s/.status\n' "$edms_dir"
}

# status_set KEY VALUE...: updates the status file atomically.
status_set() {
  kv_set "$(status_file)" "$@"
}

status_get() {
  kv_get "$(status_file)" "$1"
}

