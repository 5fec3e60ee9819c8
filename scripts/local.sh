#!/usr/bin/env bash
# The whole dsexport cycle on this machine, with no cloud account: the Cloud
# Datastore emulator that ships with gcloud is both the store and the export
# target. It writes a few entities, runs `dsexport export --wait`, which starts
# the export, records it and shows the report (or posts it to Slack when
# SLACK_TOKEN+SLACK_CHANNEL or SLACK_WEBHOOK_URL is set), then lists what the
# store recorded.
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
# A few entities so the export has something to hold.
for i in 1 2 3; do
  curl -fsS -X POST "http://$DATASTORE_EMULATOR_HOST/v1/projects/$project:commit" \
    -H 'Content-Type: application/json' \
    -d "{\"mode\":\"NON_TRANSACTIONAL\",\"mutations\":[{\"upsert\":{\"key\":{\"partitionId\":{\"projectId\":\"$project\"},\"path\":[{\"kind\":\"Order\",\"name\":\"order-$i\"}]},\"properties\":{\"total\":{\"integerValue\":\"$((i * 100))\"}}}}]}" >/dev/null
done

export DSEXPORT_PROJECT="$project"
export DSEXPORT_OUTPUT_PREFIX="${DSEXPORT_OUTPUT_PREFIX:-gs://local-backups/$(date +%Y%m%dT%H%M%S)}"
export DSEXPORT_ADMIN_ENDPOINT="http://$DATASTORE_EMULATOR_HOST"
"$bin" export --wait
echo
"$bin" list
# Keep the emulator's directory: the export files the report points to are there.
KEEP_EMULATOR_DIR=1
echo "export files: $EMULATOR_DIR (remove it when done)" >&2
