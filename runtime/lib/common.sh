# shellcheck shell=bash
# Shared helpers of the edms-backup subcommands; sourced, never run: messages, settings,
# backup ids, the lock. PostgreSQL, the status file and output formats have files of
# their own, sourced at the end.
#
# Every subcommand reads its configuration from the environment (README, "The runtime"),
# reports progress on stderr, and fails with one line on stderr that names the cause and
# the fix.

# Where the runtime lives, also when a libexec file is run without the dispatcher.
EDMS_BACKUP_ROOT=${EDMS_BACKUP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# Bytes, not characters: a file name that is not valid UTF-8 (caf\xe9.pdf from an old zip)
# must not break bash's matching or a tool's parsing under a UTF-8 LANG; tool messages
# are English, as first_error_line's matches expect.
export LC_ALL=C

EDMS_BACKUP_ID_PATTERN='^[0-9]{8}_[0-9]{6}$'

# The subcommand's name, for messages ("edms-backup backup: ...").
edms_command=${edms_command:-edms-backup}

edms_said=()

# This run's own temporary folder (private_tmpdir), removed by its exit trap.
edms_tmpdir=""

die() {
  edms_last_error=$*
  # A die in a command substitution ends only that subshell: the file tells the command.
  [[ -z "${edms_error_file:-}" ]] || printf '%s\n' "$edms_last_error" >"$edms_error_file" 2>/dev/null || true
  # A command may name a deeper cause (backup: a full backup folder behind any failure).
  [[ -z "${edms_die_cause:-}" ]] || "$edms_die_cause" || true
  printf '%s: %s\n' "$edms_command" "$edms_last_error" >&2
  exit 1
}

# last_error: the message of the last die, also of one in a subshell (edms_error_file).
last_error() {
  if [[ -n "${edms_last_error:-}" ]]; then
    printf '%s' "$edms_last_error"
  elif [[ -n "${edms_error_file:-}" && -s "$edms_error_file" ]]; then
    head -n 1 -- "$edms_error_file"
  fi
}

say() {
  printf '%s: %s\n' "$edms_command" "$*" >&2
  # The last lines said, for a failure notification's body (notify.sh).
  edms_said+=("$*")
  ((${#edms_said[@]} <= 8)) || edms_said=("${edms_said[@]:1}")
}

# first_error_line TEXT: the first non-empty line of a tool's error output, its prefix cut.
first_error_line() {
  local line
  while IFS= read -r line; do
    line=${line#psql: }
    line=${line#pg_dump: }
    line=${line#error: }
    if [[ -n "$line" ]]; then
      printf '%s' "$line"
      return
    fi
  done <<<"$1"
}

# step NAME: a named point of a command's progress. EDMS_BACKUP_STEP_HOOK, when set, is run
# there with NAME and the command's pid: the tests stop, kill or restart things at each step.
step() {
  [[ -z "${EDMS_BACKUP_STEP_HOOK:-}" ]] || "$EDMS_BACKUP_STEP_HOOK" "$1" "$$" || true
}

now_utc() {
  date -u +%Y-%m-%dT%H:%M:%SZ
}

# Reads and checks the settings every subcommand shares; sets the edms_* globals.
load_config() {
  [[ -n "${EDMS_BACKUP_DIR:-}" ]] ||
    die "EDMS_BACKUP_DIR is not set: set it to the folder that holds the backups"
  edms_dir=${EDMS_BACKUP_DIR%/}
  [[ -n "$edms_dir" ]] || edms_dir=/
  edms_retention_days=${EDMS_BACKUP_RETENTION_DAYS:-7}
  edms_keep_last=${EDMS_BACKUP_KEEP_LAST:-3}
  edms_schedule=${EDMS_BACKUP_SCHEDULE:-0 2 * * *}
  edms_jobs=${EDMS_BACKUP_JOBS:-$(nproc 2>/dev/null || echo 2)}
  require_count EDMS_BACKUP_RETENTION_DAYS "$edms_retention_days" 0
  require_count EDMS_BACKUP_KEEP_LAST "$edms_keep_last" 1
  require_count EDMS_BACKUP_JOBS "$edms_jobs" 1
  export TZ=${TZ:-UTC}

  edms_storage_dirs=()
  split_paths EDMS_BACKUP_STORAGE_DIRS edms_storage_dirs
  edms_config_paths=()
  split_paths EDMS_BACKUP_CONFIG_PATHS edms_config_paths
  # Config paths are the host's paths; in a container they are mounted below this root.
  edms_config_root=${EDMS_BACKUP_CONFIG_ROOT:-/}
  bypass_pg_wrapper
}

require_count() {
  local name=$1 value=$2 min=$3
  [[ "$value" =~ ^[0-9]+$ ]] && ((10#$value >= min)) ||
    die "$name='$value' is not a whole number >= $min: set it to one (e.g. $name=$((min > 7 ? min : 7)))"
}

# split_paths VAR ARRAY: the colon-separated paths in $VAR, empty items skipped. A newline
# is part of a path (read would stop at it and back up a cut path).
split_paths() {
  local -n into=$2
  local rest=${!1:-} item
  while [[ -n "$rest" ]]; do
    item=${rest%%:*}
    [[ "$rest" == *:* ]] && rest=${rest#*:} || rest=""
    [[ -n "$item" ]] && into+=("$item")
  done
  return 0
}

# resolve_storage_dirs: the storage folders' real paths, in order, into storage_real (they
# must exist). Refuses what neither a backup nor a restore can do right: a folder named
# twice, folders inside one another, the backup folder inside one of them or around one.
resolve_storage_dirs() {
  local i j dir real backup_real
  backup_real=$(real_path "$edms_dir" -m)
  storage_real=()
  for ((i = 0; i < ${#edms_storage_dirs[@]}; i++)); do
    dir=${edms_storage_dirs[i]}
    real=$(real_path "$dir")
    [[ "$real" != / ]] || die "storage folder $dir is / (EDMS_BACKUP_STORAGE_DIRS item $((i + 1))): name the storage folder itself"
    [[ "$backup_real/" != "$real/"* && "$real/" != "$backup_real/"* ]] ||
      die "storage folder $dir and the backup folder $edms_dir lie one inside the other: keep backups outside the storage (EDMS_BACKUP_DIR), or every backup would hold the ones before it"
    for ((j = 0; j < i; j++)); do
      [[ "${storage_real[j]}" != "$real" ]] ||
        die "storage folder $dir is named twice in EDMS_BACKUP_STORAGE_DIRS (also as ${edms_storage_dirs[j]}): name each folder once"
      [[ "${storage_real[j]}/" != "$real/"* && "$real/" != "${storage_real[j]}/"* ]] ||
        die "storage folders ${edms_storage_dirs[j]} and $dir lie one inside the other: name only the outer one in EDMS_BACKUP_STORAGE_DIRS"
    done
    storage_real+=("$real")
  done
}

# real_path PATH [-m]: the canonical absolute path, newlines in it kept.
real_path() {
  local out
  out=$(realpath ${2:+"$2"} -- "$1" && printf x) || die "cannot resolve $1: check that it exists and is readable"
  printf '%s' "${out%$'\n'x}"
}

is_backup_id() {
  [[ "$1" =~ $EDMS_BACKUP_ID_PATTERN ]] || return 1
  id_epoch "$1" >/dev/null 2>&1
}

# id_epoch ID: seconds since the epoch of a backup id (its UTC timestamp).
id_epoch() {
  local id=$1
  date -u -d "${id:0:4}-${id:4:2}-${id:6:2} ${id:9:2}:${id:11:2}:${id:13:2}" +%s
}

# Complete backups in the backup folder, newest first, one id a line. A backup is
# complete once its folder carries its id as name; the temporary folders it is built
# in are hidden (".tmp-*") and never listed.
backup_ids() {
  local path name
  local -a ids=()
  for path in "$edms_dir"/*/; do
    name=$(basename "$path")
    [[ "$name" =~ $EDMS_BACKUP_ID_PATTERN && -f "$path/manifest.json" && -f "$path/SHA256SUMS" ]] &&
      ids+=("$name")
  done
  ((${#ids[@]})) || return 0
  printf '%s\n' "${ids[@]}" | sort -r
}

# require_backup ID: dies unless ID names a complete backup.
require_backup() {
  local id=$1
  is_backup_id "$id" || die "'$id' is not a backup id (YYYYMMDD_HHMMSS, UTC): run 'edms-backup list' for the ids"
  [[ -f "$edms_dir/$id/manifest.json" && -f "$edms_dir/$id/SHA256SUMS" ]] ||
    die "no complete backup $id in $edms_dir: run 'edms-backup list' for the ids"
}

# kv_get FILE KEY: the value of KEY in a file of KEY=VALUE lines; fails when absent.
kv_get() {
  local key value
  [[ -f "$1" ]] || return 1
  while IFS='=' read -r key value; do
    if [[ "$key" == "$2" ]]; then
      printf '%s\n' "$value"
      return 0
    fi
  done <"$1"
  return 1
}

# kv_set FILE KEY VALUE...: sets KEYs in a file of KEY=VALUE lines (newlines in values
# become spaces), atomically: written beside, synced, renamed over it.
kv_set() {
  local file=$1 tmp="$1.$$" key value
  shift
  local -A kv=()
  if [[ -f "$file" ]]; then
    while IFS='=' read -r key value; do
      [[ -n "$key" ]] && kv[$key]=$value
    done <"$file"
  fi
  while (($# >= 2)); do
    kv[$1]=${2//$'\n'/ }
    shift 2
  done
  # Owner only: the status holds error lines, the journal database names.
  for key in "${!kv[@]}"; do
    printf '%s=%s\n' "$key" "${kv[$key]}"
  done | (umask 077 && sort >"$tmp") || return 1
  # The file on disk, then its new name: fsyncs of these two, not a sync of the filesystem,
  # which would also wait for whatever else it holds dirty (a database loading beside).
  sync -- "$tmp" 2>/dev/null || sync
  mv -f -- "$tmp" "$file"
  sync -- "$(dirname -- "$file")" 2>/dev/null || true
}

# info_get ID KEY: a value of the backup's meta/info.
info_get() {
  kv_get "$edms_dir/$1/meta/info" "$2"
}

# take_lock [WAIT_SECONDS]: one backup, prune or restore at a time per backup folder,
# waiting up to WAIT_SECONDS (default 0) for the one that runs. The lock is held by an
# open file descriptor and so released by the kernel however the process ends.
take_lock() {
  [[ -n "${EDMS_BACKUP_LOCK_HELD:-}" ]] && return 0
  local wait=${1:-0}
  exec {edms_lock_fd}>>"$edms_dir/.lock" ||
    die "cannot create $edms_dir/.lock: make $edms_dir writable by uid $(id -u)"
  if ! flock -n "$edms_lock_fd"; then
    ((wait > 0)) && say "waiting up to ${wait}s for the running backup, prune or restore to finish"
    flock -w "$wait" "$edms_lock_fd" ||
      die "another backup, prune or restore is running on $edms_dir (lock $edms_dir/.lock held): wait for it to finish"
  fi
  export EDMS_BACKUP_LOCK_HELD=1
}

# private_tmpdir: TMPDIR becomes a folder of this run's own, for its temporary files and
# its children's (the checks it starts, its safety backup). The exit trap removes it with
# remove_private_tmpdir: a run that fails or is stopped leaves nothing in the system's
# TMPDIR, also of a child it stopped halfway.
private_tmpdir() {
  edms_tmpdir=$(mktemp -d) || die "cannot create a folder in ${TMPDIR:-/tmp}: free space there (or set TMPDIR)"
  export TMPDIR=$edms_tmpdir
}

remove_private_tmpdir() {
  [[ -z "${edms_tmpdir:-}" ]] || rm -rf -- "$edms_tmpdir" 2>/dev/null || true
}

# Removes what killed runs left behind: half-built backups and half-deleted ones, those the
# record of what this folder's runs made names (made.sh), never a folder by its name alone.
# Call with the lock held.
clean_leftovers() {
  remove_made_folders build
  remove_made_folders deleting
}

# delete_backup ID: renamed out of sight first, so a half-deleted backup is never listed.
delete_backup() {
  local id=$1
  made_folder deleting ".deleting-$id"
  mv -- "$edms_dir/$id" "$edms_dir/.deleting-$id"
  rm -rf -- "$edms_dir/.deleting-$id"
  unmade_folder deleting ".deleting-$id"
}

# need_jq: jq reads every JSON the runtime reads (restic's, the manifests, Docker's).
need_jq() {
  command -v jq >/dev/null ||
    die "jq is not installed: install it (Debian: apt-get install jq), or use the scheduler's image, which has it"
}

# path_hash PATH: a short digest of a path (any bytes but NUL), for records of it.
path_hash() {
  printf '%s' "$1" | sha256sum | cut -c1-16
}

# secret_fingerprint SALT VALUE: what a backup records of a secret, and restore compares.
secret_fingerprint() {
  printf '%s:%s' "$1" "$2" | sha256sum | cut -d' ' -f1
}

# shellcheck source=SCRIPTDIR/pg.sh
source "$EDMS_BACKUP_ROOT/lib/pg.sh"
# shellcheck source=SCRIPTDIR/status.sh
source "$EDMS_BACKUP_ROOT/lib/status.sh"
# shellcheck source=SCRIPTDIR/format.sh
source "$EDMS_BACKUP_ROOT/lib/format.sh"
# shellcheck source=SCRIPTDIR/notify.sh
source "$EDMS_BACKUP_ROOT/lib/notify.sh"
# shellcheck source=SCRIPTDIR/made.sh
source "$EDMS_BACKUP_ROOT/lib/made.sh"
