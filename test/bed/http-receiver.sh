#!/usr/bin/env bash
# Usage: http-receiver.sh LOG   (run by socat for each connection, on stdin/stdout)
#
# The e2e tests' notification receiver, in a container on the test network: answers one
# HTTP request with 200 and appends it to LOG as one line, "METHOD TARGET BODY-BASE64".
set -euo pipefail

log=${1:?usage: http-receiver.sh LOG}
IFS=$' \r' read -r method target _
length=0
while IFS= read -r line; do
  line=${line%$'\r'}
  [[ -n "$line" ]] || break
  if [[ "${line,,}" == content-length:* ]]; then
    length=${line#*:}
    length=${length// /}
  fi
done
body=$(head -c "$length" | base64 -w 0)
printf '%s %s %s\n' "$method" "$target" "$body" >>"$log"
printf 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK'
