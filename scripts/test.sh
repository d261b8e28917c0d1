#!/usr/bin/env bash
# Runs every test: installs DuckDB (from PyPI; it reads the log in the
# end-to-end tests), starts the Kafka-protocol broker the Kafka tests need
# (installing it the first time, see scripts/kafka-broker.sh), runs
# `cargo test --workspace` with any extra arguments, and stops the broker.
#
# With AUTHTRAIL_TEST_KAFKA already set, that broker is used instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import duckdb' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check duckdb
fi

if [[ -z "${AUTHTRAIL_TEST_KAFKA:-}" ]]; then
  AUTHTRAIL_TEST_KAFKA=$(scripts/kafka-broker.sh start | tail -n1)
  export AUTHTRAIL_TEST_KAFKA
  trap 'scripts/kafka-broker.sh stop' EXIT
fi
echo "kafka broker for the tests: $AUTHTRAIL_TEST_KAFKA" >&2

cargo test --workspace "$@"
