#!/usr/bin/env bash
# Usage: test/bed/second-dockerd.sh start DIR [N] | stop DIR
#
# A second Docker daemon that stands for another VM in the migration and vault tests: its
# own data-root, exec-root, pidfile and socket (DIR/docker.sock), its own default bridge
# (edmsvmN: with --bridge none a starting dockerd deletes docker0, the first daemon's), and
# an address pool of its own so that its networks never overlap the first daemon's. N (0 to
# 9, default 0) tells apart daemons that run at once (two test files): each its bridge and
# pool. `start` prints the DOCKER_HOST to use and loads the test image into it.
set -euo pipefail

action=${1:?usage: second-dockerd.sh start|stop DIR}
dir=${2:?usage: second-dockerd.sh start|stop DIR}
host="unix://$dir/docker.sock"
n=${3:-0}
[[ "$n" =~ ^[0-9]$ ]] || { echo "second-dockerd.sh: N must be 0 to 9" >&2; exit 1; }
image=${EDMS_TEST_IMAGE:-edms-test/postgres:15-r6}

case "$action" in
  start)
    mkdir -p "$dir"
    echo "$n" >"$dir/bridge"
    if ! DOCKER_HOST=$host docker info >/dev/null 2>&1; then
      if ! ip link show "edmsvm$n" >/dev/null 2>&1; then
        ip link add "edmsvm$n" type bridge
        ip addr add "10.214.$n.1/24" dev "edmsvm$n"
        ip link set "edmsvm$n" up
      fi
      setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/docker.pid" \
        --host "$host" --bridge "edmsvm$n" --default-address-pool "base=10.$((213 - 2 * n)).0.0/16,size=24" \
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
    ip link del "edmsvm$(cat "$dir/bridge" 2>/dev/null || echo 0)" 2>/dev/null || true
    ;;
  *) echo "usage: second-dockerd.sh start|stop DIR" >&2; exit 1 ;;
esac
