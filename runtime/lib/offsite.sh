# shellcheck shell=bash
# Off-site copies with restic: each complete backup folder becomes one restic snapshot
# (encrypted, deduplicated, compressed by restic), tagged edms-backup, stack=STACK, id=ID,
# bytes=SIZE and kind=KIND (scheduled, manual, pre-restore), with host edms-STACK and the id's time, so that GFS retention counts
# backups by their time and a new VM finds them by stack, whatever its hostname.
#
# restic reads its own variables (RESTIC_REPOSITORY, RESTIC_PASSWORD or
# RESTIC_PASSWORD_FILE, AWS_*, ...). Besides: RESTIC_CACERT (restic 0.14 has only the
# --cacert flag), EDMS_BACKUP_OFFSITE_SSH_KEY and EDMS_BACKUP_OFFSITE_KNOWN_HOSTS (sftp:
# that key, and only those host keys; files, or their content in *_CONTENT),
# EDMS_BACKUP_STACK (default "edms").
#
# Only `backup` and `offsite push` create a repository (offsite_open create), and only
# while none was ever used; they remember its id in EDMS_BACKUP_DIR/.offsite. Every command
# that reads the repository checks its id against that one: a repository that is then
# missing or another (an unmounted disk, another bucket or prefix, a typo on a new VM) is an
# error, never initialised anew, never remembered. restic's JSON is read with jq, by key.
# EDMS_BACKUP_DIR/.offsite-ids caches which backups are off-site (for
# list); .offsite-cache is restic's cache.
#
# Reads: edms_dir
# Sets:  offsite_stack offsite_host offsite_ids offsite_pinned (offsite_setup, offsite_index)
# Reads: offsite_context (backup: what a failure is part of)

# offsite_die MESSAGE: dies with MESSAGE, within offsite_context when a backup set one
# (its off-site copy failed, the local backup is complete).
offsite_die() {
  restic_started_stop
  die "${offsite_context:+$offsite_context: }$*${offsite_context:+; the local backup is complete, and the next backup copies it}"
}

offsite_enabled() {
  [[ -n "${RESTIC_REPOSITORY:-}" ]]
}

offsite_setup() {
  offsite_stack=${EDMS_BACKUP_STACK:-edms}
  [[ "$offsite_stack" =~ ^[A-Za-z0-9._-]+$ ]] ||
    offsite_die "EDMS_BACKUP_STACK='$offsite_stack' may hold only letters, digits, '.', '_' and '-': set it to the stack's name"
  offsite_host="edms-$offsite_stack"
  command -v restic >/dev/null || offsite_die "RESTIC_REPOSITORY is set but restic is not installed: use the scheduler image with restic (README, \"Off-site copies\")"
  need_jq
  [[ -n "${RESTIC_PASSWORD:-}" || -n "${RESTIC_PASSWORD_FILE:-}" || -n "${RESTIC_PASSWORD_COMMAND:-}" ]] ||
    offsite_die "RESTIC_REPOSITORY is set but no RESTIC_PASSWORD or RESTIC_PASSWORD_FILE: set the repository's password (stack config offsitePassword, a secret)"
  if [[ -n "${RESTIC_CACERT:-}" && ! -r "$RESTIC_CACERT" ]]; then
    offsite_die "RESTIC_CACERT=$RESTIC_CACERT cannot be read: point it at the PEM file of the CA that signed the repository server's certificate"
  fi
  offsite_ssh_files
  local file
  for file in EDMS_BACKUP_OFFSITE_SSH_KEY EDMS_BACKUP_OFFSITE_KNOWN_HOSTS; do
    [[ -z "${!file:-}" || -r "${!file}" ]] || offsite_die "$file=${!file} cannot be read: point it at a file readable by uid $(id -u)"
  done
}

