#!/usr/bin/env bash
# The demo EDMS's application container (Pulumi.dev.yaml, edms-backup:demo): on its first
# start it writes sample documents (two versions of each SOP in the database) and media
# into its storage volumes, then idles as an application would, so that a restore has
# something to stop and start.
set -euo pipefail

documents=/edms/storage/1
media=/edms/storage/2

if [[ ! -e "$documents/.demo-seeded" ]]; then
  mkdir -p "$documents/documents"
  for d in $(seq 1 40); do
    for v in 1 2; do
      printf 'SOP-%04d version %d\nStandard operating procedure %d: the operator checks the record and signs it.\n' "$d" "$v" "$d" \
        >"$documents/documents/SOP-$(printf %04d "$d")-v$v.txt"
    done
  done
  touch "$documents/.demo-seeded"
fi
if [[ -d "$media" && ! -e "$media/.demo-seeded" ]]; then
  mkdir -p "$media/signatures"
  for u in 1 2 3 4; do
    head -c 4096 /dev/urandom >"$media/signatures/user-$u.png"
  done
  touch "$media/.demo-seeded"
fi
echo "edms-demo-app: sample documents in $documents, media in $media; idling"
trap 'exit 0' TERM INT
sleep infinity &
wait
