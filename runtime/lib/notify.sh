# shellcheck shell=bash
# Notifications, with curl, sent in the background so that a receiver that is slow or down
# never fails or delays a command:
# - EDMS_BACKUP_PING_URL: a dead man's switch as healthchecks.io, Uptime Kuma's push monitors
#   and Cronitor take it: URL/start when a backup starts, URL when it succeeds, URL/fail
#   (the error line, then the last lines the command said) when it fails.
# - EDMS_BACKUP_WEBHOOK_URL: one JSON POST per event, schema "edms-backup.event/1":
#   {"schema", "event", "stack", "host", "time", ...the event's fields}; events
#   backup.succeeded (id, kind, database_bytes, storage_new_bytes, duration_seconds),
#   backup.failed (error), offsite.failed (error), restore.succeeded (id,
#   duration_seconds), restore.failed (id, error), prune.deleted (ids, kept),
#   drill.succeeded (id, restore_seconds, tables, files), drill.failed (id, error),
#   basebackup.succeeded (id, duration_seconds), basebackup.failed (error),
#   wal.interrupted (error: the WAL receiver lost its stream; once until it streams again).
# Both URLs may hold tokens: they are never written anywhere. A notification that cannot
# be delivered (10 s each try, 3 tries) is recorded in EDMS_BACKUP_DIR/.notify.log.
# Reads: edms_dir (may be empty: then nothing is recorded)

# notify_ping SUFFIX BODY: SUFFIX is start, fail or empty (success). A fail's body is the
# error line, then the last lines the command said before it (common.sh, say).
notify_ping() {
  [[ -n "${EDMS_BACKUP_PING_URL:-}" ]] || return 0
  local body=$2
  if [[ "$1" == fail && ${#edms_said[@]} -gt 0 ]]; then
    body+=$'\n\n'"$(printf '%s\n' "${edms_said[@]}")"
  fi
  notify_send "ping${1:+ /$1}" "${EDMS_BACKUP_PING_URL%/}${1:+/$1}" text/plain "$body"
}

# notify_event EVENT [FIELDS]: FIELDS is JSON members ("id":"…","bytes":1), without braces.
notify_event() {
  [[ -n "${EDMS_BACKUP_WEBHOOK_URL:-}" ]] || return 0
  local body
  body=$(printf '{"schema":"edms-backup.event/1","event":%s,"stack":%s,"host":%s,"time":%s%s}' \
    "$(json_str "$1")" "$(json_str "${EDMS_BACKUP_STACK:-edms}")" "$(json_str "$(hostname 2>/dev/null || echo unknown)")" \
    "$(json_str "$(now_utc)")" "${2:+,$2}")
  notify_send "webhook $1" "$EDMS_BACKUP_WEBHOOK_URL" application/json "$body"
}

# notify_send WHAT URL TYPE BODY: in a background process that holds none of the command's
# files open (the lock, a pipe a caller reads to its end), and is not one of its jobs.
notify_send() {
  local log=${edms_dir:+$edms_dir/.notify.log}
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      ((fd > 2 && fd < 255)) && eval "exec $fd>&-" 2>/dev/null
    done
    exec </dev/null >/dev/null 2>&1
    # The URL reaches curl as its config on fd 3, never on its command line, which any
    # user's ps shows (a ping token, a webhook's user:password or ?token=).
    out=$(printf '%s' "$4" | curl --silent --show-error --fail --max-time 10 --retry 2 --retry-delay 2 --retry-connrefused \
      --header "Content-Type: $3" --data-binary @- --output /dev/null --config /dev/fd/3 3<<<"url = $(curl_quote "$2")" 2>&1) && exit 0
    [[ -n "$log" ]] || exit 0
    out=${out//"$2"/<url>}
    umask 077 # the log is the backup folder owner's only
    printf '%s %s not delivered: %s\n' "$(now_utc)" "$1" "${out//$'\n'/ }" >>"$log"
  ) &
  disown "$!" 2>/dev/null || true
}

# curl_quote STRING: STRING as a double-quoted value of curl's config file.
curl_quote() {
  local value=${1//$'\n'/}
  value=${value//\\/\\\\}
  printf '"%s"' "${value//\"/\\\"}"
}
