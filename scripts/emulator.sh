# Sourced by scripts/local.sh and .ci/run: starts the store emulators that ship
# with gcloud, each on a free loopback port in a directory of its own.
#   start_emulator            the Cloud Datastore emulator (optimistic locking;
#                             its exports are written in its directory);
#                             exports DATASTORE_EMULATOR_HOST and
#                             DATASTORE_EMULATOR_DIR (that directory, which
#                             the content package's tests read exports from).
#   start_firestore_emulator  the Firestore emulator in Datastore mode
#                             (pessimistic locking); exports
#                             FIRESTORE_DATASTORE_EMULATOR_HOST.
# Either sets stop_emulators, which stops both, as the EXIT trap; a caller with
# a trap of its own calls stop_emulator, stop_firestore_emulator or
# stop_emulators from it.

# free_port prints a free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_emulator NAME HOST PID LOG waits until the emulator answers GET / on HOST.
wait_emulator() {
  local name=$1 host=$2 pid=$3 log=$4
  for _ in $(seq 1 300); do
    if curl -fsS "http://$host/" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "$name did not start; its log:" >&2
  cat "$log" >&2
  return 1
}

# stop_group PID stops the process group of PID, politely first.
stop_group() {
  local pid=$1
  kill -TERM -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
}

start_emulator() {
  command -v gcloud >/dev/null || { echo "gcloud not found: install the Google Cloud CLI" >&2; return 1; }
  EMULATOR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsexport-emulator.XXXXXX")
  export DATASTORE_EMULATOR_HOST="127.0.0.1:$(free_port)"
  export DATASTORE_EMULATOR_DIR="$EMULATOR_DIR"
  # setsid gives gcloud and its Java child one process group to stop together.
  (cd "$EMULATOR_DIR" && exec setsid gcloud beta emulators datastore start --project=dsexport-local \
      --no-store-on-disk --use-firestore-in-datastore-mode --data-dir="$EMULATOR_DIR/data" \
      --host-port="$DATASTORE_EMULATOR_HOST" >"$EMULATOR_DIR/emulator.log" 2>&1) &
  EMULATOR_PID=$!
  trap stop_emulators EXIT
  wait_emulator "Datastore emulator" "$DATASTORE_EMULATOR_HOST" "$EMULATOR_PID" "$EMULATOR_DIR/emulator.log" || return 1
  echo "Datastore emulator ready on $DATASTORE_EMULATOR_HOST (files in $EMULATOR_DIR)" >&2
}

stop_emulator() {
  if [ -n "${EMULATOR_PID:-}" ]; then
    stop_group "$EMULATOR_PID"
    EMULATOR_PID=
  fi
  if [ -n "${EMULATOR_DIR:-}" ] && [ -z "${KEEP_EMULATOR_DIR:-}" ]; then rm -rf "$EMULATOR_DIR"; fi
}

# The Firestore emulator serves any project ID (no --project) and keeps its
# data in memory; its directory holds its log.
start_firestore_emulator() {
  command -v gcloud >/dev/null || { echo "gcloud not found: install the Google Cloud CLI" >&2; return 1; }
  FIRESTORE_EMULATOR_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dsexport-firestore-emulator.XXXXXX")
  export FIRESTORE_DATASTORE_EMULATOR_HOST="127.0.0.1:$(free_port)"
  (cd "$FIRESTORE_EMULATOR_DIR" && exec setsid gcloud emulators firestore start --database-mode=datastore-mode \
      --host-port="$FIRESTORE_DATASTORE_EMULATOR_HOST" >"$FIRESTORE_EMULATOR_DIR/emulator.log" 2>&1) &
  FIRESTORE_EMULATOR_PID=$!
  trap stop_emulators EXIT
  wait_emulator "Firestore emulator" "$FIRESTORE_DATASTORE_EMULATOR_HOST" "$FIRESTORE_EMULATOR_PID" \
    "$FIRESTORE_EMULATOR_DIR/emulator.log" || return 1
  echo "Firestore emulator in Datastore mode ready on $FIRESTORE_DATASTORE_EMULATOR_HOST" >&2
}

stop_firestore_emulator() {
  if [ -n "${FIRESTORE_EMULATOR_PID:-}" ]; then
    stop_group "$FIRESTORE_EMULATOR_PID"
    FIRESTORE_EMULATOR_PID=
  fi
  if [ -n "${FIRESTORE_EMULATOR_DIR:-}" ]; then rm -rf "$FIRESTORE_EMULATOR_DIR"; fi
}

stop_emulators() {
  stop_emulator
  stop_firestore_emulator
}
