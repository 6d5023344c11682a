#!/usr/bin/env bash
# Runs every test of the workspace against a local Kafka broker.
#
# Starts the broker with scripts/kafka-broker.sh (a no-op when it is already
# up) and points the integration tests at it through SMSFOLD_TEST_BOOTSTRAP.
# Then it runs the doc tests, which --all-targets leaves out, and `cargo test`
# on all targets. The doc tests go first so that the run ends on the summary
# of the real test binaries. Extra arguments go to both cargo runs, for
# example `scripts/test.sh pipeline` or `scripts/test.sh -- --nocapture`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/kafka-broker.sh start
export SMSFOLD_TEST_BOOTSTRAP=127.0.0.1:${SMSFOLD_KAFKA_PORT:-19092}

# Deployment files and the event contract, checked without Docker or Kubernetes.
scripts/check-deploy.sh
scripts/check-contract.sh

cargo test --workspace --doc "$@"
cargo test --workspace --all-targets "$@"
