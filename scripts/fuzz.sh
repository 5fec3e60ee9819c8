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

# fuzz_one fuzzes one target. Go 1.26's fuzz coordinator can fail a run with
# a bare "context deadline exceeded" at the end of a -fuzztime duration on a
# loaded machine, with no failing input (golang/go#75804, fixed in Go 1.27):
# a failure that wrote no new input and says only that is run once more.
fuzz_one() {
  local pkg=$1 target=$2 dir="${1#./}/testdata/fuzz/$2" before after out
  for attempt in 1 2; do
    before=$(ls "$dir" 2>/dev/null | wc -l)
    if out=$(go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" 2>&1); then
      printf '%s\n' "$out" | tail -2
      return 0
    fi
    printf '%s\n' "$out"
    after=$(ls "$dir" 2>/dev/null | wc -l)
    if [ "$after" != "$before" ] || ! grep -q '^    context deadline exceeded$' <<<"$out" || [ $attempt = 2 ]; then
      return 1
    fi
    echo "fuzz: $target: the fuzz coordinator's deadline race (golang/go#75804), no failing input; running it again" >&2
  done
}
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
    if ! fuzz_one "$pkg" "$target"; then
      echo "fuzz: $target failed; the failing input is in ${pkg#./}/testdata/fuzz/$target/" >&2
      exit 1
    fi
    count=$((count + 1))
  done
done
echo "fuzz: all targets passed ($count targets, $fuzztime each)"
