#!/usr/bin/env bash
# Profiles one system of the comparison while it consumes input at
# saturation, and prints where its CPU time goes.
#
# Usage: scripts/profile-compare.sh pipe|smsfold|kafka-streams [MESSAGES]
#
# Runs the saturation phase of benches/compare for that system alone, one
# run over MESSAGES messages (default 400000), through scripts/compare.sh.
# SECONDS_BEFORE seconds (default 15) after the system's process starts, it
# samples the process with `perf record -F 499 -g` for PROFILE_SECONDS
# seconds (default 15) and prints the samples by thread and library and the
# top functions. For kafka-streams it also records a Java Flight Recording
# over the same period and prints, per Kafka Streams and application method,
# the share of Java samples whose stack contains it. perf needs
# perf_event_paranoid <= 2 for a process of the same user; software
# sampling (cpu-clock) is used where the CPU has no counters.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)

system=${1:?usage: scripts/profile-compare.sh pipe|smsfold|kafka-streams [MESSAGES]}
messages=${2:-400000}
before=${SECONDS_BEFORE:-15}
seconds=${PROFILE_SECONDS:-15}
case $system in
    pipe) pattern="^$repo/target/release/smsfold-pipe " ;;
    smsfold) pattern="^$repo/target/release/smsfold run " ;;
    kafka-streams) pattern="-jar $repo/bench/kafka-streams/target/smsfold-kafka-streams.jar" ;;
    *) echo "profile-compare: unknown system $system; use pipe, smsfold or kafka-streams" >&2; exit 2 ;;
esac
command -v perf >/dev/null || { echo "profile-compare: perf is missing; install linux-perf" >&2; exit 1; }

out=$(mktemp -d /tmp/profile-compare.XXXXXX)
echo "profile-compare: output in $out" >&2
SMSFOLD_COMPARE_PHASES=saturation SMSFOLD_COMPARE_SYSTEMS=$system SMSFOLD_COMPARE_RUNS=1 \
    SMSFOLD_COMPARE_MESSAGES=$messages scripts/compare.sh >"$out/compare.log" 2>&1 &
bench=$!

pid=
for _ in $(seq 1 600); do
    pid=$(pgrep -n -f -- "$pattern" || true)
    [[ -n $pid ]] && break
    if ! kill -0 "$bench" 2>/dev/null; then
        echo "profile-compare: the benchmark stopped before $system started; see $out/compare.log" >&2
        exit 1
    fi
    sleep 1
done
[[ -n $pid ]] || { echo "profile-compare: $system did not start within 600 s" >&2; exit 1; }
echo "profile-compare: $system is process $pid; sampling from ${before} s after its start for ${seconds} s" >&2
sleep "$before"

if [[ $system == kafka-streams ]]; then
    jcmd "$pid" JFR.start duration="${seconds}s" filename="$out/streams.jfr" settings=profile >/dev/null
fi
perf record -F 499 -g -p "$pid" -o "$out/perf.data" -- sleep "$seconds" 2>"$out/perf-record.log"
wait "$bench" || { echo "profile-compare: the benchmark failed; see $out/compare.log" >&2; exit 1; }

# The reports below are cut with head, which makes the commands before it
# fail with SIGPIPE; that is no error here.
set +o pipefail
grep -E "^$system " "$out/compare.log" || true
grep -o '([0-9]* samples)' "$out/perf-record.log" | sed "s/^/perf: /; s/)\$/ at 499 Hz over ${seconds} s)/" || true
echo
echo "== perf: samples by thread name and library =="
perf report -i "$out/perf.data" --no-children --sort comm,dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -20
echo
echo "== perf: top functions =="
perf report -i "$out/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -30
if [[ $system == kafka-streams ]]; then
    echo
    echo "== Java Flight Recorder: share of Java samples whose stack contains each method =="
    jfr print --stack-depth 64 --events jdk.ExecutionSample "$out/streams.jfr" >"$out/samples.txt"
    python3 scripts/jfr-summary.py "$out/samples.txt"
fi
