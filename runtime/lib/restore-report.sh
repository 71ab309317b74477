# shellcheck shell=bash
# The restore's report: what was restored from where, each table against the manifest, the
# storage folders, the config, the safety backup, the secrets; and the notification.
#
# Reads: id backup db started resumed table_report restored_rows previous_db targets
#        created_roles state_notes config_report env_file_report safety_id secret_notes
#        pitr_target_text pitr_reached pitr_base_id pitr_point_id pitr_extra

report() {
  local took=$((SECONDS - started)) table label n
  notify_event restore.succeeded "\"id\":$(json_str "$id"),\"duration_seconds\":$took"
  {
    if [[ -n "$pitr_target_text" ]]; then
      printf 'Restored the state at %s in %d s (as backup %s, made from it).\n' "$pitr_target_text" "$took" "$id"
      printf 'Database: last transaction at %s (base backup %s and the WAL after it)\n' \
        "${pitr_reached:-none after the base backup}" "${pitr_base_id:-?}"
      [[ -z "${pitr_point_id:-}" ]] ||
        printf 'Storage: storage point %s (taken %s, the first at or after the time)%s\n\n' "$pitr_point_id" \
          "$(epoch_text "$(id_epoch "$pitr_point_id")")" "${pitr_extra:+; extra, kept: $pitr_extra}"
    else
      printf 'Restored backup %s (taken %s) in %d s.\n\n' "$id" "$(info_get "$id" created || echo '?')" "$took"
    fi
    if [[ -n "$resumed" ]]; then
      printf 'Database %s: restored (every table was compared with the manifest before the swap, by the run that was stopped)\n' "$db"
    else
      printf 'Database %s: restored, every table compared with the manifest:\n%s\n' "$db" "$table_report"
    fi
    # The seed's check: users, documents and audit trails, where those tables exist.
    for table in users_user:users auth_user:users documents_document:documents audit_audittrail:'audit trails'; do
      label=${table#*:}
      table=public.${table%%:*}
      if [[ -n "${restored_rows[$table]+set}" ]]; then
        printf '  %s: %s\n' "$label" "${restored_rows[$table]}"
      fi
    done
    if [[ -n "$previous_db" ]]; then
      printf '  the previous database is kept as %s (prune drops it after %s h)\n' "$previous_db" "${EDMS_BACKUP_KEEP_PREVIOUS_DB_HOURS:-24}"
    fi
    local i
    for ((i = 0; i < ${#targets[@]}; i++)); do
      printf 'Storage %s: restored from storage-%d (%s files), exactly as backed up\n' "${targets[i]}" "$((i + 1))" "$(info_get "$id" "storage_$((i + 1))_files" || echo '?')"
    done
    [[ -z "$created_roles" ]] || printf '  roles created on this server, as the backup recorded them: %s\n' "$created_roles"
    for n in "${state_notes[@]}"; do printf '  database state %s\n' "$n"; done
    printf 'Config: %s\n' "${config_report:-not restored (add --with-config to put the config files back)}"
    [[ -n "${env_file_report:-}" ]] && printf 'Application env file: %s written from the stack secrets (mode 0600)\n' "$env_file_report"
    if [[ -n "$safety_id" ]]; then
      printf 'Safety backup of the state before: %s (undo with: edms-backup restore %s --yes)\n' "$safety_id" "$safety_id"
    else
      printf 'Safety backup: none needed, the target held no data\n'
    fi
    for n in "${secret_notes[@]}"; do printf 'Secret %s\n' "$n"; done
    printf '\nUsers must log in again (their sessions ended); the same usernames and passwords work.\n'
  }
  return 0
}
