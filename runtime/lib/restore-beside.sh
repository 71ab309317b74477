# shellcheck shell=bash
# restore ID --database-as NAME: the backup's database loaded into a new database NAME beside
# the live one, as a restore stages it (pg_restore, rows compared with the manifest), and
# left there for reading rows back by hand: no swap, no storage, nothing live changed. It
# is recorded as made by this backup folder (kind beside): a load that fails is dropped,
# one that succeeds stays until someone drops it (prune never does).
#
# Reads: id backup db beside_db checked
# Sets:  staging_db (= beside_db), and what restore-db.sh sets

restore_database_as() {
  [[ "$beside_db" != "$db" ]] || die "--database-as $beside_db is the live database ($db): give a new name"
  [[ "$beside_db" != *[[:cntrl:]]* && ${#beside_db} -le 63 ]] ||
    die "--database-as takes a PostgreSQL database name of at most 63 bytes, on one line"
  staging_db=$beside_db
  check_database_target
  [[ -z "$(database_oid "$beside_db")" ]] ||
    die "database $beside_db already exists on $(pg_target): give another name, or drop that one first (edms-backup never overwrites a database it did not make)"
  [[ -n "$checked" ]] || { say "checking backup $id" && verify_backup "$id"; }
  create_missing_roles "$backup"
  start_database_staging
  finish_database_staging
  recovery[staging_created]=""
  step beside.loaded
  printf 'Loaded backup %s (taken %s) into database %s beside %s, in %d s: nothing live was changed.\n' \
    "$id" "$(info_get "$id" created || echo '?')" "$beside_db" "$db" "$((SECONDS - started))"
  printf 'Every table compared with the manifest:\n%s\n' "$table_report"
  printf 'Read it with: psql -d %s. Drop it when done: DROP DATABASE "%s"; (prune leaves it alone)\n' "$beside_db" "${beside_db//\"/\"\"}"
}
