# shellcheck shell=bash
# The last steps of a restore: the config files back at their paths (with --with-config)
# and the application's env file written from the EDMS_SECRET_* values.
#
# Reads: backup with_config edms_config_root EDMS_BACKUP_APP_ENV_FILE
# Sets:  config_report env_file_report

restore_config() {
  config_report="not restored (add --with-config to put the config files back)"
  [[ -n "$with_config" ]] || return 0
  local err
  err=$(tar -xzpf "$backup/config.tar.gz" --directory="$edms_config_root" --numeric-owner 2>&1) ||
    die "config files could not be put back: $(first_error_line "$err") (database and storage are restored)"
  config_report="restored to their paths: $(tar -tzf "$backup/config.tar.gz" | grep -cv '/$' || true) files"
}

write_app_env_file() {
  local file=${EDMS_BACKUP_APP_ENV_FILE:-} name value tmp
  [[ -n "$file" ]] || return 0
  file="${edms_config_root%/}/${file#/}"
  tmp="$file.edms-tmp"
  (
    umask 077
    while IFS= read -r name; do
      [[ "$name" =~ ^EDMS_SECRET_[A-Za-z0-9_]+$ ]] || continue
      value=${!name}
      if [[ "$value" == *[$'\n"\\$']* ]]; then
        value=${value//\\/\\\\}
        value=${value//\"/\\\"}
        value=${value//\$/\\\$}
        value="\"${value//$'\n'/\\n}\""
      fi
      printf '%s=%s\n' "${name#EDMS_SECRET_}" "$value"
    done < <(compgen -e | sort) >"$tmp"
  ) || die "cannot write the application env file $file: make its folder writable"
  chmod 600 -- "$tmp"
  mv -f -- "$tmp" "$file"
  env_file_report=$file
}
