#!/usr/bin/env bash
# Samples the resident memory of a running process by mapping, and prints
# the sample taken when the process's RSS was highest.
#
# Usage: scripts/rss-mappings.sh PATTERN [INTERVAL_SECONDS]
#
# Waits for a process whose command line matches PATTERN (as `pgrep -f`
# matches it), then every INTERVAL_SECONDS (default 3) reads its VmRSS and
# every mapping with more than 4 MiB resident from /proc/PID/smaps, until
# the process exits. Anonymous mappings have no name. In the smsfold runs
# measured here, the one at 0x20000000000 was mimalloc's heap (the Rust
# side) and the others were mostly glibc's malloc arenas (librdkafka). For example, in one
# shell:
#
#   scripts/rss-mappings.sh "target/release/smsfold run"
#
# and in another:
#
#   SMSFOLD_COMPARE_PHASES=saturation SMSFOLD_COMPARE_SYSTEMS=smsfold \
#   SMSFOLD_COMPARE_RUNS=1 scripts/compare.sh
set -euo pipefail

pattern=${1:?usage: scripts/rss-mappings.sh PATTERN [INTERVAL_SECONDS]}
interval=${2:-3}

# Prints the pid of the first process that matches the pattern, skipping
# this script, because its own command line contains the pattern too.
find_process() {
    local candidate command_line
    for candidate in $(pgrep -f -- "$pattern" || true); do
        # A process that has already exited, such as pgrep's own
        # subshell, has no command line left to read.
        command_line=$(tr '\0' ' ' 2>/dev/null <"/proc/$candidate/cmdline" || true)
        if [[ -n $command_line && $command_line != *rss-mappings* ]]; then
            echo "$candidate"
            return
        fi
    done
}

pid=
while [[ -z $pid ]]; do
    pid=$(find_process)
    [[ -n $pid ]] || sleep 0.5
done
echo "rss-mappings: sampling pid $pid every $interval s" >&2

best_rss=0
best_sample=
while [[ -r /proc/$pid/smaps ]]; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    sample=$(awk '
        /^[0-9a-f]+-[0-9a-f]+ / { range = $1; name = ($6 == "" ? "[anonymous]" : $6) }
        /^Rss:/ && $2 > 4096 { printf "  %-34s %8.1f MiB  %s\n", range, $2 / 1024, name }
    ' "/proc/$pid/smaps" 2>/dev/null | sort -k2 -n -r || true)
    if [[ -n $rss && $rss -gt $best_rss ]]; then
        best_rss=$rss
        best_sample="$(date -u +%H:%M:%S) VmRSS $((rss / 1024)) MiB"$'\n'"$sample"
    fi
    sleep "$interval"
done

if [[ -z $best_sample ]]; then
    echo "rss-mappings: pid $pid exited before the first sample" >&2
    exit 1
fi
echo "$best_sample"
