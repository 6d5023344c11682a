#!/usr/bin/env bash
# Runs every test: starts the local Kafka broker (a no-op when it is already
# up), then runs the workspace's unit, property and integration tests. The
# integration tests find the broker through SMSFOLD_TEST_BOOTSTRAP.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh -- --nocapture`.
set -euo pipefail

repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_dir"

scripts/kafka-broker.sh start
export SMSFOLD_TEST_BOOTSTRAP=127.0.0.1:${SMSFOLD_KAFKA_PORT:-19092}
cargo test --workspace "$@"
