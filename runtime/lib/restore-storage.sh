# shellcheck shell=bash
# The storage half of a restore: each storage-<i> of the backup is staged inside its
# target folder (.edms-restore-stage, renamed .edms-restore-ready when whole), then swapped
# in by renames (the old entries go to .edms-restore-old, then away). Every step is a
# rename or a removal that can be repeated after an interruption.
#
# Reads: backup targets (set by check_storage_targets)
# Sets:  staging_pid, and the recovery record's storage_swapped.

# start_storage_staging: stage_storage started in the background, each target's staging
# folders recorded first (made.sh: only what a record names is ever removed from a storage
# folder; the background job writes no record, the main process does).
start_storage_staging() {
  local hashes
  mapfile -t hashes < <(target_hashes)
  made_folder stage "${hashes[@]}"
  stage_storage &
  staging_pid=$!
}

# finish_storage_staging: waits for stage_storage (which names its own failure).
finish_storage_staging() {
  wait "$staging_pid" || exit 1
  staging_pid=""
}

# stage_storage: copies each storage-<i> into its target's .edms-restore-stage, renamed to
# .edms-restore-ready when whole. Runs in the background; on TERM it stops its copy, and
# waits for it: what it wrote is removed next (discard_staged_storage), and must stay so.
stage_storage() {
  local i target err copy_pid="" errors
  trap '[[ -n "$copy_pid" ]] && kill "$copy_pid" 2>/dev/null && wait "$copy_pid"; exit 143' TERM
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
    step "storage.$((i + 1)).staged"
  done
  rm -f -- "$errors"
}

# discard_staged_storage: what staging left in the targets, removed (nothing live), where
# the record says this folder's restore staged.
discard_staged_storage() {
  local target
  for target in "${targets[@]}"; do
    staged_here "$target" || continue
    rm -rf -- "$target/.edms-restore-stage" "$target/.edms-restore-ready"
    unmade_folder stage "$(path_hash "$target")"
  done
}

# target_hashes: each target's path_hash, a line each: its staging folders' record.
target_hashes() {
  local target
  for target in "${targets[@]}"; do path_hash "$target"; done
}

# staged_here TARGET: whether a restore of this backup folder staged into TARGET: its
# record, or a stopped restore's journal (which names the targets' swap as still to do).
staged_here() {
  folder_made stage "$(path_hash "$1")" || [[ -n "$(journal_phase)" ]]
}

# storage_swap_pending TARGET: whether TARGET is in the middle of a swap (its old entries
# moved aside, or being).
storage_swap_pending() {
  [[ -e "$1/.edms-restore-old" || -e "$1/.edms-restore-swapped-aside" ]]
}

# finish_interrupted_swaps: a storage swap a stopped restore began is finished first, so
# that every folder is whole before anything else happens; a folder only staged (its
# restore stopped before the database swap) is discarded.
finish_interrupted_swaps() {
  local target
  for target in "${targets[@]}"; do
    staged_here "$target" || continue
    rm -rf -- "$target/.edms-restore-stage"
    if storage_swap_pending "$target"; then
      say "finishing the storage swap an interrupted restore left in $target"
      swap_folder "$target"
    fi
    rm -rf -- "$target/.edms-restore-ready"
    unmade_folder stage "$(path_hash "$target")"
  done
}

swap_storage() {
  local i
  for ((i = 0; i < ${#targets[@]}; i++)); do
    [[ -d "${targets[i]}/.edms-restore-ready" ]] || storage_swap_pending "${targets[i]}" || continue
    swap_folder "${targets[i]}" "$((i + 1))"
  done
  local hashes
  mapfile -t hashes < <(target_hashes)
  unmade_folder stage "${hashes[@]}"
  recovery[storage_swapped]=yes
}

# swap_folder TARGET [I]: TARGET's entries moved aside into .edms-restore-old, the staged
# ones of .edms-restore-ready moved in, the old ones removed; TARGET gets the backed-up
# folder's owner, mode and mtime. The marker .edms-restore-swapped-aside (the staged
# folder's owner, mode and mtime) says that everything was moved aside: it lies beside,
# not inside, what is removed, so each step can be repeated after a stop at any point.
swap_folder() {
  local target=$1 i=${2:-} old="$1/.edms-restore-old" ready="$1/.edms-restore-ready"
  local marker="$1/.edms-restore-swapped-aside" meta owner mode mtime
  if [[ ! -f "$marker" && ! -d "$ready" ]]; then
    rm -rf -- "$old" # nothing staged to swap in: what is aside is a leftover
    return 0
  fi
  if [[ ! -f "$marker" ]]; then
    mkdir -p -- "$old"
    find "$target" -mindepth 1 -maxdepth 1 ! -name '.edms-restore-old' ! -name '.edms-restore-ready' -print0 |
      xargs -0 -r mv -t "$old" --
    stat -c '%u:%g %a %.9Y' -- "$ready" >"$marker.tmp"
    mv -- "$marker.tmp" "$marker"
    step "storage.$i.moved-aside"
  fi
  if [[ -d "$ready" ]]; then
    find "$ready" -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r mv -t "$target" --
    step "storage.$i.moved-in"
  fi
  rm -rf -- "$old"
  step "storage.$i.old-removed"
  [[ ! -d "$ready" ]] || rmdir -- "$ready"
  meta=$(<"$marker")
  read -r owner mode mtime <<<"$meta"
  chown -- "$owner" "$target"
  chmod -- "$mode" "$target"
  touch -d "@$mtime" -- "$target"
  rm -f -- "$marker"
  touch -d "@$mtime" -- "$target" # removing the marker changed it
  step "storage.$i.swapped"
}
