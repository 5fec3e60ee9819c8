#!/usr/bin/env bash
# Runs each Go fuzz target for ${FUZZTIME:-10s}, one after another (go test
# takes one -fuzz target per run), and stops at the first failure. A failing
# input is written to <package>/testdata/fuzz/<Target>/ and replays as a
# regression test in every `go test` from then on. FUZZ_TARGETS narrows the
# run, e.g. FUZZ_TARGETS="FuzzParseName FuzzValidatePrefix".
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
pkg=./poller
# The package's TestMain starts a Datastore emulator only for tests that ask
# for one; fuzz targets never do.
targets=${FUZZ_TARGETS:-$(go test "$pkg" -list '^Fuzz' | grep '^Fuzz' || true)}
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets found in $pkg" >&2
  exit 1
fi

for target in $targets; do
  echo "== fuzz $pkg $target for $fuzztime"
  if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"; then
    echo "fuzz: $target failed; the failing input is in ${pkg#./}/testdata/fuzz/$target/" >&2
    exit 1
  fi
done
echo "fuzz: all targets passed ($(echo $targets | wc -w) targets, $fuzztime each)"
