#!/usr/bin/env bash
# Usage: test/bed/provision.sh [--packages-only]
#
# Makes this machine ready for the test suites, doing only what is missing (with
# --packages-only just the packages, for the suites that need no Docker):
# - Debian packages: docker.io, mmdebstrap, shellcheck, postgresql (15), zstd, pigz, iproute2,
#   and the off-site tests' restic, curl, jq (the runtime parses JSON with it), OpenSSH's server and OpenStack Swift (with memcached),
#   and prometheus for promtool, which checks the metrics;
# - a Docker daemon (started in the background when none answers);
# - the test image edms-test/postgres:15-r6 (built with test/bed/build-image.sh).
# Idempotent; `.ci/run` and the e2e suite's global setup both call it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=${EDMS_TEST_IMAGE:-edms-test/postgres:15-r6}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
command -v shellcheck >/dev/null || missing+=(shellcheck)
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || missing+=(postgresql-15 postgresql-client-15)
command -v zstd >/dev/null || missing+=(zstd)
command -v pigz >/dev/null || missing+=(pigz)
command -v ip >/dev/null || missing+=(iproute2)
command -v restic >/dev/null || missing+=(restic)
command -v curl >/dev/null || missing+=(curl)
command -v jq >/dev/null || missing+=(jq)
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server openssh-client)
command -v swift-proxy-server >/dev/null || missing+=(swift-proxy swift-account swift-container swift-object python3-swift)
command -v memcached >/dev/null || missing+=(memcached)
command -v promtool >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "provision: missing ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
  fi
  echo "provision: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[[ "${1:-}" == --packages-only ]] && exit 0

if ! docker info >/dev/null 2>&1; then
  log=${TMPDIR:-/tmp}/edms-dockerd.log
  echo "provision: starting dockerd (log: $log)" >&2
  setsid dockerd >"$log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "provision: dockerd did not start; see $log" >&2; exit 1; }
fi

if ! docker image inspect "$image" >/dev/null 2>&1; then
  "$here/build-image.sh" "$image"
fi