# The key and known_hosts given as content (EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT,
# _KNOWN_HOSTS_CONTENT: the stack's settings file carries no files) become files of the
# user's own, mode 0600, outside the backup folder.
offsite_ssh_files() {
  local dir=${TMPDIR:-/tmp}/edms-backup-ssh-$(id -u)
  [[ -n "${EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT:-}${EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT:-}" ]] || return 0
  (umask 077 && mkdir -p "$dir")
  [[ -O "$dir" && ! -L "$dir" ]] || offsite_die "$dir is not this user's own folder: remove it"
  if [[ -n "${EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT:-}" ]]; then
    (umask 077 && printf '%s\n' "$EDMS_BACKUP_OFFSITE_SSH_KEY_CONTENT" >"$dir/key")
    export EDMS_BACKUP_OFFSITE_SSH_KEY=$dir/key
  fi
  if [[ -n "${EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT:-}" ]]; then
    (umask 077 && printf '%s\n' "$EDMS_BACKUP_OFFSITE_KNOWN_HOSTS_CONTENT" >"$dir/known_hosts")
    export EDMS_BACKUP_OFFSITE_KNOWN_HOSTS=$dir/known_hosts
  fi
}

# restic_run ARG...: restic with the CA, the cache in the backup folder and, for sftp:, an
# ssh that uses only the configured key and known_hosts (runtime/share/offsite-ssh).
# On failure ssh's messages follow restic's on stderr (offsite_problem reads both).
restic_run() {
  local -a global=(--cache-dir "$edms_dir/.offsite-cache")
  local log rc=0
  [[ -z "${RESTIC_CACERT:-}" ]] || global+=(--cacert "$RESTIC_CACERT")
  log=$(mktemp)
  EDMS_BACKUP_OFFSITE_SSH_LOG=$log PATH="$EDMS_BACKUP_ROOT/share/offsite-ssh:$PATH" restic "${global[@]}" "$@" || rc=$?
  ((rc == 0)) || cat -- "$log" >&2
  rm -f -- "$log"
  return "$rc"
}

# offsite_where: the repository as it may be shown: the user-info of a URL cut up to its
# last '@' before the host's '/' (a password may hold '@' too), and any query.
offsite_where() {
  printf '%s' "$RESTIC_REPOSITORY" | sed -E 's#(://)[^/]*@#\1#; s#\?.*##'
}

# offsite_problem STDERR: one line naming the cause of a failed restic call and the fix.
offsite_problem() {
  local err=$1 where
  where=$(offsite_where)
  case "$err" in
    *"wrong password or no key found"*)
      printf 'wrong password for the off-site repository %s: set RESTIC_PASSWORD (stack config offsitePassword) to the password it was created with' "$where" ;;
    *"Host key verification failed"* | *"REMOTE HOST IDENTIFICATION HAS CHANGED"*)
      printf "the off-site server's host key is not the one in EDMS_BACKUP_OFFSITE_KNOWN_HOSTS (%s): check that it is the right server, then update known_hosts" "$where" ;;
    *"Permission denied (publickey"* | *"Access Denied"* | *"AccessDenied"* | *"InvalidAccessKeyId"* | *"SignatureDoesNotMatch"* | *"401 Unauthorized"* | *"403 Forbidden"*)
      printf 'the off-site repository %s refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the SSH key (stack config offsiteEnv)' "$where" ;;
    *"connection refused"* | *"Connection refused"* | *"no such host"* | *"i/o timeout"* | *"network is unreachable"* | *"Connection timed out"* | *"Could not resolve"* | *"connection reset"*)
      printf 'the off-site repository %s is unreachable (%s): check the server, the network and RESTIC_REPOSITORY' "$where" "$(restic_error_line "$err")" ;;
    *"x509:"* | *"certificate"*)
      printf 'TLS to the off-site repository %s failed (%s): set RESTIC_CACERT to the CA of its certificate' "$where" "$(restic_error_line "$err")" ;;
    *)
      printf 'off-site repository %s: %s' "$where" "$(restic_error_line "$err")" ;;
  esac
}

# restic_error_line STDERR: restic's first "Fatal:" line, or the first line.
restic_error_line() {
  local line
  while IFS= read -r line; do
    [[ "$line" == Fatal:* ]] && { printf '%s' "${line#Fatal: }"; return; }
  done <<<"$1"
  first_error_line "$1"
}

