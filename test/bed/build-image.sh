#!/usr/bin/env bash
# Usage: test/bed/build-image.sh [TAG]
#
# Builds the test image (default edms-test/postgres:15-r6) from Debian packages with
# mmdebstrap and `docker import`, because no image registry is reachable here.
# It holds what the official postgres:15-bookworm image holds that the tests use:
# bash, coreutils, tar, gzip, zstd, util-linux, the PostgreSQL 15 server and client,
# and an entrypoint honouring POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB; plus what
# the runtime image adds (components/image/Dockerfile: restic, curl, ca-certificates) and
# openssh-server and socat, so that the e2e tests can run an SFTP store and an HTTP
# receiver from the same image.
# The Debian mirror is read from this machine's apt sources.
set -euo pipefail

tag=${1:-edms-test/postgres:15-r6}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# First "deb" URI of the machine's apt sources (deb822 or one-line format).
apt_mirror() {
  local file line
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] || continue
    line=$(grep -m1 -E '^URIs:' "$file" || true)
    if [[ -n "$line" ]]; then
      printf '%s\n' "${line#URIs:}" | awk '{print $1}'
      return
    fi
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$file" ]] || continue
    line=$(grep -m1 -E '^deb[[:space:]]' "$file" | grep -v security || true)
    if [[ -n "$line" ]]; then
      printf '%s\n' "$line" | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; exit } }'
      return
    fi
  done
  echo "build-image: no Debian mirror found in /etc/apt/sources.list*; add one and retry" >&2
  exit 1
}

mirror=$(apt_mirror)
echo "build-image: building $tag from $mirror" >&2

# The hooks are run by mmdebstrap with the new root as $1: single quotes on purpose.
# shellcheck disable=SC2016
mmdebstrap --quiet --variant=minbase --format=tar \
  --include=bash,coreutils,tar,gzip,zstd,util-linux,hostname,postgresql-15,postgresql-client-15,restic,curl,jq,ca-certificates,openssh-server,socat \
  --customize-hook="copy-in '$here/entrypoint.sh' /usr/local/bin" \
  --customize-hook='chmod 755 "$1/usr/local/bin/entrypoint.sh"' \
  --customize-hook='rm -rf "$1/var/lib/postgresql/15" "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*' \
  bookworm - "$mirror" |
  docker import \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]' \
    --change 'CMD ["postgres"]' \
    - "$tag" >/dev/null
echo "build-image: built $tag" >&2
