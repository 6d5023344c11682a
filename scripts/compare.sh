#!/usr/bin/env bash
# Runs smsfold beside the transactional pipe (the throughput ceiling) and the
# Kafka Streams version of the folds, on one local broker, and prints their
# throughput, latency, CPU time and memory side by side.
#
# Starts the broker with scripts/kafka-broker.sh (a no-op when it is already
# up), builds the Kafka Streams jar with Maven when a source is newer than
# it, and runs `cargo bench --bench compare`, which builds smsfold and the
# pipe. The SMSFOLD_COMPARE_* variables listed at the top of
# benches/compare/main.rs select phases, systems and sizes; the defaults
# take about an hour on 2 cores. Output also goes to
# target/compare-<time>.log.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/kafka-broker.sh start
export SMSFOLD_TEST_BOOTSTRAP=127.0.0.1:${SMSFOLD_KAFKA_PORT:-19092}
# The saturation runs also report the broker's CPU time per event.
SMSFOLD_COMPARE_BROKER_PID=$(scripts/kafka-broker.sh pid)
export SMSFOLD_COMPARE_BROKER_PID

jar=bench/kafka-streams/target/smsfold-kafka-streams.jar
newer=$(find bench/kafka-streams/pom.xml bench/kafka-streams/src proto -newer "$jar" -type f 2>/dev/null | head -n 1 || true)
if [[ ! -f $jar || -n $newer ]]; then
    echo "compare: building $jar with Maven" >&2
    mvn -q -B -f bench/kafka-streams/pom.xml package
fi

mkdir -p target
log=target/compare-$(date -u +%Y%m%dT%H%M%SZ).log
echo "compare: writing the output to $log as well" >&2
cargo bench --bench compare "$@" 2>&1 | tee "$log"
