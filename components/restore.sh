#!/usr/bin/env bash
# Usage: (run by the stack's RestoreCommand; its environment is set by components/restoreCommand.ts)
#
# Restores backup EDMS_RESTORE_ID on the Docker host DOCKER_HOST:
# 1. with EDMS_RESTORE_FROM_HOST, first copies the backup from that host's backup volume
#    to this host's, streamed through both hosts' docker CLI, and checks its SHA256SUMS;
# 2. stops the running containers of EDMS_RESTORE_APP_CONTAINERS;
# 3. runs `edms-backup restore ID --yes [--with-config]` in a one-off container of
#    EDMS_RESTORE_IMAGE with the runtime copied in, the backup volume and the storage
#    volumes mounted read-write, and the runtime's environment (the variables named in
#    EDMS_RESTORE_PASS_VARS: PG*, EDMS_BACKUP_*, EDMS_SECRET_*, RESTIC_* and the off-site
#    backend's) passed by name, never on a command line; a backup that is not in the
#    volume but off-site is pulled from there by the runtime;
# 4. starts the stopped containers again, whether the restore worked or not.
# Exits non-zero with the runtime's message when the restore fails.
set -euo pipefail

say() { printf 'edms-backup restore: %s\n' "$*" >&2; }
fail() {
  say "$*"
  exit 1
}

id=${EDMS_RESTORE_ID:?EDMS_RESTORE_ID is not set}
image=${EDMS_RESTORE_IMAGE:?EDMS_RESTORE_IMAGE is not set}
network=${EDMS_RESTORE_NETWORK:?EDMS_RESTORE_NETWORK is not set}
backup_volume=${EDMS_RESTORE_BACKUP_VOLUME:?EDMS_RESTORE_BACKUP_VOLUME is not set}
runtime_dir=${EDMS_RESTORE_RUNTIME_DIR:?EDMS_RESTORE_RUNTIME_DIR is not set}
read -r -a storage_volumes <<<"${EDMS_RESTORE_STORAGE_VOLUMES:-}"
read -r -a app_containers <<<"${EDMS_RESTORE_APP_CONTAINERS:-}"
name="edms-backup-restore-${EDMS_RESTORE_STACK:-stack}-$$"
stopped=()

docker info >/dev/null 2>&1 ||
  fail "no Docker daemon answers at ${DOCKER_HOST:-the default socket}: check edms-backup:dockerHost"

# on_host HOST CMD...: a docker command on another host.
on_host() {
  local host=$1
  shift
  DOCKER_HOST=$host "$@"
}

has_backup() {
  "$@" run --rm -v "$backup_volume:/backups:ro" --entrypoint test "$image" -f "/backups/$id/SHA256SUMS"
}

transfer_backup() {
  local from=$1
  if has_backup docker; then
    say "backup $id is already on this host"
    return
  fi
  on_host "$from" docker info >/dev/null 2>&1 ||
    fail "the old host $from does not answer: check edms-backup:restore.fromHost"
  has_backup on_host "$from" docker ||
    fail "backup $id is not in volume $backup_volume on the old host $from: run 'edms-backup list' there"
  say "copying backup $id from $from"
  # Shared (hard-linked) files travel as plain files: the copy stands on its own.
  on_host "$from" docker run --rm -v "$backup_volume:/backups:ro" --entrypoint tar "$image" \
    -C /backups --format=posix --numeric-owner -cf - "$id" |
    docker run --rm -i -v "$backup_volume:/backups" --entrypoint bash "$image" -c '
      set -euo pipefail
      incoming=/backups/.incoming-$1
      rm -rf "$incoming" && mkdir "$incoming"
      tar -C "$incoming" --numeric-owner -xpf -
      (cd "$incoming/$1" && sha256sum --check --quiet --strict SHA256SUMS) ||
        { echo "the copy of backup $1 does not match its SHA256SUMS" >&2; exit 1; }
      mv "$incoming/$1" "/backups/$1"
      rmdir "$incoming"' _ "$id" ||
    fail "copying backup $id from $from failed (see above); nothing was restored"
  say "backup $id copied and its checksums verified"
}

finish() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  local container
  for container in "${stopped[@]}"; do
    if docker start "$container" >/dev/null; then
      say "started $container again"
    else
      say "could not start $container again: start it by hand (docker start $container)"
    fi
  done
}

if [[ -n "${EDMS_RESTORE_FROM_HOST:-}" ]]; then
  transfer_backup "$EDMS_RESTORE_FROM_HOST"
fi

trap finish EXIT
for container in "${app_containers[@]}"; do
  if [[ "$(docker inspect --format '{{.State.Running}}' "$container" 2>/dev/null)" == true ]]; then
    docker stop "$container" >/dev/null
    stopped+=("$container")
    say "stopped $container"
  else
    say "$container is not running; left as it is"
  fi
done

# A quarter of the default CPU weight: Docker shares the CPU between containers first, so
# at the default the restore's checks and copy took half the cores from the database
# container while it loaded. Measured with both in containers on 2 cores (medians of 6):
# 5.47 s at 1024, 5.05 s at 256, 5.11 s at 64 (pg_restore in here must still keep up).
args=(create --name "$name" --network "$network" --cpu-shares 256 -v "$backup_volume:/backups")
for i in "${!storage_volumes[@]}"; do
  args+=(-v "${storage_volumes[i]}:/edms/storage/$((i + 1))")
done
# Config files go back into their folders (a file cannot be replaced through a bind
# mount of the file itself); the folders are those of the config paths on the host.
declare -A mounted=()
config_folders=()
if [[ "${EDMS_RESTORE_WITH_CONFIG:-false}" == true ]]; then
  IFS=: read -r -a config_paths <<<"${EDMS_BACKUP_CONFIG_PATHS:-}"
  for path in "${config_paths[@]}"; do
    [[ -n "$path" ]] && config_folders+=("$(dirname -- "$path")")
  done
fi
if [[ -n "${EDMS_BACKUP_APP_ENV_FILE:-}" ]]; then
  config_folders+=("$(dirname -- "$EDMS_BACKUP_APP_ENV_FILE")")
fi
for folder in "${config_folders[@]}"; do
  if [[ -z "${mounted[$folder]+set}" ]]; then
    args+=(-v "$folder:${EDMS_BACKUP_CONFIG_ROOT:-/edms/config}$folder")
    mounted[$folder]=1
  fi
done
# Exactly the runtime's variables, named by the stack (EDMS_RESTORE_PASS_VARS): nothing of
# the operator's own shell (a PGSSLMODE, an AWS_PROFILE) reaches the restore.
read -r -a pass_vars <<<"${EDMS_RESTORE_PASS_VARS:?EDMS_RESTORE_PASS_VARS is not set}"
for var in "${pass_vars[@]}"; do
  args+=(-e "$var")
done
args+=("$image" /opt/edms-backup/edms-backup restore "$id" --yes)
if [[ "${EDMS_RESTORE_WITH_CONFIG:-false}" == true ]]; then
  args+=(--with-config)
fi

docker "${args[@]}" >/dev/null
tar -C "$runtime_dir" -cf - --transform 's,^\.,edms-backup,' . | docker cp - "$name:/opt"
say "restoring backup $id"
if ! docker start --attach "$name"; then
  fail "the restore of backup $id failed (its message is above); the application containers are started again"
fi
