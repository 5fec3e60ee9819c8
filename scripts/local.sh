#!/usr/bin/env bash
# The whole dsexport cycle on this machine, with no cloud account: the Cloud
# Datastore emulator that ships with gcloud is both the store and the export
# target. It writes a few entities, runs `dsexport export --wait`, which starts
# the export, records it, reads its files back and shows the report with their
# real counts (or posts it to Slack when SLACK_TOKEN+SLACK_CHANNEL or
# SLACK_WEBHOOK_URL is set); then `dsexport drill`, which imports that export
# into a scratch project on the emulator, counts each kind there, compares,
# empties it and reports the restore time; then lists what the store
# recorded. It fails unless the export is verified and the drill passes.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/emulator.sh
start_emulator

# Remove the binary's directory when the script ends, also on failure or
# Ctrl-C, and stop the emulator, removing its directory unless the run
# succeeded (see the end).
bindir=$(mktemp -d "${TMPDIR:-/tmp}/dsexport-bin.XXXXXX")
cleanup() {
  rm -rf "$bindir"
  stop_emulator
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bin=$bindir/dsexport
go build -o "$bin" ./cmd/dsexport

project=${DSEXPORT_PROJECT:-local-demo}
# A few entities so the export has something to hold: three Orders, two Lines.
put() {
  curl -fsS -X POST "http://$DATASTORE_EMULATOR_HOST/v1/projects/$project:commit" \
    -H 'Content-Type: application/json' \
    -d "{\"mode\":\"NON_TRANSACTIONAL\",\"mutations\":[{\"upsert\":{\"key\":{\"partitionId\":{\"projectId\":\"$project\"},\"path\":[{\"kind\":\"$1\",\"name\":\"$2\"}]},\"properties\":{\"total\":{\"integerValue\":\"$3\"}}}}]}" >/dev/null
}
for i in 1 2 3; do put Order "order-$i" $((i * 100)); done
for i in 1 2; do put Line "line-$i" "$i"; done

# One target, exported and drilled; dsexport's records in a project of their
# own (the emulator's export of (default) would hold them, as Google's does
# not). The drill imports into the (default)
# database of a scratch project on the same emulator: the emulator has no
# databases.create (on Google a drill creates a scratch database instead).
prefix="${DSEXPORT_OUTPUT_PREFIX:-gs://local-backups/$(date +%Y%m%dT%H%M%S)}"
unset DSEXPORT_PROJECT DSEXPORT_OUTPUT_PREFIX
export DSEXPORT_CONFIG=$bindir/targets.yaml
cat >"$DSEXPORT_CONFIG" <<EOF
store: {project: $project-ops, database: dsexport}
targets:
  - name: demo
    project: $project
    export: {prefix: $prefix}
    drill: {every: 7d, project: $project-drill, database: "(default)"}
EOF
export DSEXPORT_ADMIN_ENDPOINT="http://$DATASTORE_EMULATOR_HOST"
out=$bindir/out.txt
"$bin" export --wait --target demo | tee "$out"
grep -q "verified: 5 entities in 2 kinds" "$out" || { echo "local.sh: the export's files were not verified with their real counts" >&2; exit 1; }
echo
"$bin" drill --target demo --every 1s | tee "$out"
grep -q "Restore verified in" "$out" || { echo "local.sh: the drill did not pass" >&2; exit 1; }
echo
"$bin" list
# Keep the emulator's directory: the export files the report points to are there.
KEEP_EMULATOR_DIR=1
echo "export files: $EMULATOR_DIR (remove it when done)" >&2
