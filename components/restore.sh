#!/bin/sh
# Usage: (run by the stack's RestoreCommand as `/bin/sh -c`; its settings are set by
# components/restoreCommand.ts, in EDMS_RESTORE_* variables)
#
# Asks the Docker host EDMS_RESTORE_DOCKER_HOST to restore backup EDMS_RESTORE_ID, then
# waits for it and reports its outcome. The restore runs on that host, in a one-off
# container named EDMS_RESTORE_JOB (`edms-backup restore-job`): it stops the application
# containers, restores, and starts them again, and it finishes even when this script is
# killed (a cancelled `pulumi up`). Run again, this script finds that container, running
# or finished, and reports it instead of starting a second restore.
#
# With EDMS_RESTORE_FROM_HOST, the backup is first copied from that host's backup volume
# (streamed through both hosts' docker CLI) and checked against its SHA256SUMS; with
# EDMS_RESTORE_FROM_VAULT, from the vault container EDMS_RESTORE_VAULT_CONTAINER on that
# host (`edms-backup vault dump`), the same way: the VM never gets the vault's password.
#
# Needs a POSIX shell and the docker CLI, nothing else (it runs from a macOS workstation
# too). The docker CLI runs in a closed environment: PATH, HOME and what it needs to reach
# a host (SSH_AUTH_SOCK, DOCKER_CONFIG, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY); the runtime
# gets exactly EDMS_RESTORE_ENV, in a file of mode 0600 that `docker inspect` does not show.
set -eu

say() { printf 'edms-backup restore: %s\n' "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

target=${EDMS_RESTORE_DOCKER_HOST:?EDMS_RESTORE_DOCKER_HOST is not set}
id=${EDMS_RESTORE_ID:?EDMS_RESTORE_ID is not set}
job=${EDMS_RESTORE_JOB:?EDMS_RESTORE_JOB is not set}
image=${EDMS_RESTORE_IMAGE:?EDMS_RESTORE_IMAGE is not set}
base_image=${EDMS_RESTORE_BASE_IMAGE:?EDMS_RESTORE_BASE_IMAGE is not set}
network=${EDMS_RESTORE_NETWORK:?EDMS_RESTORE_NETWORK is not set}
backup_volume=${EDMS_RESTORE_BACKUP_VOLUME:?EDMS_RESTORE_BACKUP_VOLUME is not set}
runtime_dir=${EDMS_RESTORE_RUNTIME_DIR:?EDMS_RESTORE_RUNTIME_DIR is not set}
socket=${EDMS_RESTORE_DOCKER_SOCKET:-/var/run/docker.sock}
work=""

# docker_at HOST ARGS...: the docker CLI for HOST, in a closed environment.
docker_at() {
  at_host=$1
  shift
  env -i PATH="$PATH" HOME="${HOME:-/}" DOCKER_HOST="$at_host" \
    ${SSH_AUTH_SOCK:+"SSH_AUTH_SOCK=$SSH_AUTH_SOCK"} \
    ${DOCKER_CONFIG:+"DOCKER_CONFIG=$DOCKER_CONFIG"} \
    ${DOCKER_CERT_PATH:+"DOCKER_CERT_PATH=$DOCKER_CERT_PATH"} \
    ${DOCKER_TLS_VERIFY:+"DOCKER_TLS_VERIFY=$DOCKER_TLS_VERIFY"} \
    docker "$@"
}

d() { docker_at "$target" "$@"; }

# follow_job: the job's output from its start, then its exit status; the job is removed.
follow_job() {
  d logs --follow "$job" || true
  status=$(d wait "$job") || fail "lost the restore job $job on $target: see 'docker logs $job' there"
  d rm "$job" >/dev/null 2>&1 || true
  if [ "$status" != 0 ]; then
    fail "the restore of backup $id failed (its message is above); the application containers were started again"
  fi
  say "backup $id restored"
  exit 0
}

# An earlier `pulumi up` started this restore and was cancelled: report that one.
report_earlier_job() {
  state=$(d inspect --format '{{.State.Status}}' "$job" 2>/dev/null) || return 0
  case "$state" in
    created)
      # Killed before it started: it never ran.
      d rm -f "$job" >/dev/null
      ;;
    running | restarting)
      say "the restore of backup $id started by an earlier run is still running on $target; following it"
      follow_job
      ;;
    *)
      say "the restore of backup $id started by an earlier run has ended on $target; its report:"
      follow_job
      ;;
  esac
}

# The copy between hosts runs in the configured PostgreSQL image: the old host may hold
# another build of the runtime's image, or none.
has_backup() {
  docker_at "$1" run --rm -v "$backup_volume:/backups:ro" --entrypoint test "$base_image" -f "/backups/$id/SHA256SUMS"
}

transfer_backup() {
  from=$1
  if has_backup "$target"; then
    say "backup $id is already on this host"
    return
  fi
  docker_at "$from" info >/dev/null 2>&1 ||
    fail "the old host $from does not answer: check edms-backup:restore.fromHost (a lost host: runbook E, restore.fromOffsite)"
  has_backup "$from" ||
    fail "backup $id is not in volume $backup_volume on the old host $from: run 'edms-backup list' there"
  say "copying backup $id from $from"
  # Shared (hard-linked) files travel as plain files: the copy stands on its own.
  docker_at "$from" run --rm -v "$backup_volume:/backups:ro" --entrypoint tar "$base_image" \
    -C /backups --format=posix --numeric-owner -cf - "$id" | receive_backup . ||
    fail "copying backup $id from $from failed (see above); nothing was restored"
  say "backup $id copied and its checksums verified"
}

