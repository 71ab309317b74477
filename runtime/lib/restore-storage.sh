# shellcheck shell=bash
# The storage half of a restore: each storage-<i> of the backup is staged inside its
# target folder (.edms-restore-stage, renamed .edms-restore-ready when whole), then swapped
# in by renames (the old entries go to .edms-restore-old, then away). Every step is a
# rename or a removal that can be repeated after an interruption.
#
# Reads: backup targets (set by check_storage_targets)
# Sets:  staging_pid, and the recovery record's storage_swapped.

# start_storage_staging: stage_storage started in the background.
start_storage_staging() {
  stage_storage &
  staging_pid=$!
}

# finish_storage_staging: waits for stage_storage (which names its own failure).
finish_storage_staging() {
  wait "$staging_pid" || exit 1
  staging_pid=""
}

# stage_storage: copies each storage-<i> into its target's .edms-restore-stage, renamed to
# .edms-restore-ready when whole. Runs in the background; on TERM it stops its copy.
stage_storage() {
  local i target err copy_pid="" errors
  trap '[[ -n "$copy_pid" ]] && kill "$copy_pid" 2>/dev/null; exit 143' TERM
  errors=$(mktemp)
  for ((i = 0; i < ${#targets[@]}; i++)); do
    target=${targets[i]}
    say "staging storage-$((i + 1)) in $target"
    mkdir -- "$target/.edms-restore-stage"
    # Where the filesystem shares blocks (XFS, btrfs) the copy costs nothing; elsewhere it
    # copies (docs/performance.md, "Restore: staging the storage").
    yield_cpu cp -a --reflink=auto -- "$backup/storage-$((i + 1))/." "$target/.edms-restore-stage/" 2>"$errors" &
    copy_pid=$!
    if ! wait "$copy_pid"; then
      err=$(<"$errors")
      rm -f -- "$errors"
      case "$err" in
        *"No space left"*) die "storage folder $target is full (staging the restore needs room for a copy): free space there; nothing was changed" ;;
        *) die "staging storage-$((i + 1)) into $target failed: $(first_error_line "$err"); nothing was changed" ;;
      esac
    fi
    copy_pid=""
    # On disk before it is swapped in: a crash after the swap must not leave short files.
    sync -f "$target/.edms-restore-stage" 2>/dev/null || sync
    mv -- "$target/.edms-restore-stage" "$target/.edms-restore-ready"
  done
  rm -f -- "$errors"
}

# discard_staged_storage: what staging left in the targets, removed (nothing live).
discard_staged_storage() {
  local target
  for target in "${targets[@]}"; do
    rm -rf -- "$target/.edms-restore-stage" "$target/.edms-restore-ready"
  done
}

# A restore stopped while swapping a storage folder is finished first, so that every
# folder is whole (old or restored) before anything else happens.
finish_interrupted_swaps() {
  local target
  for target in "${targets[@]}"; do
    rm -rf -- "$target/.edms-restore-stage"
    if [[ -d "$target/.edms-restore-old" && -d "$target/.edms-restore-ready" ]]; then
      say "finishing the storage swap an interrupted restore left in $target"
      swap_folder "$target"
    elif [[ -d "$target/.edms-restore-old" ]]; then
      rm -rf -- "$target/.edms-restore-old"
    fi
    rm -rf -- "$target/.edms-restore-ready"
  done
}

swap_storage() {
  local target
  for target in "${targets[@]}"; do
    swap_folder "$target"
    rm -rf -- "$target/.edms-restore-ready"
  done
  recovery[storage_swapped]=yes
}

# swap_folder TARGET: moves TARGET's entries aside into .edms-restore-old, the staged ones
# from .edms-restore-ready in, and gives TARGET the backed-up folder's owner, mode and
# mtime. Each step is a rename and can be repeated after an interruption.
swap_folder() {
  local target=$1 old="$1/.edms-restore-old" ready="$1/.edms-restore-ready" meta owner mode mtime
  mkdir -p -- "$old"
  if [[ ! -f "$old/.moved-aside" ]]; then
    find "$target" -mindepth 1 -maxdepth 1 ! -name '.edms-restore-old' ! -name '.edms-restore-ready' -print0 |
      xargs -0 -r mv -t "$old" --
    stat -c '%u:%g %a %.9Y' -- "$ready" >"$old/.moved-aside"
  fi
  find "$ready" -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r mv -t "$target" --
  meta=$(<"$old/.moved-aside")
  rm -rf -- "$old"
  rmdir -- "$ready"
  read -r owner mode mtime <<<"$meta"
  chown -- "$owner" "$target"
  chmod -- "$mode" "$target"
  touch -d "@$mtime" -- "$target"
}
