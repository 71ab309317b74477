# shellcheck shell=bash
# The database half of a restore: the staging database <db>_restoring_<id> is created and
# loaded side by side (pg_restore, and the largest table in several COPY streams), its rows
# are compared with the manifest, and it is swapped in by renames.
#
# Reads: id backup db staging_db previous_db db_exists edms_jobs toast_compression
#        server_index_workers (set by check_database_target)
# Sets:  pg_restore_pid pg_restore_log, table_report restored_rows, previous_db, and the
#        recovery record's staging_created / connections_blocked / database_swapped.

# start_database_staging: the staging database created (one an interrupted run of this
# backup folder left dropped first; anyone else's refused) and its load started in the
# background.
start_database_staging() {
  local encoding kind
  say "restoring the database into $staging_db"
  encoding=$(info_get "$id" db_encoding || echo UTF8)
  kind=$(staging_kind)
  recovery[staging_created]=yes
  create_made_database "$kind" "$staging_db" "$encoding"
  step staging.database-created
  pg_restore_log=$(mktemp)
  # Settings that speed a bulk load and cost nothing in safety (the data is in the backup);
  # each was measured (docs/performance.md, "Restore settings").
  local index_workers=$((edms_jobs - 1))
  if [[ "$server_index_workers" =~ ^[0-9]+$ ]] && ((server_index_workers < index_workers)); then
    index_workers=$server_index_workers
  fi
  local options="-c synchronous_commit=off -c maintenance_work_mem=${EDMS_BACKUP_RESTORE_MAINTENANCE_MEM:-512MB} -c work_mem=64MB -c jit=off"
  options+=" -c max_parallel_maintenance_workers=$index_workers"
  [[ -z "$toast_compression" ]] || options+=" -c default_toast_compression=$toast_compression"
  if choose_streamed_table "$backup/db"; then
    local table=${streamed_copy#COPY }
    say "loading ${table%% (*} in ${#streamed_ranges[@]} streams at once, the rest with pg_restore"
  fi
  PGOPTIONS="${PGOPTIONS:-} $options" load_database "$backup/db" 2>"$pg_restore_log" &
  pg_restore_pid=$!
  step staging.load-started
}

# staging_kind: the record kind of the database loaded: staging (a restore's), drill, or
# beside (restore --database-as: prune never drops it).
staging_kind() {
  if [[ -n "${beside_db:-}" ]]; then
    echo beside
  elif [[ "$edms_command" == *drill ]]; then
    echo drill
  else
    echo staging
  fi
}

# load_database DUMP: pg_restore of DUMP into the staging database. When
# choose_streamed_table chose a table, its rows load in $edms_jobs COPY streams at once
# while pg_restore does the rest (pg_restore gives one table one COPY).
load_database() {
  local dump=$1
  local restore=(pg_restore --no-owner --exit-on-error --dbname="$(conninfo_dbname "$staging_db")")
  [[ -n "${streamed_id:-}" ]] || exec "${restore[@]}" --jobs="$edms_jobs" "$dump"
  local pids=() range
  trap 'kill "${pids[@]}" 2>/dev/null; exit 143' TERM
  "${restore[@]}" --section=pre-data "$dump"
  for range in "${streamed_ranges[@]}"; do
    # dd reads exactly its range (a `tail | head` pipe would end tail by SIGPIPE, and the
    # stream would count as failed whenever it was still running when waited for).
    # shellcheck disable=SC2086 # range is "OFFSET BYTES"
    read_range "$streamed_file" $range |
      PGAPPNAME=edms-backup-load PGDATABASE=$staging_db psql -X -q -v ON_ERROR_STOP=1 -c "${streamed_copy%;}" &
    pids+=($!)
  done
  # pg_restore's other items on that table (its keys, indexes and foreign keys) must wait
  # for the rows: they do once every stream holds its lock on it. (Were one to run first,
  # the load would be slower, not wrong.)
  local tries=0
  until (($(count_stream_locks) >= ${#pids[@]})) || ((++tries > 3000)); do
    streams_running || break
    sleep 0.01
  done
  # The list without that table's rows: its line commented out (a per-line anchor, which
  # ${var//} has not).
  # shellcheck disable=SC2001
  "${restore[@]}" --jobs="$edms_jobs" --section=data --section=post-data \
    --use-list=<(sed "s/^$streamed_id;/;&/" <<<"$dump_toc") "$dump"
  local pid
  for pid in "${pids[@]}"; do wait "$pid"; done
}

# read_range FILE OFFSET BYTES: those bytes of FILE, decompressed when it is gzip members.
read_range() {
  if [[ "$1" == *.gz ]]; then
    dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=1M status=none | gzip -dc
  else
    dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=1M status=none
  fi
}

# plain_ranges FILE ROWS_END: $edms_jobs ranges "OFFSET BYTES" of about equal size of the
# uncompressed data file FILE, each ending after a newline: in COPY text a newline in a
# value is written as \n, so every newline ends a row.
plain_ranges() {
  local file=$1 rows_end=$2 k start=0 end
  for ((k = 1; k <= edms_jobs; k++)); do
    end=$((rows_end * k / edms_jobs))
    if ((k < edms_jobs)); then
      end=$((end + $(set +o pipefail; tail -c +$((end + 1)) -- "$file" | head -n 1 | wc -c)))
      ((end <= rows_end)) || end=$rows_end
    fi
    ((end <= start)) || echo "$start $((end - start))"
    start=$end
  done
}

# member_ranges MEMBERS: up to $edms_jobs ranges "OFFSET BYTES" of whole members (lines
# "ROW_OFFSET ROW_BYTES OFFSET BYTES", the end-of-data member left out) of about as many
# rows each.
member_ranges() {
  awk -v jobs="$edms_jobs" '{ ro[NR] = $1; rn[NR] = $2; co[NR] = $3; cn[NR] = $4; rows = $1 + $2 }
    END { k = 1; start = 1
          for (i = 1; i <= NR; i++)
            if (ro[i] + rn[i] >= rows * k / jobs || i == NR) {
              print co[start], co[i] + cn[i] - co[start]; start = i + 1
              while (k < jobs && ro[i] + rn[i] >= rows * k / jobs) k++
            } }' <<<"$1"
}

count_stream_locks() {
  PGDATABASE=$staging_db psql_run <<'SQL' 2>/dev/null || echo 0
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE a.application_name = 'edms-backup-load' AND l.locktype = 'relation' AND l.granted
   AND l.mode = 'RowExclusiveLock' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
SQL
}

streams_running() {
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null || return 1; done
}

# choose_streamed_table DUMP: sets streamed_id, streamed_file, streamed_ranges,
# streamed_copy and dump_toc (the dump's id of a table's rows, their file, the ranges of it
# to load at once, pg_dump's COPY statement for them, the dump's list of contents) when one
# table's rows are worth loading in streams: stored uncompressed or in gzip members
# (meta/dump-members), at least EDMS_BACKUP_RESTORE_SPLIT_BYTES (16 MiB), and more than
# 1/jobs of all the rows' bytes (so that pg_restore's other jobs would run out of work
# first). Anything unexpected leaves the whole load to pg_restore.
choose_streamed_table() {
  local dump=$1 item size total=0 best_size=0 index
  local -A sizes=()
  streamed_id="" streamed_file="" streamed_ranges=() streamed_copy="" dump_toc=""
  ((edms_jobs > 1)) || return 1
  dump_toc=$(pg_restore --list -- "$dump") || return 1
  index="$(dirname -- "$dump")/meta/dump-members"
  # Every data file's size from one find, not a stat per table; a compressed one's by the
  # rows it holds. (pg_dump names them by number: one per line.)
  local name
  while IFS=' ' read -r size name; do
    sizes[$name]=$size
  done < <(
    find "$dump" -maxdepth 1 -type f -name '*.dat' -printf '%s %f\n'
    [[ ! -f "$index" ]] || awk '{ n[$1] += $3 } END { for (f in n) print n[f], f }' "$index"
  )
  while read -r item; do
    size=${sizes[$item.dat]:-${sizes[$item.dat.gz]:-}}
    [[ -n "$size" ]] || return 1
    total=$((total + size))
    if ((size > best_size)); then streamed_id=$item best_size=$size; fi
  done < <(sed -n 's/^\([0-9][0-9]*\); [0-9][0-9]* [0-9][0-9]* TABLE DATA .*/\1/p' <<<"$dump_toc")
  if [[ -z "$streamed_id" ]] || ((best_size < ${EDMS_BACKUP_RESTORE_SPLIT_BYTES:-16777216} || best_size * edms_jobs <= total)) ||
    ! streamed_ranges_of "$dump" "$index"; then
    streamed_id=""
    return 1
  fi
  streamed_copy=$(
    set +o pipefail
    pg_restore --data-only --use-list=<(grep "^$streamed_id;" <<<"$dump_toc") --file=- -- "$dump" 2>/dev/null |
      sed -n '/^COPY .* FROM stdin;$/{p;q}'
  )
  [[ -n "$streamed_copy" ]] || streamed_id=""
  [[ -n "$streamed_id" ]]
}

# streamed_ranges_of DUMP INDEX: streamed_file and streamed_ranges of table data
# $streamed_id, whose file must end with pg_dump's 5-byte end-of-data line (left out of
# the ranges): in a member of its own when the file is in members.
streamed_ranges_of() {
  local dump=$1 index=$2 members
  streamed_file="$dump/$streamed_id.dat"
  if [[ -f "$streamed_file" ]]; then
    is_end_of_data tail -c 5 -- "$streamed_file" || return 1
    mapfile -t streamed_ranges < <(plain_ranges "$streamed_file" $(($(stat -c %s -- "$streamed_file") - 5)))
  else
    streamed_file+=.gz
    members=$(dump_members "$index" "$streamed_id.dat.gz")
    local row_offset row_bytes offset bytes
    read -r row_offset row_bytes offset bytes <<<"${members##*$'\n'}"
    [[ "$members" == *$'\n'* && "$row_bytes" == 5 ]] || return 1
    is_end_of_data read_range "$streamed_file" "$offset" "$bytes" || return 1
    mapfile -t streamed_ranges < <(member_ranges "${members%$'\n'*}")
  fi
  ((${#streamed_ranges[@]} > 1))
}

# finish_database_staging: waits for the load; checks the restored rows against the manifest.
finish_database_staging() {
  local err
  if ! wait "$pg_restore_pid"; then
    pg_restore_pid=""
    err=$(<"$pg_restore_log")
    case "$err" in
      *"No space left"*) die "the database server is out of disk space restoring $staging_db: free space there; database $db was not changed" ;;
      *)
        err=$(first_error_line "$err")
        die "loading the database failed: ${err:-a loading process ended without a message}; database $db was not changed"
        ;;
    esac
  fi
  pg_restore_pid=""
  rm -f -- "$pg_restore_log"
  step staging.loaded
  check_restored_rows
  step staging.rows-checked
}

# Every table's rows, compared with the manifest, and reported. The staging database was
# written by the load alone, so PostgreSQL's statistics already hold what each table
# received: only a table whose statistics do not show the manifest's number is counted.
# (Planner statistics are left to autovacuum, which analyzes the loaded tables by itself.)
check_restored_rows() {
  local mismatch counts line key=$EDMS_TABLE_KEY_LEGACY
  [[ "$(kv_get "$backup/meta/info" table_keys || true)" != quoted ]] || key=$EDMS_TABLE_KEY
  counts=$(PGDATABASE=$staging_db psql_run -v expected="$(<"$backup/meta/tables.json")" <<SQL
CREATE TEMP TABLE edms_loaded AS
SELECT $key AS t,
       CASE WHEN pg_stat_get_tuples_updated(c.oid) = 0 AND pg_stat_get_tuples_deleted(c.oid) = 0
            THEN pg_stat_get_tuples_inserted(c.oid) END AS n
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE $EDMS_COUNTED_TABLES;
$(count_tables_sql "$key IN (SELECT l.t FROM edms_loaded l WHERE l.n IS DISTINCT FROM (:'expected'::json ->> l.t)::bigint)" "$key")
CREATE TEMP VIEW edms_restored AS SELECT l.t, coalesce(k.n, l.n) AS n FROM edms_loaded l LEFT JOIN edms_counts k USING (t);
SELECT 'differs' || E'\t' || coalesce(e.key, c.t) || ': backup ' || coalesce(e.value, 'none') || ', restored ' || coalesce(c.n::text, 'none')
  FROM json_each_text(:'expected'::json) e FULL JOIN edms_restored c ON c.t = e.key
 WHERE e.value::bigint IS DISTINCT FROM c.n;
SELECT 'rows' || E'\t' || regexp_replace(t, '[[:cntrl:]]', '?', 'g') || E'\t' || n FROM edms_restored ORDER BY t;
SQL
  )
  mismatch=$(grep -m 1 $'^differs\t' <<<"$counts" | cut -f2- || true)
  [[ -z "$mismatch" ]] || die "restored rows differ from the manifest ($mismatch); database $db was not changed"
  table_report=""
  declare -gA restored_rows=()
  while IFS=$'\t' read -r line name n; do
    [[ "$line" == rows ]] || continue
    restored_rows[$name]=$n
    table_report+=$(printf '  %-48s %s rows, as in the manifest' "$name" "$n")$'\n'
  done <<<"$counts"
  table_report=${table_report%$'\n'}
}

# pick_previous_name: previous_db made free: two restores within one second would pick the
# same name, so the second adds _2, _3...
pick_previous_name() {
  ((db_exists)) || { previous_db=""; return 0; }
  previous_db=$(psql_maintenance -v base="$previous_db" <<'SQL'
SELECT name FROM (SELECT :'base' AS name, 1 AS n UNION ALL
                  SELECT :'base' || '_' || n, n FROM generate_series(2, 99) n) c
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = c.name) ORDER BY n LIMIT 1
SQL
  )
  [[ -n "$previous_db" ]] || die "cannot name the database to keep: 99 restores of $db this second; nothing was changed"
}

# swap_database: the staging database takes the database's name; the database, when there
# is one, is kept as previous_db. One statement does it all (ends the other connections,
# renames both), so a stop at any moment leaves either the old database or the restored
# one under the name, and never one that refuses connections. Run again after a stop, it
# sees what was done.
swap_database() {
  local err
  step database.swap
  say "swapping $staging_db in as $db"
  err=$(psql_maintenance -v old="$db" -v prev="$previous_db" -v new="$staging_db" 2>&1 >/dev/null <<'SQL'
SELECT set_config('edms.old', :'old', false), set_config('edms.prev', :'prev', false), set_config('edms.new', :'new', false);
DO $swap$
DECLARE
  old text := current_setting('edms.old');
  prev text := current_setting('edms.prev');
  new text := current_setting('edms.new');
  tries int := 0;
BEGIN
  IF NOT EXISTS (SELECT FROM pg_database WHERE datname = new) THEN
    IF EXISTS (SELECT FROM pg_database WHERE datname = old) THEN RETURN; END IF;  -- swapped already
    RAISE EXCEPTION 'neither % nor % exists', new, old;
  END IF;
  LOOP
    -- A client that connects again between the end of its session and the rename makes
    -- the rename fail (object_in_use): end it again.
    PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity
      WHERE datname IN (old, new) AND pid <> pg_backend_pid();
    BEGIN
      IF EXISTS (SELECT FROM pg_database WHERE datname = old) THEN
        IF prev = '' THEN RAISE EXCEPTION 'database % exists; no name to keep it under', old; END IF;
        EXECUTE format('ALTER DATABASE %I RENAME TO %I', old, prev);
      END IF;
      EXECUTE format('ALTER DATABASE %I RENAME TO %I', new, old);
      RETURN;
    EXCEPTION WHEN object_in_use THEN
      tries := tries + 1;
      IF tries >= 50 THEN RAISE; END IF;
      PERFORM pg_sleep(0.1);
    END;
  END LOOP;
END
$swap$;
SQL
  ) || die "cannot swap the restored database in: $(first_error_line "$err"); database $db was not changed: run the same restore again"
  step database.swapped
}

# carry_database_state: what the database carries besides its tables (settings, role
# settings in it, comment, grants, connection limit) given to the staging database: the
# target's, where it has its own, else the backup's (meta/database.json). Settings that
# cannot be carried (a role missing, a superuser-only setting) are reported, not fatal.
carry_database_state() {
  local target_state=null backup_state=null out
  [[ -f "$backup/meta/database.json" ]] && backup_state=$(<"$backup/meta/database.json")
  if ((db_exists)); then
    target_state=$(psql_maintenance -v name="$db" <<<"$EDMS_DATABASE_STATE_SQL") || target_state=null
    [[ -n "$target_state" ]] || target_state=null
  fi
  state_notes=()
  local statement statements
  statements=$(psql_maintenance -v dst="$staging_db" -v target="$target_state" -v backup="$backup_state" 2>&1 <<'SQL'
WITH t AS (SELECT CASE WHEN :'target' = 'null' THEN '{}' ELSE :'target' END::json AS j),
     b AS (SELECT CASE WHEN :'backup' = 'null' THEN '{}' ELSE :'backup' END::json AS j),
     settings AS (
       SELECT DISTINCT ON (role, name) role, name, value FROM (
         SELECT e->>'role' AS role, e->>'name' AS name, e->>'value' AS value, 1 AS pri
           FROM t, json_array_elements(coalesce(t.j->'settings', '[]')) e
         UNION ALL
         SELECT e->>'role', e->>'name', e->>'value', 2
           FROM b, json_array_elements(coalesce(b.j->'settings', '[]')) e) x
       ORDER BY role, name, pri),
     acl AS (SELECT CASE WHEN json_typeof(t.j->'acl') = 'array' THEN t.j->'acl'
                         WHEN json_typeof(b.j->'acl') = 'array' THEN b.j->'acl' END AS a FROM t, b),
     statements AS (
       SELECT 1 AS ord, format('ALTER %s SET %I = %s',
                CASE WHEN role IS NULL THEN format('DATABASE %I', :'dst') ELSE format('ROLE %I IN DATABASE %I', role, :'dst') END,
                name,
                -- List settings are stored as their elements, each double-quoted where needed.
                CASE WHEN name IN ('search_path', 'temp_tablespaces', 'session_preload_libraries',
                                   'local_preload_libraries', 'shared_preload_libraries', 'unix_socket_directories')
                     THEN (SELECT coalesce(string_agg(quote_literal(CASE WHEN m[1] LIKE '"%' THEN replace(substr(m[1], 2, length(m[1]) - 2), '""', '"') ELSE m[1] END), ', '), quote_literal(''))
                             FROM regexp_matches(value, '("(?:[^"]|"")*"|[^,[:space:]]+)', 'g') m)
                     ELSE quote_literal(value) END)
         FROM settings
       UNION ALL
       SELECT 2, format('COMMENT ON DATABASE %I IS %L', :'dst', coalesce(t.j->>'comment', b.j->>'comment'))
         FROM t, b WHERE coalesce(t.j->>'comment', b.j->>'comment') IS NOT NULL
       UNION ALL
       SELECT 3, format('ALTER DATABASE %I CONNECTION LIMIT %s', :'dst', c)
         FROM (SELECT CASE WHEN (t.j->>'connlimit')::int >= 0 THEN (t.j->>'connlimit')::int ELSE (b.j->>'connlimit')::int END AS c FROM t, b) l
        WHERE c >= 0
       UNION ALL
       SELECT 4, format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'dst') FROM acl WHERE a IS NOT NULL
       UNION ALL
       SELECT 5, format('GRANT %s ON DATABASE %I TO %s%s', e->>'privilege', :'dst',
                        coalesce(quote_ident(e->>'grantee'), 'PUBLIC'), CASE WHEN (e->>'grantable')::boolean THEN ' WITH GRANT OPTION' ELSE '' END)
         FROM acl, json_array_elements(a) e WHERE a IS NOT NULL)
SELECT regexp_replace(statement, E'
', ' ', 'g') FROM (SELECT ord, format AS statement FROM statements) s ORDER BY ord
SQL
  ) || die "cannot read what database $db carries besides its tables: $(first_error_line "$statements"); it was not changed"
  while IFS= read -r statement; do
    [[ -n "$statement" ]] || continue
    if ! out=$(psql_maintenance -c "$statement" 2>&1 >/dev/null); then
      state_notes+=("not carried: $statement ($(first_error_line "$out"))")
      say "warning: database state not carried: $statement: $(first_error_line "$out")"
    fi
  done <<<"$statements"
  step staging.state-carried
}
