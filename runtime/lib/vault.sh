# shellcheck shell=bash
# The vault: a restic repository of its own, on a host of its own, that pulls the stack's
# snapshots from the off-site repository (the source) with restic's copy. The protected VM
# holds no credential of it; the vault reads the source without locking it (--no-lock:
# read credentials suffice) and never writes to it.
#
# RESTIC_REPOSITORY / RESTIC_PASSWORD(_FILE): the vault repository (its host's own disk).
# RESTIC_FROM_REPOSITORY / RESTIC_FROM_PASSWORD(_FILE): the source, with its transport's
# settings as the off-site copy has them (AWS_*, RESTIC_CACERT, EDMS_BACKUP_OFFSITE_SSH_*).
# EDMS_BACKUP_DIR holds the vault's state: .vault (the two repositories' ids, remembered
# at the first sync), .status, the lock and restic's cache.
#
# Reads: edms_dir offsite_stack offsite_host restic_err (lib/offsite.sh)
# Sets:  vault_snaps (vault_index), source_snaps (source_index)

# vault_setup: the settings a vault command needs, checked.
vault_setup() {
  [[ -n "${RESTIC_REPOSITORY:-}" ]] ||
    die "RESTIC_REPOSITORY is not set: set it to the vault repository (the vault stack sets /vault/repository)"
  offsite_setup
}

# source_setup: the source's settings, checked (sync).
source_setup() {
  [[ -n "${RESTIC_FROM_REPOSITORY:-}" ]] ||
    die "RESTIC_FROM_REPOSITORY is not set: set it to the stack's off-site repository, which the vault copies from"
  [[ -n "${RESTIC_FROM_PASSWORD:-}" || -n "${RESTIC_FROM_PASSWORD_FILE:-}" || -n "${RESTIC_FROM_PASSWORD_COMMAND:-}" ]] ||
    die "RESTIC_FROM_REPOSITORY is set but no RESTIC_FROM_PASSWORD or RESTIC_FROM_PASSWORD_FILE: set the off-site repository's password (vault stack config sourcePassword)"
  [[ "$RESTIC_FROM_REPOSITORY" != "$RESTIC_REPOSITORY" ]] ||
    die "RESTIC_FROM_REPOSITORY and RESTIC_REPOSITORY are the same repository: the vault must be a repository of its own"
}

# source_where: the source as it may be shown (no user-info, no query).
source_where() {
  RESTIC_REPOSITORY=$RESTIC_FROM_REPOSITORY offsite_where
}

# source_start NAME ARG...: restic_start against the source, read-only: its password from
# the RESTIC_FROM_* variables (restic reads an empty variable as unset), never locked.
source_start() {
  RESTIC_REPOSITORY=$RESTIC_FROM_REPOSITORY RESTIC_PASSWORD=${RESTIC_FROM_PASSWORD:-} \
    RESTIC_PASSWORD_FILE=${RESTIC_FROM_PASSWORD_FILE:-} RESTIC_PASSWORD_COMMAND=${RESTIC_FROM_PASSWORD_COMMAND:-} \
    restic_start "$1" --no-lock "${@:2}"
}

