# shellcheck shell=bash
# The vault container's main process (edms-backup vault schedule): sync, then prune, on
# EDMS_BACKUP_VAULT_SCHEDULE; check --read-data=5% on EDMS_BACKUP_VAULT_CHECK_SCHEDULE; an
# event line each on stdout; the metrics file for node_exporter after each.
#
# Reads: edms_dir edms_schedule offsite_stack (lib/offsite.sh)

run_schedule() {
  local sync_schedule=${EDMS_BACKUP_VAULT_SCHEDULE:-0 * * * *} check_schedule=${EDMS_BACKUP_VAULT_CHECK_SCHEDULE-30 4 * * 0} next
  cron_parse "$edms_schedule" || die "EDMS_BACKUP_SCHEDULE (the stack's backup schedule): $cron_error"
  [[ -z "$check_schedule" ]] || cron_parse "$check_schedule" || die "EDMS_BACKUP_VAULT_CHECK_SCHEDULE: $cron_error"
  cron_parse "$sync_schedule" || die "EDMS_BACKUP_VAULT_SCHEDULE: $cron_error"
  exec {log_fd}>&1
  child=""
  trap 'scheduled_stop' TERM INT
  event "started: vault of stack $offsite_stack, sync '$sync_schedule' ($TZ), from $(source_where)"
  scheduled sync
  while :; do
    next=$(($(date +%s) / 60 * 60 + 60))
    while (($(date +%s) < next)); do
      sleep "$((next - $(date +%s)))" &
      child=$!
      wait "$child" || true
      child=""
    done
    cron_parse "$sync_schedule"
    if cron_matches "$next"; then
      scheduled sync && scheduled prune
    fi
    if [[ -n "$check_schedule" ]] && cron_parse "$check_schedule" && cron_matches "$next"; then
      scheduled check --read-data=5%
    fi
  done
}

# scheduled ACTION [ARG]: `vault ACTION` as a child the TERM trap can stop, one event line;
# then the metrics file for node_exporter's textfile collector.
scheduled() {
  local err rc=0
  err=$(mktemp)
  "$EDMS_BACKUP_ROOT/edms-backup" vault "$@" >/dev/null 2>"$err" &
  child=$!
  wait "$child" || rc=$?
  child=""
  if ((rc == 0)); then
    event "$*: ok ($(tail -n 1 "$err" | sed 's/^edms-backup vault: //'))"
  else
    event "$*: failed: $(grep -v ': ALARM: ' "$err" | tail -n 1 | sed 's/^edms-backup vault: //')"
    grep ': ALARM: ' "$err" | sed 's/^edms-backup vault: //' | while IFS= read -r line; do event "$line"; done
  fi
  rm -f -- "$err"
  "$EDMS_BACKUP_ROOT/edms-backup" metrics --textfile "$edms_dir/metrics/edms_backup.prom" >/dev/null 2>&1 || true
  return "$rc"
}

scheduled_stop() {
  event "stopping"
  [[ -z "$child" ]] || { kill -TERM "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; }
  exit 0
}

event() {
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&"$log_fd"
}
