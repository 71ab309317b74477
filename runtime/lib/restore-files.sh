# shellcheck shell=bash
# restore ID --files PATH...: files and folders of the live storage folders put back as
# backup ID holds them (owner, mode, mtime), the database untouched. A file that is newer
# in the live folder than in the backup is kept unless --overwrite; one with the backup's
# size and mtime is left alone. What comes back is copied into a staging folder inside its
# storage folder (.edms-restore-files, recorded before it is made), then renamed into place,
# a folder at a time: a file is either the old one or the backup's, never half-written; a
# stopped run's staging folder is removed by the next run, which then does the rest.
#
# Reads: id backup file_paths overwrite targets (check_storage_targets)
# Sets:  files_restored files_kept files_same (counts); TMPDIR/files-<i> (what comes back to
#        storage folder i), files-counts and files-report (report_files reads them)

# restore_files: the whole of it, the lock held.
restore_files() {
  local i n
  files_restored=0 files_kept=0 files_same=0
  check_storage_targets
  discard_staged_files
  local -a where=()
  for ((n = 0; n < ${#file_paths[@]}; n++)); do where+=("$(locate_path "${file_paths[n]}")"); done
  for ((i = 0; i < ${#targets[@]}; i++)); do
    : >"$TMPDIR/files-$i"
  done
  for ((n = 0; n < ${#file_paths[@]}; n++)); do
    plan_path "${where[n]%%$'\t'*}" "${where[n]#*$'\t'}" "${file_paths[n]}"
  done
  for ((i = 0; i < ${#targets[@]}; i++)); do
    [[ -s "$TMPDIR/files-$i" ]] || continue
    stage_files "$i"
    place_files "$i"
  done
  report_files
}

# locate_path PATH: "I<TAB>REL": the storage folder (index into targets) PATH is in, and
# PATH relative to it ("" for the folder itself). Dies, naming the fix, when it is in none.
locate_path() {
  local path=$1 i dir
  [[ "$path" == /* ]] || die "--files takes absolute paths in the storage folders ($(storage_dirs_text)); '$path' is not absolute"
  path=${path%"${path##*[!/]}"}
  [[ "/$path/" != */../* && "/$path/" != */./* ]] || die "--files takes paths without . or .. ('$1'): give the file's path as the application stores it"
  for ((i = 0; i < ${#targets[@]}; i++)); do
    for dir in "${edms_storage_dirs[i]%/}" "${targets[i]%/}"; do
      if [[ "$path" == "$dir" ]]; then printf '%d\t\n' "$i" && return 0; fi
      if [[ "$path" == "$dir"/* ]]; then printf '%d\t%s\n' "$i" "${path#"$dir"/}" && return 0; fi
    done
  done
  die "$1 is not in a storage folder ($(storage_dirs_text)): give an absolute path inside one of them"
}

storage_dirs_text() {
  local IFS=,
  printf '%s' "${edms_storage_dirs[*]}"
}

# plan_path I REL PATH: what of storage-I/REL comes back, appended to files-I (NUL-separated
# paths relative to the storage folder, for tar), and counted: missing here or older here
# (or newer with --overwrite): back; newer here: kept; same size and mtime: left.
plan_path() {
  local i=$1 rel=$2 path=$3 src="$backup/storage-$(($1 + 1))" live=${targets[$1]} up
  [[ -e "$src/${rel:-.}" || -L "$src/$rel" ]] ||
    die "$path is not in backup $id (it did not exist when the backup was taken): pick an older backup (edms-backup list)"
  # Folders above it that are gone here come back too, with their owner and mode.
  up=$rel
  while [[ "$up" == */* ]]; do
    up=${up%/*}
    [[ -e "$live/$up" ]] || printf '%s\0' "$up" >>"$TMPDIR/files-$i"
  done
  # One listing of each side, joined by path (no command per file).
  {
    # ("./" first: a name that begins with - is no option of find's)
    (cd -- "$src" && find "./$rel" -printf 'S\t%y\t%T@\t%s\t%p\0')
    if [[ -e "$live/${rel:-.}" || -L "$live/$rel" ]]; then (cd -- "$live" && find "./$rel" -printf 'L\t%y\t%T@\t%s\t%p\0'); fi
  } | awk -v RS='\0' -v ORS='\0' -v overwrite="$overwrite" -v counts="$TMPDIR/files-counts" -v report="$TMPDIR/files-report" \
    -v prefix="${edms_storage_dirs[i]%/}/" '
      function rel(p) { sub(/^\.\/+/, "", p); sub(/\/$/, "", p); return p }
      { split($0, f, "\t"); p = rel(substr($0, length(f[1] f[2] f[3] f[4]) + 5)) }
      f[1] == "L" { ltype[p] = f[2]; lmtime[p] = f[3]; lsize[p] = f[4]; next }
      { order[++n] = p; stype[p] = f[2]; smtime[p] = f[3]; ssize[p] = f[4] }
      END {
        for (k = 1; k <= n; k++) {
          p = order[k]
          if (stype[p] == "d") { if (!(p in ltype) && p != "") print p; continue }
          if (!(p in ltype)) { print p; back++; printf "back (was missing)\t%s%s\n", prefix, p >> report; continue }
          if (ltype[p] == stype[p] && lmtime[p] + 0 == smtime[p] + 0 && lsize[p] == ssize[p]) { same++; continue }
          if (lmtime[p] + 0 > smtime[p] + 0 && overwrite == "") { kept++; printf "kept, newer here\t%s%s\n", prefix, p >> report; continue }
          print p; back++
          printf "%s\t%s%s\n", (lmtime[p] + 0 > smtime[p] + 0 ? "back (over a newer file: --overwrite)" : "back (was changed)"), prefix, p >> report
        }
        printf "%d %d %d\n", back, kept, same >> counts
      }' >>"$TMPDIR/files-$i"
}

# stage_files I: the planned entries of storage-I copied into its staging folder (tar keeps
# numeric owner, mode and mtime to the nanosecond: the pax format; the folders it only passes
# through are made as they are here).
stage_files() {
  local i=$1 live=${targets[$1]} err
  made_folder files "$(path_hash "$live")"
  mkdir -- "$live/.edms-restore-files"
  if ! tar -C "$backup/storage-$((i + 1))" --null --no-recursion -T "$TMPDIR/files-$i" --format=posix --numeric-owner -cf - 2>"$TMPDIR/tar.err" |
    tar -C "$live/.edms-restore-files" --numeric-owner -xpf - 2>>"$TMPDIR/tar.err"; then
    err=$(<"$TMPDIR/tar.err")
    case "$err" in
      *"No space left"*) die "storage folder $live is full: free space there; nothing was changed" ;;
      *) die "copying the files from backup $id into $live failed: $(first_error_line "$err"); nothing was changed" ;;
    esac
  fi
  sync -f "$live/.edms-restore-files" 2>/dev/null || sync
  step "files.$((i + 1)).staged"
}

# place_files I: what was staged renamed into place, a folder at a time: a folder that is
# not here at all as a whole, otherwise the entries that are not folders (mv -f: each file
# replaced by one rename).
place_files() {
  local i=$1 live=${targets[$1]} stage="${targets[$1]}/.edms-restore-files" dir moved=""
  local -a dirs
  find "$stage" -mindepth 1 -maxdepth 1 ! -type d -print0 | xargs -0 -r mv -f -t "$live" --
  # Listed first (top-down), then moved: a folder moved whole takes what is under it.
  mapfile -d '' dirs < <(find "$stage" -mindepth 1 -type d -printf '%P\0')
  for dir in "${dirs[@]}"; do
    [[ -z "$moved" || "$dir/" != "$moved"/* ]] || continue
    if [[ ! -e "$live/$dir" ]]; then
      mv -- "$stage/$dir" "$live/$dir"
      moved=$dir
    else
      find "$stage/$dir" -mindepth 1 -maxdepth 1 ! -type d -print0 | xargs -0 -r mv -f -t "$live/$dir" --
    fi
  done
  rm -rf -- "$stage"
  unmade_folder files "$(path_hash "$live")"
  step "files.$((i + 1)).placed"
}

# discard_staged_files: a stopped run's staging folders (their record says they are ours).
discard_staged_files() {
  local target
  for target in "${targets[@]}"; do
    folder_made files "$(path_hash "$target")" || continue
    rm -rf -- "$target/.edms-restore-files"
    unmade_folder files "$(path_hash "$target")"
  done
}

# report_files: what came back, what was kept, what was left as it was.
report_files() {
  local back kept same
  while read -r back kept same; do
    files_restored=$((files_restored + back)) files_kept=$((files_kept + kept)) files_same=$((files_same + same))
  done <"$TMPDIR/files-counts"
  printf 'Restored from backup %s (taken %s): %d file(s) back, %d kept (newer here), %d already as in the backup. The database was not touched.\n' \
    "$id" "$(info_get "$id" created || echo '?')" "$files_restored" "$files_kept" "$files_same"
  [[ ! -s "$TMPDIR/files-report" ]] || sed 's/\t/: /' -- "$TMPDIR/files-report"
  ((files_kept == 0)) || printf 'Files newer here than in the backup were kept: add --overwrite to put the backup'\''s back over them.\n'
}
