#!/usr/bin/env bash
# Runs a single-node Apache Kafka broker (KRaft, broker and controller in one
# JVM) on 127.0.0.1 for the integration tests.
#
# Usage: scripts/kafka-broker.sh [start|stop|restart|status|pid|reset|topics ARGS...|configs ARGS...]
#   start    fetch the jars once, format storage once, start the broker and
#            wait until it responds (returns at once if it is already up)
#   stop     stop the broker (SIGTERM, then SIGKILL after a grace period)
#   restart  stop, then start with the same data
#   status   exit 0 if the broker is running and responding, 1 otherwise
#   pid      print the running broker's process id, or nothing
#   reset    stop the broker and delete its data (the jars stay)
#   topics   run kafka-topics (org.apache.kafka.tools.TopicCommand) against
#            the broker, e.g. `topics --create --topic t --partitions 4`
#   configs  run kafka-configs (org.apache.kafka.tools.ConfigCommand) against
#            the broker, e.g. `configs --entity-type brokers --entity-default
#            --describe`; a setting changed this way lasts until `reset`
#
# Environment:
#   SMSFOLD_KAFKA_HOME             jars and state (default: REPO/.kafka)
#   SMSFOLD_KAFKA_PORT             client listener port (default: 19092)
#   SMSFOLD_KAFKA_CONTROLLER_PORT  KRaft controller port (default: 19093)
#   SMSFOLD_KAFKA_START_TIMEOUT    seconds to wait for the broker (default: 90)
#
# Needs Java 17 or newer and Maven. The broker listens on 127.0.0.1 only.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$script_dir/.." && pwd)

kafka_home=${SMSFOLD_KAFKA_HOME:-$repo_dir/.kafka}
port=${SMSFOLD_KAFKA_PORT:-19092}
controller_port=${SMSFOLD_KAFKA_CONTROLLER_PORT:-19093}
start_timeout=${SMSFOLD_KAFKA_START_TIMEOUT:-90}

host=127.0.0.1
bootstrap=$host:$port
pom=$script_dir/kafka/pom.xml
log4j_config=$script_dir/kafka/log4j2.yaml

lib_dir=$kafka_home/lib
data_dir=$kafka_home/data
log_dir=$data_dir/logs
kraft_dir=$data_dir/kraft
server_config=$data_dir/server.properties
admin_config=$data_dir/admin.properties
ports_file=$data_dir/ports
pid_file=$data_dir/broker.pid
stdout_file=$log_dir/broker.out

stop_grace_seconds=30

