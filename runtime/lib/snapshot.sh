# shellcheck shell=bash
# The storage part of a backup: each storage folder indexed (one find, sorted by path) and
# merged in one pass with the previous backup's catalog: unchanged files are hard links to
# its copies and keep their checksums, the others are copied (tar) and checksummed. Every
# list is a NUL-separated stream through find, sort, awk, xargs and tar: nothing in bash
# runs once per file, and no list is held in memory (docs/performance.md, "Scale").
#
# Reads: tmp work edms_dir edms_storage_dirs storage_real previous edms_jobs
# Sets:  storage_new_bytes torn_total copy_vanished, and appends to info storage_json storage_text
#
# meta/storage-<i>.catalog.gz, what the next backup compares with: one NUL-ended record per
# entry, sorted by path (as bytes), "TYPE INODE LINKS SIZE MTIME CTIME MODE UID GID SUM PATH"
# (find's %y %i %n %s %T@ %C@ %m %U %G; SUM the SHA-256 of a regular file, - otherwise),
# gzip level 1: 40% of its size (earlier versions wrote it uncompressed, as .catalog).

# snapshot_storage I: copies the I-th storage folder to storage-I/. A regular file whose
# inode, size, mtime, ctime, mode and owner are those the previous backup's catalog holds
# is a hard link to that backup's copy (and keeps its checksum); everything else is copied.
# Files with several links are always copied, so that tar keeps them linked together.
snapshot_storage() {
  # src names the folder as configured (messages, manifest); real is where it is read.
  local i=$1 src=${edms_storage_dirs[$1 - 1]} real=${storage_real[$1 - 1]} dst="$tmp/storage-$1"
  local prev_dir="" prev_catalog=/dev/null farm_pid="" counts files dirs symlinks others sockets bytes linked linked_bytes
  local links="$work/links" copies="$work/copies" copied="$work/copied"

  if [[ -n "$previous" && -d "$edms_dir/$previous/storage-$i" &&
    "$(info_get "$previous" "storage_${i}_source_hash" || true)" == "$(path_hash "$src")" ]]; then
    prev_catalog="$edms_dir/$previous/meta/storage-$i.catalog.gz"
    [[ -f "$prev_catalog" ]] || prev_catalog=${prev_catalog%.gz}
    # A backup of a version before catalogs: its index and checksums make one.
    if [[ ! -f "$prev_catalog" ]]; then
      prev_catalog="$work/prev.catalog"
      legacy_catalog "$previous" "$i" >"$prev_catalog" || rm -f -- "$prev_catalog"
    fi
  fi
  if [[ -f "$prev_catalog" ]]; then
    prev_dir="$edms_dir/$previous/storage-$i"
    # The previous copy as a hard-link farm (cp -al: one pass, no work per path in this
    # script), made while the folder is indexed; what differs is then removed from it and
    # tar adds the rest, into new inodes only.
    cp -al -- "$prev_dir" "$dst" 2>/dev/null &
    farm_pid=$!
  else
    prev_catalog=/dev/null
  fi
  index_folder "$real" "$src" >"$work/index"
  # A catalog that does not read back whole only makes files look changed: they are copied.
  counts=$(plan_copy <(read_catalog "$prev_catalog") "$work" <"$work/index") || die "cannot compare $src with backup $previous (disk full?)"
  read -r files dirs symlinks others sockets bytes linked linked_bytes <<<"$counts"

  if [[ -n "$farm_pid" ]] && { ! wait "$farm_pid" || ((linked == 0)) || ! writable_folders "$dst" ||
    ! (cd "$dst" && xargs -0 -r rm -rf --) <"$work/stale" 2>/dev/null; }; then
    # No hard links on this filesystem (or too many), or none to keep: copy everything.
    ((linked == 0)) || say "storage-$i: cannot hard-link to backup $previous, copying all files"
    rm -rf -- "$dst"
    cat -- "$links" >>"$copies" # their checksums stay those of the catalog
    linked=0 linked_bytes=0
  fi
  [[ -d "$dst" ]] || mkdir -- "$dst"
  [[ -z "$farm_pid" ]] || ((linked == 0)) || farmed_from[$i]=$previous
  ((sockets == 0)) || say "storage-$i: skipped $sockets socket(s) in $src (live endpoints of a program, not data)"
  hash_sources "$real" &
  local hash_pid=$! sources_hashed=yes
  copy_tree "$real" "$dst" "$copies"
  wait "$hash_pid" || sources_hashed=""
  find_vanished "$dst" "$copies"
  find_torn "$i" "$real" "$copied"
  hash_copied "$i" "$sources_hashed"
  # What vanished before tar read it is not in the backup: not counted either.
  local gone
  read -r -a gone <"$work/vanished.counts"
  files=$((files - gone[0])) dirs=$((dirs - gone[1])) symlinks=$((symlinks - gone[2])) others=$((others - gone[3])) bytes=$((bytes - gone[4]))

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
  rm -f -- "$links" "$copies" "$copied" "$work/stale" "$work/prev.catalog" "$work/vanished" "$work/vanished.counts"
}

