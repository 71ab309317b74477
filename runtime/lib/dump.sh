# shellcheck shell=bash
# The database part of a backup: the server checked, pg_dump run in parallel from one
# exported snapshot, and every table's rows counted in that same snapshot.
#
# Reads: tmp work edms_jobs dump_compression (a gzip level) dump_members (1: lib/dump-members.sh
# compresses, not pg_dump)
# Sets:  server_num server_major dump_major server_version dump_version (check_database),
#        dump_pid snapshot_in snapshot_out snapshot_pid (start_dump), counts_json counts_text db_encoding db_bytes
#        (finish_dump)

check_database() {
  server_num=$(server_version_num)
  server_major=$((server_num / 10000))
  dump_major=$(client_major pg_dump)
  if ((dump_major < server_major)); then
    die "pg_dump $dump_major is older than the PostgreSQL $server_major server at $(pg_target): use the image postgres:$server_major-bookworm (stack config image) or newer"
  fi
  server_version=$(psql_run -c 'SHOW server_version' 2>&1) || die "$(explain_pg_error "$server_version")"
  dump_version=$(pg_dump --version)
}

# One snapshot for the dump and for the row counts: the counts in the manifest are those
# of the rows in the dump, however the application writes meanwhile, so a restore can
# compare them exactly. start_dump starts both; finish_dump collects them.
start_dump() {
  local snapshot
  coproc SNAPSHOT { exec psql -X -q -A -t -v ON_ERROR_STOP=1 2>&1; }
  # Bash unsets SNAPSHOT when the session ends (a server restart): keep the fds.
  snapshot_in=${SNAPSHOT[1]} snapshot_out=${SNAPSHOT[0]} snapshot_pid=$SNAPSHOT_PID
  snapshot_send 'BEGIN ISOLATION LEVEL REPEATABLE READ;' 'SELECT pg_export_snapshot();' '\echo __EDMS_END__'
  snapshot=$(read_reply) || die "cannot open a snapshot of $(pg_target): $snapshot"
  [[ "$snapshot" =~ ^[0-9A-Fa-f-]+$ ]] || die "cannot open a snapshot of $(pg_target): $(first_error_line "$snapshot")"
  step backup.snapshot-opened

  # Without owners: everything restored belongs to the user who restores (as Django
  # expects). Grants are kept; `pg_restore --no-privileges` leaves them out on an instance
  # that lacks their roles, and edms-backup restore creates those roles (meta/roles.json).
  pg_dump --format=directory --jobs="$edms_jobs" --compress="$((dump_members ? 0 : dump_compression))" --no-sync \
    --no-owner \
    --snapshot="$snapshot" --file="$tmp/db" 2>"$work/pg_dump.log" &
  dump_pid=$!
  step backup.dump-started

  # Count every table's rows in the snapshot while pg_dump runs; then what the database
  # carries outside its dump, and its encoding.
  snapshot_send "$(count_tables_sql true)" \
    "SELECT coalesce(json_object_agg(t, n ORDER BY t), '{}') FROM edms_counts;" '\echo __EDMS_END__' \
    "SELECT regexp_replace(t, '[[:cntrl:]]', '?', 'g') || E'\\t' || n FROM edms_counts ORDER BY t;" '\echo __EDMS_END__' \
    "$(database_globals_sql)" \
    'SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database();' '\echo __EDMS_END__'
}

# snapshot_send LINE...: to the snapshot session. SIGPIPE is ignored during a backup, so a
# session ended by a server restart gives this one line, not a silent exit 141.
snapshot_send() {
  { printf '%s\n' "$@" >&"$snapshot_in"; } 2>/dev/null || die_connection_lost
}

# snapshot_alive: whether the snapshot session still answers.
snapshot_alive() {
  snapshot_send 'SELECT 1;' '\echo __EDMS_END__'
  [[ "$(read_reply)" == 1 ]]
}

die_connection_lost() {
  die "lost the connection to PostgreSQL at $(pg_target) during the backup (server restarted or stopped): nothing was kept; run the backup again once the server is up"
}

finish_dump() {
  local err database_json roles_json
  counts_json=$(read_reply) || true
  counts_text=$(read_reply) || true
  database_json=$(read_reply) || true
  roles_json=$(read_reply) || true
  db_encoding=$(read_reply) || true
  # pg_dump's workers attach to the snapshot as they start: the exporting transaction
  # stays open until pg_dump is done.
  if ! wait "$dump_pid"; then
    err=$(<"$work/pg_dump.log")
    # A restart ends the snapshot session too, whatever pg_dump's workers then said (it can
    # be "could not obtain lock on relation", as for a lock another session holds).
    snapshot_alive || die_connection_lost
    case "$err" in
      *"No space left"*) die "backup folder $edms_dir is full (No space left on device while dumping the database): free space there; older backups are untouched" ;;
      # (A snapshot is invalid once the session that exported it has ended.)
      *"server closed the connection"* | *"terminating connection"* | *"connection to server"* | *"could not receive data"* | *"shutting down"* | *"invalid snapshot identifier"*) die_connection_lost ;;
      *"server version mismatch"*) die "pg_dump $dump_major cannot dump the PostgreSQL $server_major server: use the image postgres:$server_major-bookworm (stack config image)" ;;
      *) die "pg_dump failed: $(first_error_line "$err")" ;;
    esac
  fi
  snapshot_send 'COMMIT;' '\q'
  wait "$snapshot_pid" 2>/dev/null || true
  [[ "$counts_json" == "{"* ]] || die "cannot count the rows of $(pg_target): $(explain_pg_error "$counts_json")"
  rm -f -- "$work/pg_dump.log"
  # The session stops at its first error: that reply holds it.
  [[ "$database_json" == "{"* ]] || die "cannot read the database's settings and grants from $(pg_target): $(explain_pg_error "$database_json")"
  [[ "$roles_json" == "["* ]] || die "cannot read the roles of $(pg_target): $(explain_pg_error "$roles_json")"
  [[ "$db_encoding" =~ ^[A-Z0-9_]+$ ]] || die "cannot read the encoding of $(pg_target): $(explain_pg_error "$db_encoding")"
  # The counts again as one JSON line: restore hands it to PostgreSQL to compare.
  printf '%s\n' "$counts_json" >"$tmp/meta/tables.json"
  printf '%s\n' "$database_json" >"$tmp/meta/database.json"
  printf '%s\n' "$roles_json" >"$tmp/meta/roles.json"
  info+=("table_keys=quoted")
  if ((dump_compression && dump_members)); then
    compress_dump "$tmp/db" "$dump_compression" "$tmp/meta/dump-members" "$work/members" ||
      die "compressing the database dump failed; nothing was kept"
  fi
  chmod -R go= -- "$tmp/db"
  db_bytes=$(du -sb -- "$tmp/db" | cut -f1)
}

# read_reply: the lines the snapshot session prints up to the next end marker.
# Bash closes the session's fds once it has ended: then the reply is what came before.
read_reply() {
  local line reply=""
  {
    while IFS= read -r line <&"$snapshot_out"; do
      if [[ "$line" == __EDMS_END__ ]]; then
        printf '%s' "$reply"
        return 0
      fi
      reply+=${reply:+$'\n'}$line
    done
  } 2>/dev/null
  printf '%s' "$reply"
  return 1
}
