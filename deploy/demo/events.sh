#!/bin/sh
# Prints the demo's events for one input topic, one record per line in the
# format of Kafka's console producer with parse.headers=true and
# parse.key=true: "content-type:application/json<TAB>KEY<TAB>VALUE".
#
# Usage: events.sh message-events|campaign-events [BASE_MS]
#
# The demo has two campaigns. demo-spring-sale sends 200 messages: most are
# delivered, some undelivered or failed, and some receipts arrive twice or
# before the message's sent event. demo-flash-sale is cancelled while 40 of
# its 50 messages are still queued. Beside them are one scheduled message
# outside any campaign and one inbound message. Two more records are
# dead-lettered: one is not valid JSON (invalid_json), and the other's key
# differs from its message id (key_mismatch). Event times start at
# BASE_MS (milliseconds since the Unix epoch; default: 10 minutes ago) and
# rise by 10 ms per event.
#
# POSIX sh, so it runs in the apache/kafka image as well as here.
set -eu

topic=${1:?usage: events.sh message-events|campaign-events [BASE_MS]}
base=${2:-$(( ($(date +%s) - 600) * 1000 ))}
sequence=0

# Prints one record. $1 is the key, $2 the JSON value without its opening
# brace, which gets the event id and time put in front.
record() {
    sequence=$((sequence + 1))
    printf 'content-type:application/json\t%s\t{"event_id":"demo-%s-%d","occurred_at":%d,%s\n' \
        "$1" "$topic" "$sequence" "$((base + sequence * 10))" "$2"
}

message() {
    record "$1" "\"message_id\":\"$1\",\"kind\":\"$2\"$3}"
}

campaign() {
    record "$1" "\"campaign_id\":\"$1\",\"kind\":\"$2\"$3}"
}

campaign_events() {
    campaign demo-spring-sale created ',"account_id":"acct-demo","name":"Spring sale"'
    campaign demo-spring-sale scheduled ",\"send_at\":$((base + 1000))"
    campaign demo-spring-sale started_sending ',"recipients":200'
    campaign demo-spring-sale dispatch_finished ',"dispatched":200'
    campaign demo-flash-sale created ',"account_id":"acct-demo","name":"Flash sale"'
    campaign demo-flash-sale started_sending ',"recipients":50'
    campaign demo-flash-sale cancelled ''
}

# One message of demo-spring-sale; $1 is its number, 1 to 200.
spring_sale_message() {
    id=$(printf 'demo-spring-%03d' "$1")
    segments=$(($1 % 3 + 1))
    message "$id" accepted ",\"campaign_id\":\"demo-spring-sale\",\"account_id\":\"acct-demo\",\"from\":\"+15550100\",\"to\":\"+1555$(printf '%07d' "$1")\",\"channel\":\"sms\",\"segments\":$segments"
    message "$id" queued ''
    if [ $(($1 % 33)) -eq 0 ]; then
        message "$id" failed ',"error_code":4101'
        return
    fi
    if [ $(($1 % 14)) -eq 0 ]; then
        receipt=',"outcome":"undelivered","error_code":30008'
    else
        receipt=',"outcome":"delivered"'
    fi
    if [ $(($1 % 7)) -eq 0 ]; then
        # The receipt overtakes the sent event.
        message "$id" delivery_receipt "$receipt"
        message "$id" sent ",\"carrier_message_id\":\"carrier-$1\""
        return
    fi
    if [ $(($1 % 2)) -eq 0 ]; then
        message "$id" sending ''
    fi
    message "$id" sent ",\"carrier_message_id\":\"carrier-$1\""
    message "$id" delivery_receipt "$receipt"
    if [ $(($1 % 10)) -eq 0 ]; then
        # A repeated receipt changes nothing.
        message "$id" delivery_receipt "$receipt"
    fi
}

# One message of demo-flash-sale; $1 is its number, 1 to 50. The first 10
# are sent and delivered, so they end delivered whether or not the
# cancellation reaches them first.
flash_sale_message() {
    id=$(printf 'demo-flash-%03d' "$1")
    message "$id" accepted ',"campaign_id":"demo-flash-sale","account_id":"acct-demo","from":"+15550100","to":"+15550200","channel":"mms"'
    message "$id" queued ''
    if [ "$1" -le 10 ]; then
        message "$id" sent ''
        message "$id" delivery_receipt ',"outcome":"delivered"'
    fi
}

message_events() {
    n=1
    while [ "$n" -le 200 ]; do
        spring_sale_message "$n"
        n=$((n + 1))
    done
    n=1
    while [ "$n" -le 50 ]; do
        flash_sale_message "$n"
        n=$((n + 1))
    done

    message demo-single-001 accepted ",\"account_id\":\"acct-demo\",\"from\":\"+15550100\",\"to\":\"+15550300\",\"send_at\":$((base + 5000))"
    message demo-single-001 scheduled ",\"send_at\":$((base + 5000))"
    message demo-single-001 queued ''
    message demo-single-001 sent ''
    message demo-single-001 delivery_receipt ',"outcome":"delivered"'

    message demo-inbound-001 inbound_receiving ',"account_id":"acct-demo","from":"+15550400","to":"+15550100","channel":"sms","segments":1'
    message demo-inbound-001 inbound_received ',"account_id":"acct-demo","from":"+15550400","to":"+15550100","channel":"sms","segments":1'

    # Dead-lettered as invalid_json: the value is cut short.
    printf 'content-type:application/json\tdemo-poison-001\t{"event_id":"demo-poison-1","message_id":\n'
    # Dead-lettered as key_mismatch: the key is not the message id.
    printf 'content-type:application/json\tdemo-wrong-key\t{"event_id":"demo-poison-2","occurred_at":%d,"message_id":"demo-poison-002","kind":"queued"}\n' "$base"
}

case $topic in
    message-events) message_events ;;
    campaign-events) campaign_events ;;
    *)
        echo "events.sh: unknown topic $topic; expected message-events or campaign-events" >&2
        exit 2
        ;;
esac
