# shellcheck shell=bash
# What a vault sync copies, and what it tells: the source's snapshots held against the
# stack's schedule, its own retention and the vault's copies (edms-backup vault sync).
#
# Reads: vault_snaps source_snaps (lib/vault.sh), offsite_host offsite_stack, now,
#        edms_schedule (cron_parse'd), EDMS_BACKUP_VAULT_* and EDMS_BACKUP_OFFSITE_KEEP_*
# Sets:  copy copied_ids alarms

# plan: which source snapshots to copy (copy), and what to tell (alarms).
plan() {
  local snap orig epoch stamp host bid stack edms bytes kind day newest=0 vault_newest=0
  local -A in_vault=() in_source=() per_day=() by_hand=()
  while read -r snap orig epoch stamp host bid stack edms bytes kind; do
    [[ -n "$snap" ]] || continue
    in_vault[$orig]=1
    ((epoch > vault_newest)) && vault_newest=$epoch
  done <<<"$vault_snaps"
  newest=$vault_newest
  while read -r snap orig epoch stamp host bid stack edms bytes kind; do
    [[ -n "$snap" ]] || continue
    # shellcheck disable=SC2034 # read by check_lost, through its name
    in_source[$snap]=1
    if [[ "$host" != "$offsite_host" || "$stack" != "$offsite_stack" || "$edms" != 1 ]]; then
      # Another stack's backups may share the repository; anything else was not made by us.
      [[ "$edms" == 1 && "$stack" != - && "$host" == "edms-$stack" && "$stack" != "$offsite_stack" ]] ||
        alarms+=("the source holds snapshot ${snap:0:8} of $(when "$epoch") from host $host that edms-backup did not make for stack $offsite_stack: not copied")
      continue
    fi
    if [[ "$bid" != "$stamp" ]]; then
      alarms+=("the source's snapshot ${snap:0:8} of $(when "$epoch") does not carry its own time as backup id (id=$bid): not copied")
      continue
    fi
    if ((epoch > now + 300)); then
      alarms+=("the source's snapshot ${snap:0:8} (backup $bid) is dated in the future: not copied")
      continue
    fi
    ((epoch > newest)) && newest=$epoch
    printf -v day '%(%Y-%m-%d)T' "$epoch"
    # Backups by hand (and a restore's safety backup) have an allowance of their own; the
    # rest, untagged ones included, is what the schedule must explain.
    if [[ "$kind" == manual || "$kind" == pre-restore ]]; then
      by_hand[$day]=$((${by_hand[$day]:-0} + 1))
    else
      per_day[$day]=$((${per_day[$day]:-0} + 1))
    fi
    [[ -z "${in_vault[$snap]+set}" ]] || continue
    # Past the days the vault keeps whole: pruned here already, or never to be kept.
    ((vault_newest == 0 || epoch >= now - 10#${EDMS_BACKUP_VAULT_KEEP_DAYS:-90} * 86400)) || continue
    if ((epoch < vault_newest - 86400)); then
      alarms+=("the source's snapshot ${snap:0:8} (backup $bid) is older than the vault's newest copy by more than a day: not copied (a backup pushed late by hand? copy it with restic copy)")
      continue
    fi
    copy+=("$snap") copied_ids+=("$bid")
  done <<<"$source_snaps"
  for day in "${!per_day[@]}"; do
    check_day "$day" "${per_day[$day]}"
  done
  for day in "${!by_hand[@]}"; do
    ((${by_hand[$day]} <= 10#${EDMS_BACKUP_VAULT_MANUAL_PER_DAY:-24})) ||
      alarms+=("the source holds ${by_hand[$day]} backups by hand of $day, more than EDMS_BACKUP_VAULT_MANUAL_PER_DAY (${EDMS_BACKUP_VAULT_MANUAL_PER_DAY:-24}): fake snapshots? (copied; the vault keeps by age only)")
  done
  check_lost in_source
  check_overdue "$newest"
}

# check_day DAY COUNT: more snapshots in DAY (TZ) than the schedule runs plus the extra.
check_day() {
  local extra=${EDMS_BACKUP_VAULT_EXTRA_PER_DAY:-1} runs=0 t end
  (($2 > extra)) || return 0
  t=$(($(date -d "$1 00:00" +%s) - 1)) end=$(date -d "$1 +1 day 00:00" +%s)
  # Counted only as far as it explains COUNT: a schedule of every minute stops early.
  while ((runs + extra < $2)) && t=$(cron_next "$t") && ((t < end)); do
    runs=$((runs + 1))
  done
  (($2 <= runs + extra)) ||
    alarms+=("the source holds $2 scheduled snapshots of $1, more than the schedule '$edms_schedule' runs that day ($runs) plus $extra: fake snapshots? (copied; the vault keeps by age only)")
}

# check_lost SOURCE_SET: the vault's snapshots that the source no longer holds although its
# own retention (EDMS_BACKUP_OFFSITE_KEEP_*) would keep them: deleted by someone.
check_lost() {
  local -n present=$1
  local snap orig epoch stamp host bid stack edms bytes kind rules
  local -a lost=()
  local -A bid_present=()
  while read -r snap orig epoch stamp host bid stack edms bytes kind; do
    [[ -n "$snap" && -n "${present[$orig]+set}" ]] && bid_present[$bid]=1
  done <<<"$vault_snaps"
  while IFS=$'\t' read -r bid rules; do
    [[ -n "$bid" && -n "$rules" && -z "${bid_present[$bid]+set}" ]] && lost+=("$bid")
  done < <(awk '$8 == 1 && $6 != "-" { print $6 }' <<<"$vault_snaps" | sort -ru |
    retention_plan 1 -1 0 "${EDMS_BACKUP_OFFSITE_KEEP_DAILY:-7}" "${EDMS_BACKUP_OFFSITE_KEEP_WEEKLY:-4}" "${EDMS_BACKUP_OFFSITE_KEEP_MONTHLY:-12}")
  ((${#lost[@]} == 0)) ||
    alarms+=("the source lost ${#lost[@]} snapshot(s) that its own retention keeps and the vault holds (backups ${lost[*]}): deleted on the source? the vault keeps them")
}

# check_overdue NEWEST: no backup arrived since the schedule last ran, grace included.
check_overdue() {
  local grace=$((10#${EDMS_BACKUP_VAULT_GRACE_MINUTES:-360} * 60)) due
  if (($1 == 0)); then
    alarms+=("neither the source nor the vault holds a backup of stack $offsite_stack (host $offsite_host): check EDMS_BACKUP_STACK and that the stack's backups go off-site")
    return
  fi
  due=$(cron_previous "$((now - grace))") || return 0
  ((10#$1 >= due - 60)) ||
    alarms+=("no new backup of stack $offsite_stack arrived since $(when "$1"): the schedule '$edms_schedule' ran at $(when "$due"), more than $((grace / 60)) minutes ago")
}