# offsite_missing STDERR: whether restic found no repository there (as opposed to failing
# to reach it).
offsite_missing() {
  case "$1" in
    *"Is there a repository at the following location?"*)
      [[ "$1" == *"does not exist"* || "$1" == *"NoSuchKey"* || "$1" == *"NoSuchBucket"* || "$1" == *"no such file or directory"* ]] ;;
    *) return 1 ;;
  esac
}

# restic_json VAR ARG...: restic's standard output (its JSON) into VAR, its messages into
# restic_err; fails as restic does.
restic_json() {
  local -n into=$1
  local errors rc=0
  shift
  errors=$(mktemp)
  into=$(restic_run "$@" 2>"$errors") || rc=$?
  restic_err=$(<"$errors")
  rm -f -- "$errors"
  return "$rc"
}

# restic_start NAME ARG...: restic_run ARG... in the background, for restic_finish NAME:
# each restic call spends most of its time deriving its key (about 0.5 s of a core), so
# calls that do not depend on each other run at once (the vault's sync, a pull).
declare -A started_pid=() started_file=()
restic_start() {
  local name=$1
  shift
  started_file[$name]=$(mktemp)
  restic_run "$@" >"${started_file[$name]}" 2>"${started_file[$name]}.err" &
  started_pid[$name]=$!
}

# restic_finish NAME VAR: VAR the output of the call NAME, restic_err its messages; fails as it did.
restic_finish() {
  local -n finished=$2
  local rc=0 file=${started_file[$1]}
  wait "${started_pid[$1]}" || rc=$?
  finished=$(<"$file")
  restic_err=$(<"$file.err")
  rm -f -- "$file" "$file.err"
  unset "started_pid[$1]" "started_file[$1]"
  return "$rc"
}

# restic_started_stop: the calls still running are stopped (a sync that died early).
restic_started_stop() {
  local name
  for name in "${!started_pid[@]}"; do
    kill "${started_pid[$name]}" 2>/dev/null || true
    rm -f -- "${started_file[$name]}" "${started_file[$name]}.err"
  done
}

# offsite_none: the line for a missing repository, where nothing may create one.
offsite_none() {
  printf "no restic repository at %s: check RESTIC_REPOSITORY (stack config offsite.repository); nothing was changed (only a backup or 'edms-backup offsite push' creates one)" "$(offsite_where)"
}

# offsite_open [create|read]: the repository is reachable, opens with the password, and is the
# one this backup folder's backups went to ("read": a pull, which offsite_index follows). With "create" (backup, offsite push) one is
# initialised when none is there and none was ever used, and its id remembered; every
# other command changes nothing: a missing repository is one line, naming it. Dies naming
# the cause otherwise.
offsite_open() {
  local create=${1:-} out remembered id
  remembered=$(kv_get "$edms_dir/.offsite" repository_id 2>/dev/null || true)
  # Only read, and no id to compare (a new VM): the list that follows opens it anyway,
  # and says the same of a missing one; a key less to derive.
  [[ "$create" != read || -n "$remembered" ]] || return 0
  [[ "$create" != read ]] || create=""
  if ! restic_json out cat config; then
    offsite_missing "$restic_err" || offsite_die "$(offsite_problem "$restic_err")"
    if [[ -n "$remembered" ]]; then
      offsite_die "the off-site repository $(offsite_where) is missing, but this stack's backups went to repository ${remembered:0:8} there: mount the disk or fix RESTIC_REPOSITORY (bucket, prefix); to start a new repository on purpose, delete $edms_dir/.offsite"
    fi
    [[ -n "$create" ]] || offsite_die "$(offsite_none)"
    say "initialising the off-site repository $(offsite_where)"
    out=$(restic_run init 2>&1) || offsite_die "$(offsite_problem "$out")"
    restic_json out cat config || offsite_die "$(offsite_problem "$restic_err")"
  fi
  id=$(jq -r '.id // empty' <<<"$out" 2>/dev/null) || id=""
  [[ "$id" =~ ^[0-9a-f]{64}$ ]] || offsite_die "off-site repository $(offsite_where): cannot read its id from restic cat config"
  if [[ -n "$remembered" && "$remembered" != "$id" ]]; then
    offsite_die "the off-site repository $(offsite_where) is ${id:0:8}, not ${remembered:0:8} where this stack's backups went: fix RESTIC_REPOSITORY; to switch repositories on purpose, delete $edms_dir/.offsite"
  fi
  [[ -n "$remembered" || -z "$create" ]] || kv_set "$edms_dir/.offsite" repository_id "$id" repository "$(offsite_where)"
}