# source_problem STDERR: offsite_problem's line, about the source.
source_problem() {
  local line
  line=$(RESTIC_REPOSITORY=$RESTIC_FROM_REPOSITORY offsite_problem "$1")
  line=${line//off-site repository/source (off-site) repository}
  line=${line//RESTIC_PASSWORD (stack config offsitePassword)/RESTIC_FROM_PASSWORD (vault stack config sourcePassword)}
  printf '%s' "$line"
}

# repository_id JSON: the id of restic's `cat config` output, or nothing.
repository_id() {
  local id
  id=$(jq -r '.id // empty' <<<"$1" 2>/dev/null) || id=""
  [[ "$id" =~ ^[0-9a-f]{64}$ ]] && printf '%s' "$id"
}

# source_open: (after source_start source_config cat config) the source opens with its password and is the repository the vault copied
# from before (its id, remembered in .vault at the first sync). Dies naming the cause.
source_open() {
  local out id remembered
  remembered=$(kv_get "$edms_dir/.vault" source_id 2>/dev/null || true)
  if ! restic_finish source_config out; then
    if offsite_missing "$restic_err"; then
      vault_fail "no restic repository at the source $(source_where) any more${remembered:+, where the vault copied repository ${remembered:0:8} from}: the off-site copies are gone (deleted?); the vault keeps its own: see the runbook \"The VM was compromised\""
    fi
    vault_fail "$(source_problem "$restic_err")"
  fi
  id=$(repository_id "$out") || vault_fail "source repository $(source_where): cannot read its id from restic cat config"
  if [[ -n "$remembered" && "$id" != "$remembered" ]]; then
    vault_fail "the source repository $(source_where) is ${id:0:8}, not ${remembered:0:8} which the vault copied from: it was replaced (re-created, or RESTIC_FROM_REPOSITORY points elsewhere); nothing was copied. Fix RESTIC_FROM_REPOSITORY; to copy from a new repository on purpose, delete source_id from $edms_dir/.vault"
  fi
  [[ -n "$remembered" ]] || kv_set "$edms_dir/.vault" source_id "$id" source "$(source_where)"
}

# vault_open: the vault repository, created at the first sync (with the source's chunker
# parameters, so that its copies deduplicate as the source's snapshots do), then its id
# remembered; a remembered vault that is missing or another is an error, never re-created.
vault_open() {
  local create=${1:-} out id remembered
  remembered=$(kv_get "$edms_dir/.vault" vault_id 2>/dev/null || true)
  vault_known && return 0
  local -a call=(restic_json out)
  [[ -z "${started_pid[vault_config]:-}" ]] || call=(restic_finish vault_config out)
  if ! "${call[@]}" cat config; then
    offsite_missing "$restic_err" || die "$(vault_problem "$restic_err")"
    [[ -z "$remembered" ]] ||
      die "the vault repository $(offsite_where) is missing, but the vault's copies were in repository ${remembered:0:8} there: mount its disk or fix RESTIC_REPOSITORY; nothing was changed"
    [[ -n "$create" ]] ||
      die "no vault repository at $(offsite_where): check RESTIC_REPOSITORY; nothing was changed (only 'edms-backup vault sync' creates one)"
    say "initialising the vault repository $(offsite_where)"
    # The source from RESTIC_FROM_REPOSITORY, as restic reads it: not on the command line.
    out=$(restic_run init --copy-chunker-params 2>&1) || die "$(vault_problem "$out")"
    restic_json out cat config || die "$(vault_problem "$restic_err")"
  fi
  id=$(repository_id "$out") || die "vault repository $(offsite_where): cannot read its id from restic cat config"
  [[ -z "$remembered" || "$id" == "$remembered" ]] ||
    die "the vault repository $(offsite_where) is ${id:0:8}, not ${remembered:0:8} that holds the vault's copies: fix RESTIC_REPOSITORY; nothing was changed"
  [[ -n "$remembered" ]] || kv_set "$edms_dir/.vault" vault_id "$id"
}

# vault_known: the vault repository is a folder of this host (the vault stack's), opened
# before and still there: its files are read directly, without deriving a key (each restic
# call spends most of its time there).
vault_known() {
  [[ "$RESTIC_REPOSITORY" == /* && -f "$RESTIC_REPOSITORY/config" ]] && kv_get "$edms_dir/.vault" vault_id >/dev/null 2>&1
}

# vault_files_digest: a digest of the names of the vault's snapshot files (immutable, named
# by their ids): it changes whenever a snapshot is added or removed.
vault_files_digest() {
  find "$RESTIC_REPOSITORY/snapshots" -maxdepth 1 -type f -printf '%f\n' 2>/dev/null | sort | sha256sum | cut -c1-16
}

# vault_table_save DIGEST: vault_snaps kept for the next sync, valid while DIGEST holds.
vault_table_save() {
  (umask 077 && printf '%s\n%s\n' "$1" "$vault_snaps" >"$edms_dir/.vault-table.$$") && mv -f -- "$edms_dir/.vault-table.$$" "$edms_dir/.vault-table"
}

vault_problem() {
  local line
  line=$(offsite_problem "$1")
  printf '%s' "${line//off-site repository/vault repository}"
}

# snapshot_table: restic's `snapshots --json` (stdin) as one line per snapshot, by key:
# "SNAPSHOT ORIGINAL EPOCH STAMP HOST BACKUP_ID STACK EDMS BYTES KIND", where ORIGINAL is
# the source's id of a copy (else SNAPSHOT), STAMP the time as a backup id would name it,
# BACKUP_ID, STACK, BYTES and KIND the id=, stack=, bytes= and kind= tags (- or 0 when
# absent), and EDMS 1 when tagged edms-backup. The times (RFC 3339, any offset and fraction) are read by one
# date for all.
snapshot_table() {
  local rows
  # Point-in-time recovery's WAL copies are not backups: neither copied nor counted.
  rows=$(jq -r '(. // [])[] | select((.tags // []) | index("edms-backup-pitr") | not) | (.tags // []) as $t
    | [ .id, (.original // .id), .time, (.hostname // "-" | if . == "" then "-" else gsub("[[:space:]]"; "_") end),
        ($t | map(select(test("^id=[0-9]{8}_[0-9]{6}$"))) | first // "id=-" | ltrimstr("id=")),
        ($t | map(select(startswith("stack="))) | first // "stack=-" | ltrimstr("stack=") | if . == "" then "-" else gsub("[[:space:]]"; "_") end),
        (if ($t | index("edms-backup")) then "1" else "0" end),
        ($t | map(select(test("^bytes=[0-9]+$"))) | first // "bytes=0" | ltrimstr("bytes=")),
        ($t | map(select(test("^kind=[a-z-]+$"))) | first // "kind=-" | ltrimstr("kind=")) ] | join(" ")') || return 1
  [[ -n "$rows" ]] || return 0
  paste -d' ' <(cut -d' ' -f1,2 <<<"$rows") \
    <(cut -d' ' -f3 <<<"$rows" | sed -E 's/T/ /; s/\.[0-9]+//' | TZ=UTC date -f - +'%s %Y%m%d_%H%M%S') \
    <(cut -d' ' -f4- <<<"$rows")
}

# vault_index [cached]: the vault's snapshots into vault_snaps (snapshot_table lines); from
# the call vault_snapshots when one was started (restic_start), unless the vault was new
# then. With "cached" (sync: it needs the originals and times, not the vault's own ids), a
# local vault's table from the last sync serves while its snapshot files are the same.
vault_index() {
  local json digest="" line
  if [[ -n "${1:-}" ]] && vault_known; then
    digest=$(vault_files_digest)
    if [[ -f "$edms_dir/.vault-table" ]] && IFS= read -r line <"$edms_dir/.vault-table" && [[ "$line" == "$digest" ]]; then
      vault_snaps=$(tail -n +2 -- "$edms_dir/.vault-table")
      return 0
    fi
  fi
  if [[ -n "${started_pid[vault_snapshots]:-}" ]] && restic_finish vault_snapshots json; then
    :
  else
    restic_json json snapshots --json || die "$(vault_problem "$restic_err")"
  fi
  vault_snaps=$(snapshot_table <<<"$json") || die "vault repository $(offsite_where): cannot read restic's list of snapshots"
  [[ -z "$digest" ]] || vault_table_save "$digest"
}

# source_index: (after source_start source_snapshots snapshots --json) every snapshot of the source into source_snaps, not only the stack's:
# one made by something else is something to tell.
source_index() {
  local json
  restic_finish source_snapshots json || vault_fail "$(source_problem "$restic_err")"
  source_snaps=$(snapshot_table <<<"$json") || vault_fail "source repository $(source_where): cannot read restic's list of snapshots"
}

# id_time ID: a backup id's time as "YYYY-MM-DD HH:MM:SS UTC".
id_time() {
  printf '%s-%s-%s %s:%s:%s UTC' "${1:0:4}" "${1:4:2}" "${1:6:2}" "${1:9:2}" "${1:11:2}" "${1:13:2}"
}