# drop_farm_strays I: the entries of storage-I that its catalog does not list, removed from
# the new backup: the hard-link farm brought them from the previous backup's copy, where
# something put them (its catalog never listed them). Names that backup, which is damaged.
drop_farm_strays() {
  local i=$1 dst="$tmp/storage-$1" n first
  (cd "$dst" && find . -mindepth 1 -printf '%P\0' | LC_ALL=C sort -z) >"$work/present"
  read_catalog "$tmp/meta/storage-$i.catalog.gz" |
    stream_awk 'BEGIN { RS = "\0" } '"$catalog_awk"' { parse_record($0, f, r); if (r["path"] != "") printf "%s%c", r["path"], 0 }' |
    LC_ALL=C sort -z | LC_ALL=C comm -z -23 "$work/present" - >"$work/strays"
  n=$(tr -cd '\0' <"$work/strays" | wc -c)
  if ((n > 0)); then
    first=$(head -z -n 1 "$work/strays" | tr -d '\0')
    (cd "$dst" && xargs -0 -r rm -rf --) <"$work/strays"
    say "warning: storage-$i of backup ${farmed_from[$i]} holds $n entries its catalog does not list (first: ${first//[[:cntrl:]]/?}): they are not in this backup; that backup was changed after it was taken: check it with 'edms-backup verify ${farmed_from[$i]}'"
  fi
  rm -f -- "$work/present" "$work/strays"
}

# legacy_catalog ID I: the catalog of storage-I of backup ID, made by a version that kept
# meta/storage-I.index (find's "%y %i %n %s %T@ %C@ %m %U %G\0PATH\0TARGET\0" records)
# and the checksums in meta/sums.z only. Fails if there is no index.
legacy_catalog() {
  local meta="$edms_dir/$1/meta" prefix="storage-$2/" rc=0
  [[ -f "$meta/storage-$2.index" && -f "$meta/sums.z" ]] || return 1
  stream_awk 'BEGIN { RS = "\0" } NR % 3 == 1 { m = $0 } NR % 3 == 2 { printf "%s - %s%c", m, $0, 0 }' "$meta/storage-$2.index" |
    sorted_by_path >"$work/legacy.index" || rc=1
  stream_awk -v prefix="$prefix" 'BEGIN { RS = "\0" }
    substr($0, 67, length(prefix)) == prefix { printf "%s %s%c", substr($0, 1, 64), substr($0, 67 + length(prefix)), 0 }' "$meta/sums.z" |
    LC_ALL=C sort --zero-terminated --field-separator=' ' --key=2 --buffer-size=64M --temporary-directory="$work" >"$work/legacy.sums" || rc=1
  stream_awk -v sums="$work/legacy.sums" 'BEGIN { RS = "\0"; more = next_sum() }
    function next_sum() { if ((getline h < sums) > 0) { hp = substr(h, 66); return 1 } return 0 }
    '"$catalog_awk"'
    {
      parse_record($0, f, r)
      while (more && hp < r["path"]) more = next_sum()
      printf "%s %s %s%c", r["meta"], (f[1] == "f" && more && hp == r["path"] ? substr(h, 1, 64) : "-"), r["path"], 0
    }' "$work/legacy.index" || rc=1
  rm -f -- "$work/legacy.index" "$work/legacy.sums"
  return "$rc"
}

# writable_folders DIR: a user other than root can change a read-only folder of the
# hard-link farm (tar gives every folder its mode back, all are in copies).
writable_folders() {
  ((EUID == 0)) || find "$1" -type d ! -perm -u=w -exec chmod u+w -- {} + 2>/dev/null
}

