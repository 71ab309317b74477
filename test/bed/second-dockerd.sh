#!/usr/bin/env bash
# Usage: test/bed/second-dockerd.sh start DIR | stop DIR
#
# A second Docker daemon that stands for another VM in the migration tests: its own
# data-root, exec-root, pidfile and socket (DIR/docker.sock), its own default bridge
# (edmsvm0: with --bridge none a starting dockerd deletes docker0, the first daemon's), and
# an address pool of its own so that its networks never overlap the first daemon's.
# `start` prints the DOCKER_HOST to use and loads the test image into it.
set -euo pipefail

action=${1:?usage: second-dockerd.sh start|stop DIR}
dir=${2:?usage: second-dockerd.sh start|stop DIR}
host="unix://$dir/docker.sock"
image=${EDMS_TEST_IMAGE:-edms-test/postgres:15-r5}

case "$action" in
  start)
    mkdir -p "$dir"
    if ! DOCKER_HOST=$host docker info >/dev/null 2>&1; then
      if ! ip link show edmsvm0 >/dev/null 2>&1; then
        ip link add edmsvm0 type bridge
        ip addr add 10.214.0.1/24 dev edmsvm0
        ip link set edmsvm0 up
      fi
      setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
        --host "$host" --bridge edmsvm0 --default-address-pool base=10.213.0.0/16,size=24 \
        >"$dir/dockerd.log" 2>&1 </dev/null &
      for _ in $(seq 1 60); do
        DOCKER_HOST=$host docker info >/dev/null 2>&1 && break
        sleep 1
      done
      DOCKER_HOST=$host docker info >/dev/null 2>&1 || { echo "second dockerd did not start; see $dir/dockerd.log" >&2; exit 1; }
    fi
    if ! DOCKER_HOST=$host docker image inspect "$image" >/dev/null 2>&1; then
      docker save "$image" | DOCKER_HOST=$host docker load >/dev/null
    fi
    echo "$host"
    ;;
  stop)
    if [[ -f "$dir/docker.pid" ]]; then
      kill "$(cat "$dir/docker.pid")" 2>/dev/null || true
      for _ in $(seq 1 30); do
        [[ -e "$dir/docker.pid" ]] || break
        sleep 1
      done
    fi
    ip link del edmsvm0 2>/dev/null || true
    ;;
  *) echo "usage: second-dockerd.sh start|stop DIR" >&2; exit 1 ;;
esac
