#!/usr/bin/env bash
# Runs each Go fuzz target for ${FUZZTIME:-10s}, one after another (go test
# takes one -fuzz target per run), and stops at the first failure. A failing
# input is written to <package>/testdata/fuzz/<Target>/ and replays as a
# regression test in every `go test` from then on. FUZZ_TARGETS narrows the
# run, e.g. FUZZ_TARGETS="FuzzParseName FuzzValidatePrefix".
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
# The domain's targets (names, prefixes) and the Admin API adapter's
# (operation JSON, names as request URLs). Tests that need an emulator start
# one only when asked; fuzz targets never do.
pkgs=(./poller ./admin)
count=0
for pkg in "${pkgs[@]}"; do
  all=$(go test "$pkg" -list '^Fuzz' | grep '^Fuzz' || true)
  if [ -z "$all" ]; then
    echo "fuzz: no fuzz targets found in $pkg" >&2
    exit 1
  fi
  for target in $all; do
    if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $target "* ]]; then
      continue
    fi
    echo "== fuzz $pkg $target for $fuzztime"
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime"; then
      echo "fuzz: $target failed; the failing input is in ${pkg#./}/testdata/fuzz/$target/" >&2
      exit 1
    fi
    count=$((count + 1))
  done
done
echo "fuzz: all targets passed ($count targets, $fuzztime each)"