# index_folder REAL SRC: the entries of REAL as catalog records without checksums, sorted
# by path.
index_folder() {
  local real=$1 src=$2 err
  # The real path: a storage folder that is a symlink (/srv/edms/storage -> /mnt/data/...)
  # is read through it, and a relative one starting with "-" is no option to find.
  if ! err=$({ find "$real" -printf '%y %i %n %s %T@ %C@ %m %U %G - %P\0' 2>&3 | sorted_by_path; } 3>&1 2>&1 >&4); then
    # An entry removed while the folder is read is no error: it is not in this backup.
    [[ -d "$real" ]] && ! grep -v -q -F 'No such file or directory' <<<"$err" ||
      die "storage folder $src is not fully readable ($(first_error_line "$err")): make it readable by uid $(id -u)"
  fi 4>&1
}

# sorted_by_path: catalog records (stdin) sorted by their path, the 11th field on; sort's
# memory is bounded, what is over spills to temporary files.
sorted_by_path() {
  LC_ALL=C sort --zero-terminated --field-separator=' ' --key=11 --buffer-size=64M --temporary-directory="$work"
}

# read_catalog FILE: the records of a catalog, compressed (.gz) or not.
read_catalog() {
  case "$1" in
    *.gz) gzip -dc -- "$1" ;;
    *) cat -- "$1" ;;
  esac
}

# plan_copy PREV_CATALOG WORK: merges the sorted records of stdin with PREV_CATALOG (also
# sorted) and writes to WORK: links (./PATH of the unchanged files), stale (./PATH of the
# previous copy's entries that are not kept: gone, changed, or no longer a folder), copies
# (./PATH of every entry not linked, folders before their content), copied
# ("./PATH\0SIZE MTIME\0" of the regular files among them) and catalog (stdin's records,
# with the kept checksums). Prints
# "files dirs symlinks others sockets bytes linked linked_bytes".
plan_copy() {
  local name
  for name in links stale copies copied catalog; do : >"$2/$name"; done
  stream_awk -v prev="$1" -v w="$2/" 'BEGIN { RS = "\0"; have = next_prev() }
    function next_prev() { if ((getline p < prev) > 0) { parse_record(p, pf, pr); return 1 } return 0 }
    function stale(path) { printf "./%s%c", path, 0 > (w "stale") }
    '"$catalog_awk"'
    {
      parse_record($0, f, r); path = r["path"]; type = f[1]
      if (path ~ /^\.edms-restore-(stage|ready)(\/|$)/) next # what a stopped restore staged
      if (type == "s") { sockets++; next } # a live endpoint of a program, not data: tar cannot keep it
      if (type == "f") { files++; bytes += f[4] } else if (type == "d") dirs += (path != ""); else if (type == "l") symlinks++; else others++
      while (have && pr["path"] < path) { stale(pr["path"]); have = next_prev() }
      same = have && pr["path"] == path
      if (type == "f" && f[3] == 1 && same && pr["meta"] == r["meta"] && pf[10] != "-") {
        printf "./%s%c", path, 0 > (w "links"); linked++; linked_bytes += f[4]
        printf "%s %s %s%c", r["meta"], pf[10], path, 0 > (w "catalog")
      } else {
        if (same && !(type == "d" && pf[1] == "d")) stale(path)
        printf "./%s%c", path, 0 > (w "copies")
        if (type == "f") printf "./%s%c%s %s%c", path, 0, f[4], f[5], 0 > (w "copied")
        printf "%s%c", $0, 0 > (w "catalog")
      }
      if (same) have = next_prev()
    }
    END {
      for (; have; have = next_prev()) stale(pr["path"])
      printf "%d %d %d %d %d %.0f %d %.0f\n", files, dirs, symlinks, others, sockets, bytes, linked, linked_bytes }'
}

# catalog_awk: parse_record(REC, F, R) sets F[1..10] to the fields of catalog record REC,
# R["meta"] to its first nine and R["path"] to its path (which may hold anything but NUL).
# (Two arrays: a string key in the array split() filled makes mawk turn it into a hash
# table, for every record: 3x the cost of the whole parse.)
catalog_awk='function parse_record(rec, f, r,   at) {
  split(rec, f, / /)
  at = length(f[1]) + length(f[2]) + length(f[3]) + length(f[4]) + length(f[5]) + length(f[6]) + length(f[7]) + length(f[8]) + length(f[9]) + 9
  r["meta"] = substr(rec, 1, at - 1)
  r["path"] = substr(rec, at + length(f[10]) + 2)
}'

