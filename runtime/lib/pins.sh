# shellcheck shell=bash
# Pins: backups that prune, GFS and `offsite prune` never delete, whatever their age.
# A pin is a line "ID<TAB>REASON<TAB>PINNED_AT" of EDMS_BACKUP_DIR/.pins (written by pin and
# unpin under the backups' lock, replaced whole), or an id of EDMS_BACKUP_PINNED (the stack's
# `pinned` list, ids separated by spaces or commas); off-site, the snapshot's tag `pinned`.

pins_file() {
  printf '%s/.pins\n' "$edms_dir"
}

# pinned_ids: every pinned id, one a line (the file's and EDMS_BACKUP_PINNED's).
pinned_ids() {
  local id
  [[ ! -f "$(pins_file)" ]] || cut -f1 -- "$(pins_file)"
  stack_pins
}

# stack_pins: EDMS_BACKUP_PINNED's ids, one a line.
stack_pins() {
  tr ', ' '\n\n' <<<"${EDMS_BACKUP_PINNED:-}" | sed '/^$/d'
}

# check_pinned_setting: every id of EDMS_BACKUP_PINNED is an id.
check_pinned_setting() {
  local id
  while IFS= read -r id; do
    is_backup_id "$id" || die "EDMS_BACKUP_PINNED names '$id', which is not a backup id (YYYYMMDD_HHMMSS): fix the stack's pinned list"
  done < <(stack_pins)
}

# pin_reason ID: why ID is pinned ("by the stack config" for EDMS_BACKUP_PINNED's); fails
# when it is not.
pin_reason() {
  local id reason
  if [[ -f "$(pins_file)" ]]; then
    while IFS=$'\t' read -r id reason _; do
      [[ "$id" == "$1" ]] && { printf '%s\n' "${reason:-pinned}"; return 0; }
    done <"$(pins_file)"
  fi
  grep -qxF -- "$1" < <(stack_pins) || return 1
  printf 'by the stack config\n'
}

# pins_rewrite ID [REASON]: the file with ID's line dropped, and with REASON given, a new
# one added; replaced whole (never half-written).
pins_rewrite() {
  local file tmp
  file=$(pins_file)
  tmp="$file.$$"
  {
    [[ ! -f "$file" ]] || awk -F '\t' -v id="$1" '$1 != id' "$file"
    (($# < 2)) || printf '%s\t%s\t%s\n' "$1" "$2" "$(now_utc)"
  } >"$tmp"
  mv -f -- "$tmp" "$file"
}
