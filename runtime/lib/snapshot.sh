# shellcheck shell=bash
# The storage part of a backup: each storage folder indexed (find), copied (tar), its
# unchanged files hard-linked to the previous backup's copies, the new ones checksummed.
#
# Reads: tmp work edms_dir edms_storage_dirs storage_real previous
# Sets:  storage_new_bytes, and appends to info storage_json storage_text

# snapshot_storage I: copies the I-th storage folder to storage-I/. A regular file whose
# size, mtime, ctime, inode, mode and owner are those recorded by the previous backup is
# a hard link to that backup's copy (and keeps its checksum); everything else is copied.
# Files with several links are always copied, so that tar keeps them linked together.
snapshot_storage() {
  # src names the folder as configured (messages, manifest); real is where it is read.
  local i=$1 src=${edms_storage_dirs[$1 - 1]} real=${storage_real[$1 - 1]} dst="$tmp/storage-$1"
  local index="$tmp/meta/storage-$1.index" prev_dir="" prev_index=""
  local meta path link type ino nlink size mtime ctime mode uid gid sig err
  local -A prev_sig=()
  local links="$work/links" copies="$work/copies" copied="$work/copied"

  # The real path: a storage folder that is a symlink (/srv/edms/storage -> /mnt/data/...)
  # is read through it, and a relative one starting with "-" is no option to find.
  if ! err=$(find "$real" -printf '%y %i %n %s %T@ %C@ %m %U %G\0%P\0%l\0' 2>&1 >"$index"); then
    die "storage folder $src is not fully readable ($(first_error_line "$err")): make it readable by uid $(id -u)"
  fi

  if [[ -n "$previous" && -d "$edms_dir/$previous/storage-$i" && -f "$edms_dir/$previous/meta/storage-$i.index" &&
    "$(info_get "$previous" "storage_${i}_source_hash" || true)" == "$(path_hash "$src")" ]]; then
    prev_dir="$edms_dir/$previous/storage-$i"
    prev_index="$edms_dir/$previous/meta/storage-$i.index"
    while read_index_entry; do
      if [[ "$type" == f && "$nlink" == 1 ]]; then prev_sig[$path]=$sig; fi
    done <"$prev_index"
  fi

  local files=0 dirs=0 symlinks=0 others=0 sockets=0 bytes=0 linked=0 linked_bytes=0
  : >"$links"
  : >"$copies"
  : >"$copied"
  while read_index_entry; do
    # What a stopped restore staged in the folder is not the folder's.
    case "$path" in .edms-restore-stage | .edms-restore-stage/* | .edms-restore-ready | .edms-restore-ready/*) continue ;; esac
    case "$type" in
      f) files=$((files + 1)) bytes=$((bytes + size)) ;;
      d) [[ -n "$path" ]] && dirs=$((dirs + 1)) ;;
      l) symlinks=$((symlinks + 1)) ;;
      # A socket is a live endpoint of a running program, not data: tar cannot keep it.
      s) sockets=$((sockets + 1)) && continue ;;
      *) others=$((others + 1)) ;;
    esac
    if [[ "$type" == f && "$nlink" == 1 && -n "${prev_sig[$path]+set}" && "${prev_sig[$path]}" == "$sig" ]]; then
      printf './%s\0' "$path" >>"$links"
      linked=$((linked + 1)) linked_bytes=$((linked_bytes + size))
    else
      printf './%s\0' "$path" >>"$copies"
      [[ "$type" != f ]] || printf './%s\0%s %s\0' "$path" "$size" "$mtime" >>"$copied"
    fi
  done <"$index"

  mkdir -- "$dst"
  if [[ -s "$links" ]] && ! (cd "$prev_dir" && xargs -0 -r cp -l --parents -t "$dst" --) <"$links" 2>/dev/null; then
    # No hard links on this filesystem (or too many): copy everything instead.
    say "storage-$i: cannot hard-link to backup $previous, copying all files"
    rm -rf -- "$dst" && mkdir -- "$dst"
    cat -- "$links" >>"$copies"
    : >"$links"
    linked=0 linked_bytes=0
  fi
  ((sockets == 0)) || say "storage-$i: skipped $sockets socket(s) in $src (live endpoints of a program, not data)"
  copy_tree "$real" "$dst" "$copies"
  find_torn "$i" "$real" "$copied"
  reuse_sums "$i" "$links"
  hash_new_files "$tmp" < <(copied_files "$i" "$copies")

  local torn_json="" torn_n=0 name
  while IFS= read -r -d '' name; do
    torn_json+="${torn_json:+,}$(json_str "$name")" torn_n=$((torn_n + 1))
  done <"$tmp/meta/storage-$i.torn"
  storage_new_bytes=$((${storage_new_bytes:-0} + bytes - linked_bytes))
  info+=("storage_${i}_entries=$((files + dirs + symlinks + others))" "storage_${i}_files=$files"
    "storage_${i}_dirs=$dirs" "storage_${i}_symlinks=$symlinks" "storage_${i}_others=$others" "storage_${i}_skipped_sockets=$sockets"
    "storage_${i}_bytes=$bytes" "storage_${i}_linked=$linked" "storage_${i}_linked_bytes=$linked_bytes"
    "storage_${i}_source_hash=$(path_hash "$src")")
  storage_json+=("{\"index\":$i,\"source\":$(json_str "$src"),\"path\":\"storage-$i\",\"format\":\"folder\",\"files\":$files,\"dirs\":$dirs,\"symlinks\":$symlinks,\"others\":$others,\"bytes\":$bytes,\"sharedWith\":$(json_str "${prev_dir:+$previous}"),\"sharedFiles\":$linked,\"sharedBytes\":$linked_bytes,\"skippedSockets\":$sockets,\"tornFiles\":$torn_n,\"torn\":[$torn_json]}")
  storage_text+=("  $i. $src -> storage-$i/  ($files files, $dirs folders, $symlinks symlinks, $(human_bytes "$bytes"))${prev_dir:+; $linked unchanged files shared with backup $previous}$( ((torn_n == 0)) || printf '; %s files written while copied, may be torn (meta/storage-%s.torn)' "$torn_n" "$i")")
  rm -f -- "$links" "$copies" "$copied"
}

# find_torn I REAL COPIED: the copied files whose size or mtime in REAL is no longer the
# one indexed before the copy (COPIED: "./PATH\0SIZE MTIME\0" records): written while the
# backup ran, so their copy may be torn (tar pads a shrunk file with zeros and cuts a grown
# one). They go to meta/storage-I.torn and the manifests; the next backup takes them again.
find_torn() {
  local i=$1 real=$2 copied=$3 path was now_path now torn="$tmp/meta/storage-$1.torn" n=0
  : >"$torn"
  if [[ -s "$copied" ]]; then
    # One find for all of them, in the list's order; a file removed meanwhile is not printed.
    (cd "$real" && sed -z -n 'p;n' "$copied" | find -files0-from - -maxdepth 0 -printf '%p\0%s %T@\0' 2>/dev/null) >"$work/after" || true
    while IFS= read -r -d '' now_path && IFS= read -r -d '' now; do
      while IFS= read -r -d '' path <&3 && IFS= read -r -d '' was <&3; do
        [[ "$path" == "$now_path" ]] && break
        printf '%s\0' "${path#./}" >>"$torn" && n=$((n + 1)) # removed while copied
      done
      [[ "$now" == "$was" ]] || { printf '%s\0' "${path#./}" >>"$torn" && n=$((n + 1)); }
    done <"$work/after" 3<"$copied"
    rm -f -- "$work/after"
  fi
  torn_total=$((${torn_total:-0} + n))
  info+=("storage_${i}_torn=$n")
  ((n == 0)) || say "warning: $n file(s) in $real changed while being copied: their copies may be torn, so the backup records them as torn (meta/storage-$i.torn, manifest); the next backup takes them again"
}

# read_index_entry: reads the next entry of a storage index (find -printf records: meta,
# path, symlink target, each NUL-ended) from stdin into the caller's meta path link type
# ino nlink size mtime ctime mode uid gid, and sig, what says that a file is unchanged.
read_index_entry() {
  IFS= read -r -d '' meta && IFS= read -r -d '' path && IFS= read -r -d '' link || return 1
  read -r type ino nlink size mtime ctime mode uid gid <<<"$meta"
  sig="$size $mtime $ctime $ino $mode $uid $gid"
}

# copy_tree SRC DST LIST: copies the NUL-separated entries of LIST (paths relative to SRC,
# in find's order, folders before their content) with owners, modes, times and links.
copy_tree() {
  local src=$1 dst=$2 list=$3 rc=0 err
  err=$( { (cd "$src" && tar --create --file=- --format=posix --numeric-owner --no-recursion --null --verbatim-files-from \
    --files-from="$list") 2>&3 | tar --extract --file=- --directory="$dst" --numeric-owner \
    --preserve-permissions --same-owner --delay-directory-restore; } 3>&1 2>&1) || rc=$?
  if ((rc != 0)); then
    case "$err" in
      *"No space left"*) die "backup folder $edms_dir is full (No space left on device while copying $src): free space there; older backups are untouched" ;;
      *"Permission denied"*) die "storage folder $src is not fully readable ($(first_error_line "$err")): make it readable by uid $(id -u)" ;;
      # Files written meanwhile: find_torn names them.
      *"file changed as we read it"* | *"File shrank by"*) ;;
      *) die "copying storage folder $src failed: $(first_error_line "$err")" ;;
    esac
  fi
}

# copied_files I LIST: the regular files among the entries of LIST, as storage-I/<path>.
copied_files() {
  local path
  cd "$tmp" || return
  while IFS= read -r -d '' path; do
    path="storage-$1/${path#./}"
    [[ -f "$path" && ! -L "$path" ]] && printf '%s\0' "$path"
  done <"$2"
  return 0
}

# reuse_sums I LINKS: the previous backup's checksums of the files hard-linked from it.
reuse_sums() {
  local i=$1 links=$2 record hash name
  [[ -s "$links" ]] || return 0
  local -A want=()
  while IFS= read -r -d '' name; do
    want["storage-$i/${name#./}"]=1
  done <"$links"
  while IFS= read -r -d '' record; do
    hash=${record%%  *}
    name=${record#*  }
    if [[ -n "${want[$name]+set}" ]]; then
      printf '%s  %s\0' "$hash" "$name"
    fi
  done <"$edms_dir/$previous/meta/sums.z" >>"$tmp/meta/sums.z"
}

path_hash() {
  printf '%s' "$1" | sha256sum | cut -c1-16
}
