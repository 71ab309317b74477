# shellcheck shell=bash
# What a backup says about itself: meta/info (for the runtime), manifest.json (for
# programs), manifest.txt (for people) and SHA256SUMS (for sha256sum -c).
#
# Reads: everything main and the other parts set (id kind created duration tmp, the dump's
#        and storage's results, config_included config_missing secrets_json secret_names)

write_info() {
  {
    printf '%s\n' "format=1" "id=$id" "kind=$kind" "created=$created" "duration_seconds=$duration" \
      "db_bytes=$db_bytes" "db_encoding=$db_encoding" "storage_count=${#edms_storage_dirs[@]}" "storage_new_bytes=${storage_new_bytes:-0}"
    if ((${#info[@]})); then printf '%s\n' "${info[@]}"; fi
    # restore --to: the time asked, the time reached, the base backup and storage point used.
    [[ "$kind" != point-in-time || -z "${EDMS_BACKUP_PITR_INFO:-}" ]] || printf '%s\n' "$EDMS_BACKUP_PITR_INFO"
  } >"$tmp/meta/info"
}

write_manifest_json() {
  local IFS=,
  local host
  host=$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null || echo unknown)
  {
    printf '{\n'
    printf '  "format": "edms-backup/1",\n'
    printf '  "id": "%s",\n  "kind": "%s",\n  "created": "%s",\n  "durationSeconds": %s,\n' "$id" "$kind" "$created" "$duration"
    printf '  "host": %s,\n' "$(json_str "$host")"
    printf '  "database": {"name": %s, "host": %s, "port": %s, "user": %s, ' \
      "$(json_str "${PGDATABASE:-}")" "$(json_str "${PGHOST:-}")" "$(json_str "${PGPORT:-5432}")" "$(json_str "${PGUSER:-}")"
    printf '"serverVersion": %s, "serverVersionNum": %s, "pgDumpVersion": %s, ' \
      "$(json_str "$server_version")" "$server_num" "$(json_str "$dump_version")"
    printf '"path": "db", "format": "directory", "compression": %s, "bytes": %s,\n' "$(json_str "$( ((dump_compression)) && echo "gzip:$dump_compression" || echo none)")" "$db_bytes"
    printf '    "tables": %s},\n' "$counts_json"
    printf '  "storage": [%s],\n' "${storage_json[*]}"
    printf '  "config": {"path": "config.tar.gz", "root": %s, "included": [%s], "missing": [%s]},\n' \
      "$(json_str "$edms_config_root")" "$(json_list "${config_included[@]}")" "$(json_list "${config_missing[@]}")"
    printf '  "secrets": {%s}\n' "${secrets_json[*]}"
    printf '}\n'
  } >"$tmp/manifest.json"
}

json_list() {
  local item sep=""
  for item in "$@"; do
    printf '%s%s' "$sep" "$(json_str "$item")"
    sep=,
  done
}

write_manifest_txt() {
  local line
  {
    printf 'EDMS Backup Manifest\n====================\n'
    printf 'Backup:    %s (%s)\n' "$id" "$kind"
    printf 'Date:      %s\n' "$created"
    printf 'Host:      %s\n' "$(hostname 2>/dev/null || echo unknown)"
    printf 'Took:      %s s\n\n' "$duration"
    printf 'Database:  %s (%s)\n' "${PGDATABASE:-}" "$(pg_target)"
    printf '  server:  PostgreSQL %s\n' "$server_version"
    printf '  dump:    db/  directory format, %s, %s, by %s\n' "$(dump_compression_name)" "$(human_bytes "$db_bytes")" "$dump_version"
    printf '  rows per table (counted in the snapshot the dump was taken from):\n'
    while IFS=$'\t' read -r name count; do
      [[ -n "$name" ]] && printf '    %-48s %s\n' "$name" "$count"
    done <<<"$counts_text"
    printf '\nStorage:\n'
    ((${#storage_text[@]})) && printf '%s\n' "${storage_text[@]}"
    ((${#storage_text[@]})) || printf '  (no storage folders configured)\n'
    printf '\nConfig:    config.tar.gz (%s)\n' "$(human_bytes "$(stat -c %s "$tmp/config.tar.gz")")"
    for line in "${config_included[@]}"; do printf '  included: %s\n' "$line"; done
    for line in "${config_missing[@]}"; do printf '  missing:  %s (was not there at backup time)\n' "$line"; done
    printf '\nSecrets:   %s\n' "${secret_names[*]:-(none given)}"
    printf '  recorded as salted fingerprints only, never as values; a restore compares them.\n'
    cat <<TEXT

Restore with edms-backup (checks everything first, keeps a safety backup):
  edms-backup verify $id
  edms-backup restore $id --yes [--with-config]

Restore by hand with stock tools, from inside this folder:
  sha256sum -c SHA256SUMS
  createdb -T template0 edms_restored
  pg_restore --jobs=4 --no-owner --no-privileges --dbname=edms_restored db
  mkdir -p /new/storage-1 && cp -a storage-1/. /new/storage-1/     (one per storage folder;
     or: tar -C storage-1 --format=posix -cf - . | tar -C /new/storage-1 -xpf -)
  tar -C / -xzpf config.tar.gz                                       (config back at its paths)
Then point the application at edms_restored (or rename it) and start it.

Notes:
- Passwords are kept (Django password hashes are rows of the database).
- Users log in again after a restore; with a different SECRET_KEY they must, and their
  passwords still work. Files encrypted with ENCRYPTION_KEY need the same key.
- Unchanged storage files are hard links shared with earlier backups: deleting a backup
  folder never affects another one.
TEXT
  } >"$tmp/manifest.txt"
}

# write_sums: the files besides the storage copies (hashed as they were copied) hashed in
# one pass, then SHA256SUMS from all the records: each pass costs a few processes. The
# records stay in the work folder: SHA256SUMS holds them all (earlier versions also kept
# them as meta/sums.z, about 110 bytes a file in every backup).
write_sums() {
  hash_new_files "$tmp" < <(cd "$tmp" && printf '%s\0' config.tar.gz manifest.txt manifest.json && find db meta -type f -print0)
  sums_lines <"$work/sums" >"$tmp/SHA256SUMS"
}

# dump_compression_name: how the dump's data files are stored, for the manifests.
dump_compression_name() {
  if ((dump_compression == 0)); then echo "uncompressed"; else echo "gzip level $dump_compression"; fi
}
