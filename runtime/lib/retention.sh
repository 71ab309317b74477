# shellcheck shell=bash
# Which backups retention keeps, and why: one rule set for the local backups (prune) and
# the off-site copies (offsite prune), so that both keep the same days, ISO weeks and
# months of TZ (23:30 UTC on 31 December is January in Berlin, for both).

# retention_plan KEEP_LAST CUTOFF DAYS DAILY WEEKLY MONTHLY: reads backup ids newest first
# (stdin) and prints "ID<TAB>RULES" for each, RULES the rules that keep it ("last 3, within
# 7 days, daily 1") or nothing when none does. Kept are the newest KEEP_LAST; those whose id
# (UTC) is at or after the epoch CUTOFF (DAYS names it; CUTOFF -1: no such rule); and the
# newest backup of each of the DAILY / WEEKLY / MONTHLY most recent days / ISO weeks /
# months in TZ that have one, exactly as restic's forget --keep-daily/-weekly/-monthly.
retention_plan() {
  local keep_last=$1 cutoff=$2 days=$3 daily=$4 weekly=$5 monthly=$6
  local -a ids keys
  mapfile -t ids
  ((${#ids[@]})) || return 0
  # Each backup's epoch, day, ISO week and month in TZ: one date for all of them.
  mapfile -t keys < <(for id in "${ids[@]}"; do printf '%s-%s-%s %s:%s:%s UTC\n' "${id:0:4}" "${id:4:2}" "${id:6:2}" "${id:9:2}" "${id:11:2}" "${id:13:2}"; done |
    date -f - +'%s %Y-%m-%d %G-W%V %Y-%m')
  local n id epoch day week month rules d=0 w=0 m=0
  local -A seen_day=() seen_week=() seen_month=()
  for ((n = 0; n < ${#ids[@]}; n++)); do
    id=${ids[n]}
    read -r epoch day week month <<<"${keys[n]}"
    rules=""
    ((n < 10#$keep_last)) && rules+=", last $keep_last"
    ((cutoff >= 0 && epoch >= cutoff)) && rules+=", within $days days"
    # The newest backup of each of the N most recent days / weeks / months that have one.
    if [[ -z "${seen_day[$day]+set}" ]] && ((d < 10#$daily)); then
      seen_day[$day]=1 d=$((d + 1)) && rules+=", daily $d"
    fi
    if [[ -z "${seen_week[$week]+set}" ]] && ((w < 10#$weekly)); then
      seen_week[$week]=1 w=$((w + 1)) && rules+=", weekly $w"
    fi
    if [[ -z "${seen_month[$month]+set}" ]] && ((m < 10#$monthly)); then
      seen_month[$month]=1 m=$((m + 1)) && rules+=", monthly $m"
    fi
    printf '%s\t%s\n' "$id" "${rules#, }"
  done
}
