#!/usr/bin/env bash
# Capacity run (issue 6): one `dsexport serve` (the real binary, in-process
# dispatch) follows 1,000 exports at once against the fake Admin API and
# Slack and the Datastore emulator, and prints the binary's size, the time
# from process start to the first 200 on /healthz, the peak RSS, the CPU time
# per poll, and that every export got exactly one report.
#
# Without DATASTORE_EMULATOR_HOST the test starts an emulator of its own
# (internal/emulatortest, from the gcloud on PATH) and stops it at the end;
# with it, that emulator is used. CAPACITY_EXPORTS, CAPACITY_SNAPSHOTS,
# CAPACITY_INTERVAL, CAPACITY_PARALLEL and CAPACITY_GCTRACE=1 change the
# run (internal/capacity/capacity_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test -tags capacity -count=1 -v -run TestCapacity -timeout 20m ./internal/capacity "$@"
