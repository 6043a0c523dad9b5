#!/bin/sh
# The old way (issue 19's second baseline): one process per VM, as xe-backup-metadata ran
# `xe vm-export --metadata` for each VM. Here each export is one curl process against the
# same handler, after one listing (baseline-client.mjs list) and the database dump.
# usage: legacy-loop.sh OUTDIR   (XSMETA_URL, XSMETA_USERNAME, XSMETA_PASSWORD)
set -eu
out=$1
mkdir -p "$out"
set -- $(node "$(dirname "$0")/baseline-client.mjs" list)
session=$1
shift
curl -sf -o "$out/pool-database.xml" "$XSMETA_URL/pool/xmldbdump?session_id=$session"
for uuid in "$@"; do
  curl -sf -o "$out/$uuid.vmmeta" \
    "$XSMETA_URL/export_metadata?session_id=$session&uuid=$uuid&export_snapshots=false"
done
curl -sf -o /dev/null -H 'content-type: application/json' \
  -d "{\"jsonrpc\":\"2.0\",\"method\":\"session.logout\",\"params\":[\"$session\"],\"id\":1}" \
  "$XSMETA_URL/jsonrpc"
echo "$#"
