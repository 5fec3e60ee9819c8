# Sourced by scripts/local.sh and .ci/run: starts the Cloud Datastore emulator
# that ships with gcloud on a free loopback port, in a directory of its own
# (its exports are written there), and exports DATASTORE_EMULATOR_HOST.
# The caller stops it with stop_emulator (set as an EXIT trap here).

start_emulator() {
  command -v gcloud >/dev/null || { echo "gcloud not found: install the Google Cloud CLI" >&2; return 1; }
  EMULATOR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsexport-emulator.XXXXXX")
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export DATASTORE_EMULATOR_HOST="127.0.0.1:$port"
  # setsid gives gcloud and its Java child one process group to stop together.
  (cd "$EMULATOR_DIR" && exec setsid gcloud beta emulators datastore start --project=dsexport-local \
      --no-store-on-disk --use-firestore-in-datastore-mode --data-dir="$EMULATOR_DIR/data" \
      --host-port="$DATASTORE_EMULATOR_HOST" >"$EMULATOR_DIR/emulator.log" 2>&1) &
  EMULATOR_PID=$!
  trap stop_emulator EXIT
  for _ in $(seq 1 300); do
    if curl -fsS "http://$DATASTORE_EMULATOR_HOST/" >/dev/null 2>&1; then
      echo "Datastore emulator ready on $DATASTORE_EMULATOR_HOST (files in $EMULATOR_DIR)" >&2
      return 0
    fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "Datastore emulator did not start; its log:" >&2
  cat "$EMULATOR_DIR/emulator.log" >&2
  return 1
}

stop_emulator() {
  if [ -n "${EMULATOR_PID:-}" ]; then
    kill -TERM -- "-$EMULATOR_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$EMULATOR_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$EMULATOR_PID" 2>/dev/null || true
    EMULATOR_PID=
  fi
  if [ -n "${EMULATOR_DIR:-}" ] && [ -z "${KEEP_EMULATOR_DIR:-}" ]; then rm -rf "$EMULATOR_DIR"; fi
}