# offsite_index: this stack's off-site backups, "ID SNAPSHOT BYTES" lines sorted by id,
# into offsite_ids (and the cache list reads). Call after offsite_open; the list comes
# from the call offsite_snapshots when one was started (offsite_list_start).
offsite_index() {
  local json
  local -a call=(restic_json json)
  [[ -z "${started_pid[offsite_snapshots]:-}" ]] || call=(restic_finish offsite_snapshots json)
  if ! "${call[@]}" snapshots --json --host "$offsite_host" --tag "edms-backup,stack=$offsite_stack"; then
    offsite_missing "$restic_err" && offsite_die "$(offsite_none)"
    offsite_die "$(offsite_problem "$restic_err")"
  fi
  offsite_ids=$(snapshots_index <<<"$json") ||
    offsite_die "off-site repository $(offsite_where): cannot read restic's list of snapshots (restic $(restic version 2>/dev/null | cut -d' ' -f2))"
  # The backups whose snapshot carries the tag pinned (edms-backup pin).
  offsite_pinned=$(jq -r '(. // [])[] | (.tags // []) as $t | select($t | index("pinned"))
    | $t | map(select(test("^id=[0-9]{8}_[0-9]{6}$"))) | first // empty | ltrimstr("id=")' <<<"$json") || offsite_pinned=""
  offsite_save_ids
}

# offsite_list_start: offsite_index's call, started in the background (then offsite_open).
offsite_list_start() {
  restic_start offsite_snapshots snapshots --json --host "$offsite_host" --tag "edms-backup,stack=$offsite_stack"
}

# backup_summary: restic backup --json's output (stdin) as "SNAPSHOT DATA_ADDED": its summary
# message, by key; lines that are not JSON are passed over.
backup_summary() {
  jq -R -r 'fromjson? | select(type == "object" and .message_type == "summary") | "\(.snapshot_id // "") \(.data_added // 0)"' | tail -n 1
}

# snapshots_index: restic's `snapshots --json` (stdin) as "ID SNAPSHOT BYTES" lines, one a
# snapshot that carries an id=YYYYMMDD_HHMMSS tag (BYTES from its bytes= tag, else 0). By
# key, whatever restic adds (program_version in 0.16, summary in 0.17).
snapshots_index() {
  jq -r '(. // [])[] | (.tags // []) as $t
    | ($t | map(select(test("^id=[0-9]{8}_[0-9]{6}$"))) | first // empty | ltrimstr("id=")) as $bid
    | (($t | map(select(test("^bytes=[0-9]+$"))) | first // "bytes=0") | ltrimstr("bytes=")) as $bytes
    | "\($bid) \(.id) \($bytes)"'
}

# offsite_save_ids: offsite_ids into the cache list reads (after an index or pushes).
offsite_save_ids() {
  offsite_ids=$(sort -u <<<"$offsite_ids" | sed '/^$/d')
  (umask 077 && printf '%s\n' "$offsite_ids" >"$edms_dir/.offsite-ids.$$") && mv -f -- "$edms_dir/.offsite-ids.$$" "$edms_dir/.offsite-ids"
}

# offsite_snapshot ID: the snapshot holding backup ID, from offsite_ids; fails when none.
offsite_snapshot() {
  local bid snap bytes
  while read -r bid snap bytes; do
    [[ "$bid" == "$1" ]] && { printf '%s\n' "$snap"; return 0; }
  done <<<"$offsite_ids"
  return 1
}

# offsite_push ID: backup ID copied off-site (restic reads only what changed since the
# last backup copied: its unchanged files are hard links, same inode and mtime).
offsite_push() {
  local id=$1 parent bytes out when kind
  parent=$(tail -n 1 <<<"$offsite_ids" | cut -d' ' -f2)
  bytes=$(du -sb -- "$edms_dir/$id" | cut -f1)
  # Scheduled or by hand: what a vault's explanation of the snapshots counts against.
  kind=$(info_get "$id" kind 2>/dev/null || true)
  [[ "$kind" =~ ^[a-z-]+$ ]] || kind=""
  when="${id:0:4}-${id:4:2}-${id:6:2} ${id:9:2}:${id:11:2}:${id:13:2}"
  say "copying backup $id off-site to $(offsite_where)"
  local summary="" snap added here=$PWD
  # From inside the folder: restic records its paths relative to it ("."), and a pull
  # restores them into the folder it builds.
  cd -- "$edms_dir/$id"
  if ! TZ=UTC restic_json out backup . --quiet --json --host "$offsite_host" --time "$when" \
    --tag edms-backup --tag "stack=$offsite_stack" --tag "id=$id" --tag "bytes=$bytes" ${kind:+--tag "kind=$kind"} \
    --ignore-ctime ${parent:+--parent "$parent"}; then
    cd -- "$here"
    die "off-site copy of backup $id failed: $(offsite_problem "$restic_err"); the local backup is complete, and the next backup copies it again"
  fi
  cd -- "$here"
  summary=$(backup_summary <<<"$out")
  read -r snap added <<<"$summary"
  # restic 0.14 names the snapshot by its short id here, later versions in full.
  [[ "$snap" =~ ^[0-9a-f]{8,64}$ ]] ||
    die "off-site copy of backup $id failed: restic named no snapshot for it; the local backup is complete, and the next backup copies it again"
  offsite_ids+="${offsite_ids:+$'\n'}$id $snap $bytes"
  say "backup $id is off-site: $(human_bytes "${added:-0}") added to the repository"
  return 0
}

# offsite_catch_up: every local backup not yet off-site copied, oldest first.
offsite_catch_up() {
  local id
  offsite_open create
  offsite_index
  while read -r id; do
    [[ -n "$id" ]] || continue
    offsite_snapshot "$id" >/dev/null || offsite_push "$id"
  done < <(backup_ids | sort)
  offsite_save_ids
  status_set offsite_last_success_time "$(now_utc)"
}

# offsite_pull ID: backup ID from the repository into EDMS_BACKUP_DIR, built in .tmp-ID
# (removed by the next run if this one dies), checked against its SHA256SUMS, renamed
# into place. Call with the lock held.
offsite_pull() {
  local id=$1 snap out tmp="$edms_dir/.tmp-$1"
  offsite_list_start
  offsite_open read
  offsite_index
  snap=$(offsite_snapshot "$id") ||
    die "backup $id is neither in $edms_dir nor in the off-site repository $(offsite_where): run 'edms-backup offsite list' for the ids there"
  [[ ! -e "$tmp" ]] || die "$tmp exists and edms-backup did not make it: move it out of $edms_dir, then pull again"
  made_folder build ".tmp-$id"
  mkdir -m 0700 -- "$tmp"
  say "pulling backup $id from the off-site repository $(offsite_where)"
  if ! out=$(restic_run restore "$snap" --target "$tmp" 2>&1); then
    rm -rf -- "$tmp" && unmade_folder build ".tmp-$id"
    die "pulling backup $id failed: $(offsite_problem "$out"); nothing was kept"
  fi
  # shellcheck source=SCRIPTDIR/verify.sh
  source "$EDMS_BACKUP_ROOT/lib/verify.sh"
  local err
  if ! err=$( (verify_backup ".tmp-$id") 2>&1); then
    rm -rf -- "$tmp" && unmade_folder build ".tmp-$id"
    die "backup $id pulled from off-site does not check out (${err##*: }): nothing was kept; run 'edms-backup offsite check --read-data'"
  fi
  mv -- "$tmp" "$edms_dir/$id"
  unmade_folder build ".tmp-$id"
  say "backup $id pulled and checked against its SHA256SUMS"
}
