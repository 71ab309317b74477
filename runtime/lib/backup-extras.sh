# shellcheck shell=bash
# The parts of a backup besides the database and the storage: the config files, and
# fingerprints of the application's secrets.
#
# Reads: tmp edms_config_paths edms_config_root
# Sets:  config_included config_missing (archive_config), secrets_json secret_names
#        (fingerprint_secrets)

archive_config() {
  local path full err
  local -a members=()
  config_included=()
  config_missing=()
  for path in "${edms_config_paths[@]}"; do
    full="${edms_config_root%/}/${path#/}"
    if [[ -e "$full" || -L "$full" ]]; then
      members+=("${path#/}")
      config_included+=("$path")
    else
      config_missing+=("$path")
      say "config path $path is missing; recorded in the manifest"
    fi
  done
  if ! err=$( ((${#members[@]})) && printf '%s\0' "${members[@]}" |
    tar --create --gzip --file="$tmp/config.tar.gz" --directory="$edms_config_root" --numeric-owner \
      --null --verbatim-files-from --files-from=- 2>&1 ||
    tar --create --gzip --file="$tmp/config.tar.gz" --files-from=/dev/null 2>&1); then
    die "cannot archive the config files: $(first_error_line "$err")"
  fi
  chmod 0600 -- "$tmp/config.tar.gz"
}

# EDMS_SECRET_<NAME> values are recorded as salted fingerprints only, never as values, so
# a restore can tell whether the target runs with the same secrets.
fingerprint_secrets() {
  local name value salt fingerprint
  : >"$tmp/meta/secrets.tsv"
  secrets_json=()
  secret_names=()
  while IFS= read -r name; do
    [[ "$name" =~ ^EDMS_SECRET_[A-Za-z0-9_]+$ ]] || continue
    value=${!name}
    salt=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    fingerprint=$(secret_fingerprint "$salt" "$value")
    secrets_json+=("$(json_str "${name#EDMS_SECRET_}"):{\"salt\":\"$salt\",\"sha256\":\"$fingerprint\"}")
    secret_names+=("${name#EDMS_SECRET_}")
    printf '%s\t%s\t%s\n' "${name#EDMS_SECRET_}" "$salt" "$fingerprint" >>"$tmp/meta/secrets.tsv"
  done < <(compgen -e | sort)
}
