# shellcheck shell=bash
# The restore's journal: EDMS_BACKUP_DIR/.restore-journal, the recovery record that outlives
# a kill. It is written once the restored database and storage are staged and checked:
# from then on the restore goes forward, and a run stopped at any point (kill -9, a crash,
# a PostgreSQL restart) is finished by the next `edms-backup restore`, whatever its id.
#
#   id previous_db staging_db db   which restore, and the names of its databases
#   with_config                     whether it puts the config files back
#   safety_id                       its safety backup (for the report)
#   phase                           staged -> database-swapped -> storage-swapped
#                                   -> config-restored; the file is removed when done
#
# Before "staged" nothing is live: the next run drops what a stopped one left (the staging
# database, the staged folders) and starts again.

journal_file() {
  printf '%s/.restore-journal\n' "$edms_dir"
}

# journal_set KEY VALUE...: updates the journal atomically.
journal_set() {
  kv_set "$(journal_file)" "$@"
}

journal_get() {
  kv_get "$(journal_file)" "$1"
}

journal_clear() {
  rm -f -- "$(journal_file)"
}

# journal_phase: the phase of an unfinished restore, or nothing.
journal_phase() {
  journal_get phase 2>/dev/null || true
}