# transfer_from_vault HOST: the backup streamed from the stack's vault on HOST (restic's
# dump in the vault's own container, which holds its password) into the backup volume.
transfer_from_vault() {
  from=$1
  vault=${EDMS_RESTORE_VAULT_CONTAINER:?EDMS_RESTORE_VAULT_CONTAINER is not set}
  if has_backup "$target"; then
    say "backup $id is already on this host"
    return
  fi
  docker_at "$from" info >/dev/null 2>&1 ||
    fail "the vault's host $from does not answer: check edms-backup:restore.fromVault (the vault stack's dockerHost)"
  say "copying backup $id from the vault $vault on $from"
  docker_at "$from" exec "$vault" /opt/edms-backup/edms-backup vault dump "$id" | receive_backup "$id" ||
    fail "copying backup $id from the vault failed (see above); nothing was restored"
  say "backup $id copied from the vault and its checksums verified"
}

# receive_backup INTO: a tar stream on stdin unpacked on the target host in a folder of its
# own (INTO: the folder the stream's root becomes, "." when the stream holds the backup's
# folder), checked against SHA256SUMS, then renamed into place. A cut stream fails the
# checksums, and then nothing is kept.
receive_backup() {
  # shellcheck disable=SC2016 # the receiving script expands its own arguments
  d run --rm -i -v "$backup_volume:/backups" --entrypoint bash "$base_image" -c '
    set -euo pipefail
    incoming=/backups/.incoming-$1
    rm -rf "$incoming" && mkdir -p "$incoming/$2"
    tar -C "$incoming/$2" --numeric-owner -xpf -
    (cd "$incoming/$1" && sha256sum --check --quiet --strict SHA256SUMS) ||
      { echo "the copy of backup $1 does not match its SHA256SUMS" >&2; rm -rf "$incoming"; exit 1; }
    mv "$incoming/$1" "/backups/$1"
    rm -rf "$incoming"' _ "$id" "$1"
}

# create_job: the one-off container, with the volumes, the config folders, the host's
# Docker socket and the runtime; its settings in a file copied in, not in its environment.
create_job() {
  set -- create --name "$job" --network "$network" --cpu-shares 256 \
    --label "edms-backup.restore-job=$id" \
    -v "$backup_volume:/backups" -v "$socket:/var/run/docker.sock" \
    -e EDMS_BACKUP_ENV_FILE=/run/edms-backup.env \
    -e "EDMS_RESTORE_APP_CONTAINERS=${EDMS_RESTORE_APP_CONTAINERS:-}"
  # A quarter of the default CPU weight: at the default the restore's checks took half
  # the cores from the database container while it loaded (docs/performance.md).
  i=1
  for volume in ${EDMS_RESTORE_STORAGE_VOLUMES:-}; do
    set -- "$@" -v "$volume:/edms/storage/$i"
    i=$((i + 1))
  done
  # Config files go back into their folders (a file cannot be replaced through a bind
  # mount of the file itself): the folders to mount are worked out by the program.
  old_ifs=$IFS
  IFS='
'
  for folder in ${EDMS_RESTORE_CONFIG_FOLDERS:-}; do
    set -- "$@" -v "$folder:/edms/config$folder"
  done
  IFS=$old_ifs
  set -- "$@" "$image" /opt/edms-backup/edms-backup restore-job "$id"
  if [ "${EDMS_RESTORE_WITH_CONFIG:-false}" = true ]; then
    set -- "$@" --with-config
  fi
  # One document back: the files' paths, one a line (settings refuse a newline in one).
  if [ -n "${EDMS_RESTORE_FILES:-}" ]; then
    [ "${EDMS_RESTORE_OVERWRITE:-false}" != true ] || set -- "$@" --overwrite
    set -- "$@" --files
    IFS='
'
    for file in $EDMS_RESTORE_FILES; do
      set -- "$@" "$file"
    done
    IFS=$old_ifs
  fi
  d "$@" >/dev/null

  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (umask 077 && printf '%s\n' "${EDMS_RESTORE_ENV:-}" >"$work/env")
  d cp "$work/env" "$job:/run/edms-backup.env"
  rm -f "$work/env"
  d cp "$runtime_dir" "$job:/opt/edms-backup"
}

d info >/dev/null 2>&1 ||
  fail "no Docker daemon answers at $target: check edms-backup:dockerHost"
report_earlier_job
if [ -n "${EDMS_RESTORE_FROM_HOST:-}" ]; then
  transfer_backup "$EDMS_RESTORE_FROM_HOST"
elif [ -n "${EDMS_RESTORE_FROM_VAULT:-}" ]; then
  transfer_from_vault "$EDMS_RESTORE_FROM_VAULT"
fi
create_job
d start "$job" >/dev/null
follow_job
