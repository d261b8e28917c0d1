#!/usr/bin/env bash
# Runs every test: installs DuckDB (from PyPI; it reads the log in the
# end-to-end tests) and nginx (the HTTP benchmark's baseline), starts the Kafka-protocol broker the Kafka tests need
# (installing it the first time, see scripts/kafka-broker.sh), runs
# `cargo test --workspace` with any extra arguments, and stops the broker.
#
# With AUTHTRAIL_TEST_KAFKA already set, that broker is used instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import duckdb' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check duckdb
fi

if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
  if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
    apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1 \
      || { apt-get update >/dev/null && apt-get install -y --no-install-recommends nginx-light >/dev/null; }
    # Debian starts the packaged site on port 80; the tests start their own.
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "nginx is needed (the HTTP benchmark's baseline): apt-get install nginx-light, or brew install nginx" >&2
    exit 1
  fi
fi

if [[ -z "${AUTHTRAIL_TEST_KAFKA:-}" ]]; then
  AUTHTRAIL_TEST_KAFKA=$(scripts/kafka-broker.sh start | tail -n1)
  export AUTHTRAIL_TEST_KAFKA
  trap 'scripts/kafka-broker.sh stop' EXIT
fi
echo "kafka broker for the tests: $AUTHTRAIL_TEST_KAFKA" >&2

cargo test --workspace "$@"
