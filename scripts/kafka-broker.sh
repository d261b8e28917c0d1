#!/usr/bin/env bash
# A real Kafka-protocol broker on 127.0.0.1 for authtrail's tests, CI and
# benchmarks: tansu (an Apache-Kafka-compatible broker from crates.io) on
# SQLite storage.
#
#   scripts/kafka-broker.sh start   # installs it if needed, starts it on a
#                                   # free port, prints host:port last
#   scripts/kafka-broker.sh stop    # stops it and removes its data
#   scripts/kafka-broker.sh status  # prints host:port if it is running
#
# Use the address as AUTHTRAIL_TEST_KAFKA for the tests, e.g.
#   export AUTHTRAIL_TEST_KAFKA=$(scripts/kafka-broker.sh start | tail -n1)
#
# The first start on a machine builds tansu (about 15 minutes on 2 cores)
# into $AUTHTRAIL_CACHE (default ~/.cache), where later starts find it.
# Topics are not created on produce: create them with
#   tansu topic create --broker tcp://HOST:PORT --partitions N NAME
# (the tests and `authtrail bench kafka` do this through an admin client).
set -euo pipefail

TANSU_VERSION=0.6.0
cache="${AUTHTRAIL_CACHE:-$HOME/.cache}"
install_root="$cache/tansu-$TANSU_VERSION"
tansu="$install_root/bin/tansu"
state="${AUTHTRAIL_KAFKA_DIR:-${TMPDIR:-/tmp}/authtrail-kafka}"

log() { echo "kafka-broker: $*" >&2; }

install() {
  if [[ -x "$tansu" ]]; then
    return
  fi
  log "installing tansu $TANSU_VERSION into $install_root (first time only, ~15 min)"
  # Default features store nothing; libsql brings the sqlite:// engine.
  # (The memory:// engine loses its place when a consumer resumes in the
  # middle of a stored batch, so it is not used.)
  CARGO_TARGET_DIR="$cache/tansu-target" cargo install tansu \
    --version "$TANSU_VERSION" --locked --features libsql \
    --root "$install_root" >&2
}

running_address() {
  [[ -f "$state/pid" && -f "$state/address" ]] || return 1
  kill -0 "$(cat "$state/pid")" 2>/dev/null || return 1
  cat "$state/address"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  if address=$(running_address); then
    log "already running (pid $(cat "$state/pid"))"
    echo "$address"
    return
  fi
  install
  rm -rf "$state"
  mkdir -p "$state"
  local port address
  port=$(free_port)
  address="127.0.0.1:$port"
  # tansu reads a .env from its working directory: start it in an empty one.
  # The sqlite:// path is relative to that directory.
  (
    cd "$state"
    exec "$tansu" broker \
      --storage-engine "sqlite://tansu.db" \
      --listener-url "tcp://$address" \
      --advertised-listener-url "tcp://$address" \
      >"$state/broker.log" 2>&1
  ) &
  echo $! >"$state/pid"
  echo "$address" >"$state/address"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      log "tansu $TANSU_VERSION listening on $address (pid $(cat "$state/pid"), log $state/broker.log)"
      echo "$address"
      return
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
      log "tansu exited at start; its log says:"
      tail -n 20 "$state/broker.log" >&2 || true
      exit 1
    fi
    sleep 0.1
  done
  log "tansu did not listen on $address within 10 s; see $state/broker.log"
  exit 1
}

stop() {
  if [[ -f "$state/pid" ]]; then
    local pid
    pid=$(cat "$state/pid")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -9 "$pid" 2>/dev/null || true
    fi
    log "stopped"
  fi
  rm -rf "$state"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if running_address; then exit 0; fi
    log "not running; start it with: $0 start"
    exit 1
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