# find_torn I REAL COPIED: the copied files whose size or mtime in REAL is no longer the
# one indexed before the copy (COPIED: "./PATH\0SIZE MTIME\0" records): written while the
# backup ran, so their copy may be torn (tar pads a shrunk file with zeros and cuts a grown
# one). They go to meta/storage-I.torn and the manifests; the next backup takes them again.
find_torn() {
  local i=$1 real=$2 copied=$3 torn="$tmp/meta/storage-$1.torn" n=0
  : >"$torn"
  if [[ -s "$copied" ]]; then
    # One find for all of them, in the list's order; a file removed meanwhile is not printed.
    (cd "$real" && sed -z -n 'p;n' "$copied" | find -files0-from - -maxdepth 0 -printf '%p\0%s %T@\0' 2>/dev/null) >"$work/after" || true
    n=$(stream_awk -v after="$work/after" -v vanished="$work/vanished" -v torn="$torn" 'BEGIN {
        RS = "\0"; more = next_after()
        while ((getline v < vanished) > 0) gone[v]
      }
      function next_after() { return (getline now_path < after) > 0 && (getline now < after) > 0 }
      NR % 2 { path = $0; next }
      path in gone { next } # not copied at all: not in the backup
      {
        if (more && now_path == path) { same = (now == $0); more = next_after() } else same = 0 # removed while copied
        if (!same) { printf "%s%c", substr(path, 3), 0 > torn; n++ }
      }
      END { print n + 0 }' "$copied")
    rm -f -- "$work/after"
  fi
  torn_total=$((${torn_total:-0} + n))
  info+=("storage_${i}_torn=$n")
  ((n == 0)) || say "warning: $n file(s) in $real changed while being copied: their copies may be torn, so the backup records them as torn (meta/storage-$i.torn, manifest); the next backup takes them again"
}

# hash_sources REAL: checksums of the files to copy (work/copied), read from REAL while tar
# copies them, to work/source-hashes (names relative to REAL). Fails if one cannot be read.
hash_sources() {
  sed -z -n 's|^\./||p;n' "$work/copied" >"$work/source-list"
  : >"$work/source-hashes"
  hash_files "$1" "$work/source-list" "$work/source-hashes" "$edms_jobs" 2>/dev/null
}

# hash_copied I SOURCES_HASHED: checksums of the regular files copied into storage-I/,
# merged into the catalog, which goes to meta without the entries that vanished (their
# counts by type go to vanished.counts); every regular file's record (kept or new) goes to
# WORK/sums. With SOURCES_HASHED, a file's checksum is the one hash_sources read beside
# the copy, unless the file is torn: its size and mtime were the same before and after the
# copy, which is what a backup takes as unchanged. Torn files, and every file when a source
# could not be hashed (removed meanwhile), are hashed from their copies.
hash_copied() {
  local i=$1 sources_hashed=$2 records=$work/hashes again=/dev/null redo=/dev/null hprefix="storage-$i/"
  if [[ -n "$sources_hashed" ]]; then
    # The torn files only, from their copies; the others' checksums are their sources'.
    sed -z "s|^|storage-$i/|" "$tmp/meta/storage-$i.torn" >"$work/hash-list"
    records=$work/source-hashes again=$work/hashes redo=$tmp/meta/storage-$i.torn hprefix=""
  else
    sed -z -n "s|^\./|storage-$i/|p;n" "$work/copied" >"$work/hash-list"
  fi
  if [[ -s "$work/vanished" || -s "$tmp/meta/storage-$i.torn" ]]; then
    # Those still there as regular files only: one changed, replaced or removed meanwhile may not be.
    (cd "$tmp" && find -files0-from - -maxdepth 0 -type f -print0 2>/dev/null) <"$work/hash-list" >"$work/hash-list.files" || true
    mv -- "$work/hash-list.files" "$work/hash-list"
  fi
  : >"$work/hashes"
  hash_files "$tmp" "$work/hash-list" "$work/hashes" "$edms_jobs" 2>/dev/null ||
    die "cannot checksum the new files in $tmp (disk full or unreadable)"
  # hash_files gives the plain names first, then the special ones (few: held in memory).
  hash_order 66 "$work/hashes.plain" "$work/hashes.special" <"$records" >/dev/null
  # The plain names' records come in the catalog's order (names ahead of the catalog's are
  # of files that vanished); torn files' records, and special names', are few: in memory.
  stream_awk -v prefix="storage-$i/" -v hprefix="$hprefix" -v plain="$work/hashes.plain" -v special="$work/hashes.special" \
    -v torn_sums="$again" -v torn="$redo" \
    -v sums="$work/sums" -v vanished="$work/vanished" -v counts="$work/vanished.counts" 'BEGIN {
      RS = "\0"
      while ((getline h < special) > 0) sp[substr(h, 67)] = substr(h, 1, 64)
      while ((getline h < torn_sums) > 0) again[substr(h, 67)] = substr(h, 1, 64)
      while ((getline v < torn) > 0) redo[v]
      while ((getline v < vanished) > 0) gone[v]
      more = (getline h < plain) > 0
    }
    END { printf "%d %d %d %d %.0f\n", n["f"], n["d"], n["l"], other, bytes > counts }
    '"$catalog_awk"'
    {
      parse_record($0, f, r); path = r["path"]; name = prefix path; sum = f[10]
      if (("./" path) in gone) {
        if (f[1] == "f" || f[1] == "d" || f[1] == "l") n[f[1]]++; else other++
        if (f[1] == "f") bytes += f[4]
        next
      }
      if (f[1] == "f" && sum == "-") {
        hname = hprefix path
        while (more && substr(h, 67) < hname) more = (getline h < plain) > 0
        if (more && substr(h, 67) == hname) { sum = substr(h, 1, 64); more = (getline h < plain) > 0 }
        else if (hname in sp) sum = sp[hname]
        if (path in redo) sum = (name in again ? again[name] : "-")
      }
      if (f[1] == "f" && sum != "-") printf "%s  %s%c", sum, name, 0 >> sums
      printf "%s %s %s%c", r["meta"], sum, path, 0
    }' "$work/catalog" | gzip -1 -n >"$tmp/meta/storage-$i.catalog.gz"
  rm -f -- "$work/hash-list" "$work/hashes" "$work/hashes.plain" "$work/hashes.special" "$work/catalog" \
    "$work/source-list" "$work/source-hashes"
}

