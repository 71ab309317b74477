# shellcheck shell=bash
# The runtime's settings from a file instead of the environment: a container's environment
# is shown by `docker inspect`, a file of mode 0600 inside it is not. Sourced by the
# dispatcher before any command runs, once per process tree (it then empties the variable).
#
# Format (written by components/runtimeEnv.ts): one NAME=VALUE per line, the value taken
# as it is except for two escapes, \n for a newline and \\ for a backslash.

# load_env_file FILE: exports every NAME=VALUE of FILE; one line naming the fault otherwise.
load_env_file() {
  local file=$1 line name value number=0
  if [[ ! -r "$file" ]]; then
    printf 'edms-backup: EDMS_BACKUP_ENV_FILE %s cannot be read: upload it (mode 0600) or unset EDMS_BACKUP_ENV_FILE\n' "$file" >&2
    exit 1
  fi
  while IFS= read -r line || [[ -n "$line" ]]; do
    number=$((number + 1))
    [[ -n "$line" && "$line" != "#"* ]] || continue
    name=${line%%=*}
    if [[ "$line" != *=* || ! "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      printf 'edms-backup: line %d of EDMS_BACKUP_ENV_FILE %s is not NAME=VALUE: fix or remove it\n' "$number" "$file" >&2
      exit 1
    fi
    # %b turns \n and \\ back; the writer doubles every other backslash, so nothing else is read as an escape.
    printf -v value '%b' "${line#*=}"
    export "$name=$value"
  done <"$file"
}
