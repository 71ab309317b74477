# shellcheck shell=bash
# Five-field cron expressions (minute hour day-of-month month day-of-week) with lists,
# ranges, steps and names, evaluated in the local time of $TZ, as cron does. When both
# day fields are restricted a day matches either of them (cron's rule).
#
# The fields are expanded once into lookup strings: cron_minutes=",0,30," and so on.

# cron_parse EXPR: sets cron_minutes cron_hours cron_doms cron_months cron_dows and
# cron_dom_any/cron_dow_any; returns 1 with cron_error set when EXPR is not valid.
cron_parse() {
  local -a fields
  read -r -a fields <<<"$1"
  if ((${#fields[@]} != 5)); then
    cron_error="'$1' has ${#fields[@]} fields, cron takes 5 (minute hour day-of-month month day-of-week), e.g. '0 2 * * *'"
    return 1
  fi
  cron_minutes=$(cron_field "${fields[0]}" 0 59 minute) || { cron_error=$cron_minutes; return 1; }
  cron_hours=$(cron_field "${fields[1]}" 0 23 hour) || { cron_error=$cron_hours; return 1; }
  cron_doms=$(cron_field "${fields[2]}" 1 31 day-of-month) || { cron_error=$cron_doms; return 1; }
  cron_months=$(cron_field "$(cron_names "${fields[3]}" jan feb mar apr may jun jul aug sep oct nov dec)" 1 12 month "${fields[3]}") ||
    { cron_error=$cron_months; return 1; }
  cron_dows=$(cron_field "$(cron_names "${fields[4]}" sun mon tue wed thu fri sat)" 0 7 day-of-week "${fields[4]}") ||
    { cron_error=$cron_dows; return 1; }
  [[ "$cron_dows" == *,7,* ]] && cron_dows+="0,"
  cron_dom_any=""
  cron_dow_any=""
  [[ "${fields[2]}" == '*'* ]] && cron_dom_any=yes
  [[ "${fields[4]}" == '*'* ]] && cron_dow_any=yes
  return 0
}

# check_schedule: dies unless TZ is a time zone this system knows (glibc takes any other
# value for UTC, silently) and EDMS_BACKUP_SCHEDULE is valid and fires at all.
check_schedule() {
  local zone=${TZ#:}
  if [[ "$zone" == /* || "$zone" == *..* || ! -f "/usr/share/zoneinfo/$zone" ]] && [[ "${TZ:0:1}" == : || ! "$zone" =~ ^$EDMS_POSIX_TZ$ ]]; then
    if [[ -d /usr/share/zoneinfo ]]; then
      die "TZ='$TZ' is not a time zone (no /usr/share/zoneinfo/$zone, and no POSIX TZ string): set it to one such as UTC or Europe/Berlin (stack config timezone)"
    fi
    die "TZ='$TZ' is not a time zone this system knows (no tzdata in /usr/share/zoneinfo): install tzdata or use a POSIX TZ string such as CET-1CEST,M3.5.0,M10.5.0/3"
  fi
  cron_parse "$edms_schedule" || die "EDMS_BACKUP_SCHEDULE: $cron_error"
  cron_next "$(date +%s)" >/dev/null ||
    die "EDMS_BACKUP_SCHEDULE '$edms_schedule' never fires (no day matches it, e.g. 31 February): set days that exist (stack config schedule)"
}

# A POSIX TZ string (std offset [dst [offset] [,start[/time],end[/time]]]), e.g. UTC+3 or
# CET-1CEST,M3.5.0,M10.5.0/3.
EDMS_POSIX_TZ='([A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)[+-]?[0-9]{1,2}(:[0-9]{2}){0,2}(([A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)([+-]?[0-9]{1,2}(:[0-9]{2}){0,2})?(,(M[0-9]{1,2}\.[1-5]\.[0-6]|J?[0-9]{1,3})(/[+-]?[0-9]{1,3}(:[0-9]{2}){0,2})?){2})?'

# cron_names FIELD NAME...: FIELD with the names replaced by their numbers (first = 1 for
# months, 0 for days of the week).
cron_names() {
  local field=${1,,} n=0 name
  shift
  [[ "$1" == jan ]] && n=1
  for name in "$@"; do
    field=${field//$name/$n}
    n=$((n + 1))
  done
  printf '%s' "$field"
}

# cron_field FIELD MIN MAX NAME [AS_WRITTEN]: prints ",v1,v2,...,"; on a bad field prints
# the reason (naming the field as written, before its names became numbers) and returns 1.
cron_field() {
  local field=$1 min=$2 max=$3 what=$4 item range step lo hi v out=","
  local shown=${5:-$1}
  local -a items
  IFS=, read -r -a items <<<"$field"
  [[ -n "$field" && "$field" != *,, && "$field" != ,* && "$field" != *, ]] || { cron_bad "$what" "$shown" "$min" "$max"; return 1; }
  for item in "${items[@]}"; do
    range=${item%%/*}
    step=1
    if [[ "$item" == */* ]]; then
      step=${item#*/}
      [[ "$step" =~ ^[0-9]+$ ]] && ((10#$step > 0)) || { cron_bad "$what" "$shown" "$min" "$max"; return 1; }
      step=$((10#$step))
    fi
    if [[ "$range" == '*' ]]; then
      lo=$min hi=$max
    elif [[ "$range" =~ ^([0-9]+)-([0-9]+)$ ]]; then
      lo=$((10#${BASH_REMATCH[1]})) hi=$((10#${BASH_REMATCH[2]}))
    elif [[ "$range" =~ ^[0-9]+$ ]]; then
      lo=$((10#$range)) hi=$lo
      [[ "$item" == */* ]] && hi=$max
    else
      cron_bad "$what" "$shown" "$min" "$max"
      return 1
    fi
    ((lo >= min && hi <= max && lo <= hi)) || { cron_bad "$what" "$shown" "$min" "$max"; return 1; }
    for ((v = lo; v <= hi; v += step)); do
      out+="$v,"
    done
  done
  printf '%s' "$out"
}

cron_bad() {
  printf "%s field '%s' is not valid: use numbers %s-%s, '*', lists (1,5), ranges (1-5) and steps (*/15)" "$1" "$2" "$3" "$4"
}

# cron_clock EPOCH: sets h mi d mo w (numbers) of the caller to EPOCH's local time in
# $TZ, with bash's own strftime (no process per call).
cron_clock() {
  printf -v h '%(%H)T' "$1"
  printf -v mi '%(%M)T' "$1"
  printf -v d '%(%d)T' "$1"
  printf -v mo '%(%m)T' "$1"
  printf -v w '%(%w)T' "$1"
  h=$((10#$h)) mi=$((10#$mi)) d=$((10#$d)) mo=$((10#$mo))
}

# cron_matches EPOCH: whether the minute holding EPOCH matches (local time of $TZ).
cron_matches() {
  local h mi d mo w
  cron_clock "$1"
  cron_day_matches "$d" "$mo" "$w" && [[ "$cron_hours" == *",$h,"* && "$cron_minutes" == *",$mi,"* ]]
}

cron_day_matches() {
  local d=$1 mo=$2 w=$3 dom=no dow=no
  [[ "$cron_months" == *",$mo,"* ]] || return 1
  [[ "$cron_doms" == *",$d,"* ]] && dom=yes
  [[ "$cron_dows" == *",$w,"* ]] && dow=yes
  if [[ -n "$cron_dom_any" || -n "$cron_dow_any" ]]; then
    [[ "$dom" == yes && "$dow" == yes ]]
  else
    [[ "$dom" == yes || "$dow" == yes ]]
  fi
}

# cron_previous EPOCH: the start (epoch) of the latest matching minute at or before EPOCH,
# searching back at most 8 years; a day or hour that cannot match is skipped whole.
cron_previous() {
  local t=$(($1 - $1 % 60)) limit=$(($1 - 2930 * 86400)) h mi d mo w
  while ((t > limit)); do
    cron_clock "$t"
    if ! cron_day_matches "$d" "$mo" "$w"; then
      t=$((t - h * 3600 - mi * 60 - 60))
    elif [[ "$cron_hours" != *",$h,"* ]]; then
      t=$((t - mi * 60 - 60))
    elif [[ "$cron_minutes" != *",$mi,"* ]]; then
      t=$((t - 60))
    else
      printf '%s\n' "$t"
      return 0
    fi
  done
  return 1
}

# cron_next EPOCH: the start of the first matching minute after EPOCH (within 8 years).
cron_next() {
  local t=$(($1 - $1 % 60 + 60)) limit=$(($1 + 2930 * 86400)) h mi d mo w
  while ((t < limit)); do
    cron_clock "$t"
    if ! cron_day_matches "$d" "$mo" "$w"; then
      t=$((t + (23 - h) * 3600 + (59 - mi) * 60 + 60))
    elif [[ "$cron_hours" != *",$h,"* ]]; then
      t=$((t + (59 - mi) * 60 + 60))
    elif [[ "$cron_minutes" != *",$mi,"* ]]; then
      t=$((t + 60))
    else
      printf '%s\n' "$t"
      return 0
    fi
  done
  return 1
}
