#!/usr/bin/env bash
# Usage: test/bed/swift.sh start DIR PORT
#        test/bed/swift.sh stop DIR
#
# A single-node OpenStack Swift (Debian's packages) as the tests' S3 store: account,
# container and object servers on PORT+1..PORT+3, memcached on PORT+4, and the proxy on
# 127.0.0.1:PORT over TLS (certificate from a CA made here, DIR/tls/ca.pem) with the s3api
# and tempauth middlewares. Everything lives under DIR; nothing of the machine's own
# /etc/swift is read. `start` prints what an S3 client needs as KEY=VALUE lines.
# (restic 0.14 over plain HTTP to s3api fails with "aws-chunked is not supported": TLS.)
set -euo pipefail

main() {
  case "${1:-}" in
    start) start "$2" "$3" ;;
    stop) stop "$2" ;;
    *) echo "usage: $0 start DIR PORT | stop DIR" >&2 && exit 2 ;;
  esac
}

start() {
  local dir=$1 port=$2 server n
  # The five ports must be free: a backend that cannot bind leaves the proxy answering 503.
  for ((n = 0; n <= 4; n++)); do
    if [[ -n "$(ss -Htln "sport = :$((port + n))")" ]]; then
      echo "swift: port $((port + n)) is taken: start on another" >&2
      return 3
    fi
  done
  mkdir -p "$dir/etc" "$dir/node/d1" "$dir/run" "$dir/log" "$dir/tls"
  make_tls "$dir/tls"
  write_configs "$dir" "$port"
  make_rings "$dir/etc" "$port"
  memcached -d -u root -l 127.0.0.1 -p $((port + 4)) -P "$dir/run/memcached.pid"
  for server in account container object proxy; do
    setsid "swift-$server-server" "$dir/etc/$server-server.conf" </dev/null >"$dir/log/$server.log" 2>&1 &
    echo $! >"$dir/run/$server.pid"
  done
  wait_ready "$dir" "$port"
  printf '%s\n' "S3_ENDPOINT=https://127.0.0.1:$port" "AWS_ACCESS_KEY_ID=test:tester" \
    "AWS_SECRET_ACCESS_KEY=testing" "AWS_DEFAULT_REGION=us-east-1" "RESTIC_CACERT=$dir/tls/ca.pem"
}

stop() {
  local dir=$1 pidfile
  for pidfile in "$dir"/run/*.pid; do
    if [[ -f "$pidfile" ]]; then kill "$(<"$pidfile")" 2>/dev/null || true; fi
  done
}

make_tls() {
  local tls=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=edms-backup test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 2 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
}

write_configs() {
  local dir=$1 port=$2 etc="$1/etc" n=1 server
  cat >"$etc/swift.conf" <<EOF
[swift-hash]
swift_hash_path_suffix = edms-test
swift_hash_path_prefix = edms-test
[storage-policy:0]
name = Policy-0
default = yes
EOF
  for server in account container object; do
    cat >"$etc/$server-server.conf" <<EOF
[DEFAULT]
devices = $dir/node
mount_check = false
bind_ip = 127.0.0.1
bind_port = $((port + n))
workers = 0
user = root
swift_dir = $etc
log_address = $dir/run/no-syslog
[pipeline:main]
pipeline = $server-server
[app:$server-server]
use = egg:swift#$server
EOF
    n=$((n + 1))
  done
  cat >"$etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $etc
cert_file = $dir/tls/server.pem
key_file = $dir/tls/server.key
log_address = $dir/run/no-syslog
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((port + 4))
EOF
  # The plain filters, NAME[:EGG] (the egg is the name unless given).
  for server in catch_errors gatekeeper healthcheck proxy-logging:proxy_logging listing_formats copy slo dlo; do
    printf '[filter:%s]\nuse = egg:swift#%s\n' "${server%%:*}" "${server##*:}"
  done >>"$etc/proxy-server.conf"
}

make_rings() {
  local etc=$1 port=$2 n=1 ring
  for ring in account container object; do
    swift-ring-builder "$etc/$ring.builder" create 6 1 1 >/dev/null
    swift-ring-builder "$etc/$ring.builder" add "r1z1-127.0.0.1:$((port + n))/d1" 100 >/dev/null
    swift-ring-builder "$etc/$ring.builder" rebalance >/dev/null
    n=$((n + 1))
  done
}

# wait_ready DIR PORT: the proxy answers, and so do the account, container and object
# servers behind it (a container and an object written and removed through tempauth): a
# backend whose port was taken would leave the proxy answering 503 to every request.
wait_ready() {
  local dir=$1 port=$2 _ token url="https://127.0.0.1:$2"
  local -a curl=(curl -sf --max-time 5 --cacert "$dir/tls/ca.pem")
  for _ in $(seq 1 100); do
    if "${curl[@]}" "$url/healthcheck" >/dev/null 2>&1; then
      token=$("${curl[@]}" -o /dev/null -D - -H 'X-Auth-User: test:tester' -H 'X-Auth-Key: testing' "$url/auth/v1.0" |
        tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')
      if [[ -n "$token" ]] &&
        "${curl[@]}" -o /dev/null -X PUT -H "X-Auth-Token: $token" "$url/v1/AUTH_test/probe" &&
        "${curl[@]}" -o /dev/null -X PUT -H "X-Auth-Token: $token" --data-binary probe "$url/v1/AUTH_test/probe/o" &&
        "${curl[@]}" -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/v1/AUTH_test/probe/o" &&
        "${curl[@]}" -o /dev/null -X DELETE -H "X-Auth-Token: $token" "$url/v1/AUTH_test/probe"; then
        return 0
      fi
    fi
    sleep 0.2
  done
  echo "swift did not start; logs in $dir/log" >&2
  tail -n 20 "$dir"/log/*.log >&2
  stop "$dir"
  return 1
}

main "$@"