log() {
    echo "kafka-broker: $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

check_settings() {
    local name value
    for name in port controller_port start_timeout; do
        value=${!name}
        if ! [[ $value =~ ^[0-9]+$ ]] || ((value == 0)); then
            die "invalid $name '$value': expected a positive integer"
        fi
    done
    if ((port > 65535 || controller_port > 65535)); then
        die "invalid port $port or controller port $controller_port: the maximum is 65535"
    fi
    if ((port == controller_port)); then
        die "SMSFOLD_KAFKA_PORT and SMSFOLD_KAFKA_CONTROLLER_PORT are both $port; they must differ"
    fi
}

check_java() {
    command -v java >/dev/null || die "java not found; install a JDK or JRE 17+ (Debian: apt-get install default-jre-headless)"

    local version major
    version=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    major=${version%%.*}
    if ! [[ $major =~ ^[0-9]+$ ]] || ((major < 17)); then
        die "Kafka 4 needs Java 17 or newer, but 'java' is version '${version:-unknown}'"
    fi
}

# Takes an exclusive lock on the state dir so that two concurrent runs (two
# test commands, say) do not both fetch, format or start. The lock is released
# when the script exits, so `restart` holds it from stop through start.
state_locked=false
lock_state() {
    $state_locked && return 0
    mkdir -p "$kafka_home"
    exec 9>"$kafka_home/lock"
    if ! flock -w 300 9; then
        die "timed out after 300 s waiting for the lock $kafka_home/lock held by another kafka-broker.sh"
    fi
    state_locked=true
}

# Copies the Kafka jars into $lib_dir with Maven. They are fetched again only
# when scripts/kafka/pom.xml changes, which the stored checksum detects.
fetch_jars() {
    local pom_sum
    pom_sum=$(sha256sum "$pom" | cut -d' ' -f1)
    if [[ -f $lib_dir/.pom.sha256 && $(<"$lib_dir/.pom.sha256") == "$pom_sum" ]]; then
        return 0
    fi

    command -v mvn >/dev/null || die "mvn not found; install Maven (Debian: apt-get install maven)"

    local staging=$kafka_home/lib.partial
    local fetch_log=$kafka_home/fetch.log
    rm -rf "$staging"
    log "fetching Kafka jars with Maven into $lib_dir"
    local started=$SECONDS
    if ! mvn -q -B -f "$pom" dependency:copy-dependencies "-DoutputDirectory=$staging" >"$fetch_log" 2>&1; then
        tail -n 40 "$fetch_log" >&2
        die "Maven failed to fetch the Kafka jars (full output in $fetch_log)"
    fi
    echo "$pom_sum" >"$staging/.pom.sha256"
    rm -rf "$lib_dir"
    mv "$staging" "$lib_dir"
    log "fetched $(find "$lib_dir" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
}

kafka_version() {
    local jar
    jar=$(find "$lib_dir" -maxdepth 1 -name 'kafka_2.13-*.jar' | head -n 1)
    [[ -n $jar ]] || die "no kafka_2.13 jar in $lib_dir; run 'reset' or delete $lib_dir to fetch again"
    jar=${jar##*/kafka_2.13-}
    echo "${jar%.jar}"
}

# Runs a Kafka command-line class with the log4j2 config writing to stderr.
run_tool() {
    local main_class=$1
    shift
    java -Xmx256m -XX:TieredStopAtLevel=1 \
        "-Dlog4j2.configurationFile=$log4j_config" \
        -Dkafka.log.appender=Console \
        -cp "$lib_dir/*" "$main_class" "$@"
}

write_configs() {
    mkdir -p "$data_dir" "$log_dir"
    cat >"$server_config" <<EOF
# Generated by scripts/kafka-broker.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=$host:$controller_port
log.dirs=$kraft_dir

# One node, so every internal topic has one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# 8 partitions instead of the default 50, so the first consumer group and the
# first transactional producer wait for fewer partitions to be created.
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8

num.partitions=4
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# Consumer-protocol groups (KIP-848): a killed static member leaves after
# this session timeout, and a restart with its instance id waits for it.
# The tests kill and restart workers, so keep it short. Heartbeats come
# often enough that one late heartbeat does not expire a live member.
group.consumer.min.session.timeout.ms=3000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=1500
# group.coordinator.rebalance.protocols is left at its default, which in
# Kafka 4.4 is classic,consumer,streams, so the consumer group protocol
# (KIP-848) is on. Kafka 4.4 deprecates that setting.
EOF

    # Admin client settings for the readiness probe, so that a broker that is
    # not ready yet fails the probe within seconds instead of the 60 s default.
    cat >"$admin_config" <<EOF
request.timeout.ms=2000
default.api.timeout.ms=3000
EOF
}

# Formats the KRaft storage once, with a fresh cluster id and this node as the
# only controller. The ports are recorded because the controller endpoint is
# written into the formatted metadata.
format_storage() {
    local wanted_ports="$port $controller_port"
    if [[ -f $kraft_dir/meta.properties ]]; then
        local formatted_ports
        formatted_ports=$(<"$ports_file")
        if [[ $formatted_ports != "$wanted_ports" ]]; then
            die "storage in $data_dir was formatted for ports '$formatted_ports' (client, controller), not '$wanted_ports'; run '$0 reset' to start over"
        fi
        return 0
    fi

    local cluster_id
    cluster_id=$(run_tool kafka.tools.StorageTool random-uuid)
    log "formatting KRaft storage in $kraft_dir (cluster id $cluster_id)"
    if ! run_tool kafka.tools.StorageTool format --standalone \
        --config "$server_config" --cluster-id "$cluster_id" >"$log_dir/format.out" 2>&1; then
        cat "$log_dir/format.out" >&2
        die "formatting the KRaft storage failed"
    fi
    echo "$wanted_ports" >"$ports_file"
}

# Prints the pid of the running broker, or nothing. A pid from the pid file
# counts only if that process is still a Kafka JVM using this state dir, so a
# reused pid is never signalled.
broker_pid() {
    [[ -f $pid_file ]] || return 0
    local pid
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    if [[ $cmdline == *kafka.Kafka*"$server_config"* ]]; then
        echo "$pid"
    fi
}

port_open() {
    (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null
}

# Returns 0 when the broker serves a metadata request: kafka-topics --list
# needs a working listener and a controller quorum.
broker_responds() {
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
        --command-config "$admin_config" --list >/dev/null 2>&1
}

print_log_tail() {
    local file
    for file in "$log_dir/server.log" "$stdout_file"; do
        if [[ -s $file ]]; then
            log "last lines of $file:"
            tail -n 30 "$file" >&2
        fi
    done
}

# Polls until the broker with the given pid responds, for at most
# $start_timeout seconds. Exits with an error if the JVM dies or time runs out.
wait_until_ready() {
    local pid=$1
    local deadline=$((SECONDS + start_timeout))
    while true; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pid_file"
            print_log_tail
            die "the broker JVM (pid $pid) exited during startup"
        fi
        if port_open "$port" && broker_responds; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            print_log_tail
            die "timed out after $start_timeout s waiting for the broker (pid $pid) to respond on $bootstrap; it is left running, so run '$0 stop' to end it or '$0 start' to wait again"
        fi
        sleep 1
    done
}

start_broker() {
    check_java
    lock_state

    local pid
    pid=$(broker_pid)
    if [[ -n $pid ]] && port_open "$port" && broker_responds; then
        echo "kafka $(kafka_version) already running on $bootstrap (pid $pid)"
        return 0
    fi
    if [[ -n $pid ]]; then
        # An earlier start timed out or this one came in during startup.
        log "broker pid $pid is running but does not respond yet, waiting for it"
        wait_until_ready "$pid"
        echo "kafka $(kafka_version) ready on $bootstrap (pid $pid, state in $kafka_home)"
        return 0
    fi

    local busy
    for busy in "$port" "$controller_port"; do
        if port_open "$busy"; then
            die "port $host:$busy is already in use by another process; stop it or set SMSFOLD_KAFKA_PORT / SMSFOLD_KAFKA_CONTROLLER_PORT"
        fi
    done

    fetch_jars
    write_configs
    format_storage

    local started=$SECONDS
    rm -f "$pid_file"
    # The JVM must not inherit the lock descriptor 9, or it would hold the
    # lock for its whole life. -Xmx1g bounds the heap on shared test machines.
    nohup java -Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$log4j_config" \
        "-Dkafka.logs.dir=$log_dir" -Dkafka.log.appender=BrokerFile \
        -cp "$lib_dir/*" kafka.Kafka "$server_config" \
        </dev/null >"$stdout_file" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$pid_file"

    wait_until_ready "$pid"
    echo "kafka $(kafka_version) ready on $bootstrap (pid $pid, started in $((SECONDS - started)) s, state in $kafka_home)"
}

stop_broker() {
    lock_state

    local pid
    pid=$(broker_pid)
    if [[ -z $pid ]]; then
        rm -f "$pid_file"
        log "broker is not running"
        return 0
    fi

    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < stop_grace_seconds * 10)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "broker pid $pid still running after $stop_grace_seconds s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
        done
    fi
    rm -f "$pid_file"
    log "stopped broker pid $pid"
}

status_broker() {
    local pid
    pid=$(broker_pid)
    if [[ -z $pid ]]; then
        echo "kafka broker not running (state in $kafka_home)"
        return 1
    fi
    if port_open "$port" && broker_responds; then
        echo "kafka $(kafka_version) running on $bootstrap (pid $pid)"
        return 0
    fi
    echo "kafka broker pid $pid is running but does not respond on $bootstrap"
    return 1
}

reset_broker() {
    stop_broker
    rm -rf "$data_dir"
    log "deleted $data_dir"
}

# Runs one of Kafka's admin tools against the broker, fetching the jars
# first if needed.
admin_tool() {
    check_java
    if [[ ! -f $lib_dir/.pom.sha256 ]]; then
        lock_state
        fetch_jars
    fi
    run_tool "$1" --bootstrap-server "$bootstrap" "${@:2}"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

main() {
    check_settings
    local command=${1:-start}
    [[ $# -gt 0 ]] && shift

    case $command in
    start) start_broker ;;
    stop) stop_broker ;;
    restart)
        stop_broker
        start_broker
        ;;
    status) status_broker ;;
    pid) broker_pid ;;
    reset) reset_broker ;;
    topics) admin_tool org.apache.kafka.tools.TopicCommand "$@" ;;
    configs) admin_tool org.apache.kafka.tools.ConfigCommand "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        die "unknown command '$command'"
        ;;
    esac
}

main "$@"