# find_vanished DST LIST: the entries of LIST ("./PATH" records) that are not in DST, to
# WORK/vanished: removed from the storage folder after it was indexed, before tar read them
# (it said "Cannot stat"). Looked for only when tar said so (copy_vanished).
find_vanished() {
  : >"$work/vanished"
  [[ -n "$copy_vanished" ]] || return 0
  (cd "$1" && find -files0-from "$2" -maxdepth 0 -printf '%p\0' 2>/dev/null) >"$work/present" || true
  stream_awk -v present="$work/present" 'BEGIN { RS = "\0"; more = (getline p < present) > 0 }
    { if (more && p == $0) more = (getline p < present) > 0; else printf "%s%c", $0, 0 }' "$2" >"$work/vanished"
  rm -f -- "$work/present"
}

# copy_tree SRC DST LIST: copies the NUL-separated entries of LIST (paths relative to SRC,
# in find's order, folders before their content) with owners, modes, times and links. An
# entry removed since the index is no error (copy_vanished is set: find_vanished names it).
copy_tree() {
  local src=$1 dst=$2 list=$3 rc=0 err
  err=$( { (cd "$src" && tar --create --file=- --format=posix --numeric-owner --no-recursion --null --verbatim-files-from \
    --files-from="$list") 2>&3 | tar --extract --file=- --directory="$dst" --numeric-owner \
    --preserve-permissions --same-owner --delay-directory-restore; } 3>&1 2>&1) || rc=$?
  copy_vanished=""
  ((rc != 0)) || return 0
  [[ "$err" != *"Cannot stat: No such file or directory"* && "$err" != *"File removed before we read it"* ]] || copy_vanished=yes
  # Files written (find_torn names them) or removed (find_vanished) meanwhile are no error.
  err=$(grep -v -e 'file changed as we read it' -e 'File shrank by' -e 'Cannot stat: No such file or directory' \
    -e 'File removed before we read it' -e 'Exiting with failure status due to previous errors' <<<"$err" || true)
  case "$err" in
    "") ;;
    *"No space left"*) die "backup folder $edms_dir is full (No space left on device while copying $src): free space there; older backups are untouched" ;;
    *"Permission denied"*) die "storage folder $src is not fully readable ($(first_error_line "$err")): make it readable by uid $(id -u)" ;;
    *) die "copying storage folder $src failed: $(first_error_line "$err")" ;;
  esac
}
