#!/usr/bin/env bash
# Usage: test/bed/sshd.sh start DIR PORT
#        test/bed/sshd.sh stop DIR
#
# Debian's OpenSSH server on 127.0.0.1:PORT as the tests' SFTP store: its own host key,
# one client key allowed (for root, to DIR/repos), internal-sftp, everything under DIR.
# `start` prints what edms-backup needs for an sftp: repository as KEY=VALUE lines.
set -euo pipefail

main() {
  case "${1:-}" in
    start) start "$2" "$3" ;;
    stop) if [[ -f "$2/sshd.pid" ]]; then kill "$(<"$2/sshd.pid")" 2>/dev/null || true; fi ;;
    *) echo "usage: $0 start DIR PORT | stop DIR" >&2 && exit 2 ;;
  esac
}

start() {
  local dir=$1 port=$2
  mkdir -p "$dir/repos" /run/sshd
  ssh-keygen -q -t ed25519 -N "" -f "$dir/host_ed25519"
  ssh-keygen -q -t ed25519 -N "" -f "$dir/client_ed25519"
  cp "$dir/client_ed25519.pub" "$dir/authorized_keys"
  printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$dir/host_ed25519.pub")" >"$dir/known_hosts"
  cat >"$dir/sshd_config" <<EOC
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_ed25519
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOC
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  local _
  for _ in $(seq 1 50); do
    [[ -s "$dir/sshd.pid" ]] && break
    sleep 0.1
  done
  printf '%s\n' "SFTP_BASE=sftp://root@127.0.0.1:$port/$dir/repos" "EDMS_BACKUP_OFFSITE_SSH_KEY=$dir/client_ed25519" \
    "EDMS_BACKUP_OFFSITE_KNOWN_HOSTS=$dir/known_hosts"
}

main "$@"
