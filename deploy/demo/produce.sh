#!/bin/sh
# Produces the demo's events (events.sh) into smsfold's input topics with
# Kafka's console producer. docker-compose.yml runs it once in the
# apache/kafka image; tests/observability.rs runs it against the test broker.
#
# Environment:
#   BOOTSTRAP_SERVERS       Kafka brokers (required)
#   MESSAGE_EVENTS_TOPIC    default: message-events
#   CAMPAIGN_EVENTS_TOPIC   default: campaign-events
#   KAFKA_CONSOLE_PRODUCER  the console producer command
#                           (default: /opt/kafka/bin/kafka-console-producer.sh)
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
bootstrap=${BOOTSTRAP_SERVERS:?set BOOTSTRAP_SERVERS to the Kafka brokers, e.g. kafka:9092}
producer=${KAFKA_CONSOLE_PRODUCER:-/opt/kafka/bin/kafka-console-producer.sh}
records=$(mktemp)
trap 'rm -f "$records"' EXIT

# Campaign events go first so that the campaigns exist in the demo's output
# early; smsfold gives the same result in any order.
for pair in "campaign-events:${CAMPAIGN_EVENTS_TOPIC:-campaign-events}" \
            "message-events:${MESSAGE_EVENTS_TOPIC:-message-events}"; do
    kind=${pair%%:*}
    topic=${pair#*:}
    sh "$dir/events.sh" "$kind" > "$records"
    echo "produce.sh: producing $(wc -l < "$records") records to $topic" >&2
    "$producer" --bootstrap-server "$bootstrap" --topic "$topic" \
        --reader-property parse.key=true --reader-property parse.headers=true < "$records"
done
