#!/usr/bin/env bash
# Records where smsfold's heap goes at its peak during one saturation run of
# the comparison, with heaptrack, and prints the largest consumers.
#
# Usage: scripts/heap-profile.sh [MESSAGES]
#
# heaptrack traces malloc, and smsfold's Rust side allocates with mimalloc,
# which malloc does not see. So this builds smsfold with the feature
# `system-allocator` (glibc's malloc everywhere) into target/heap-profile,
# and has `scripts/compare.sh` start it through a wrapper that preloads
# heaptrack (SMSFOLD_COMPARE_SMSFOLD). The wrapper execs smsfold, so the
# benchmark measures smsfold's process, which then also contains heaptrack's
# own memory and runs slower for the tracing. MESSAGES (default 1000000) is the size of the input. The
# recording is left at target/heap-profile/smsfold.PID.zst for
# heaptrack_print or heaptrack_gui; the script prints the peak's largest
# sites, summed by scripts/heap-peak-summary.py.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$(pwd)
messages=${1:-1000000}

for tool in heaptrack heaptrack_print zstd; do
    if ! command -v "$tool" >/dev/null; then
        echo "heap-profile: $tool is missing; install the Debian packages heaptrack and zstd" >&2
        exit 1
    fi
done
# The heaptrack command finds its preload library and interpreter relative
# to itself; the wrapper below runs them without it.
libexec=$(dirname "$(readlink -f "$(command -v heaptrack)")")/../lib/heaptrack
preload=$libexec/libheaptrack_preload.so
interpreter=$libexec/libexec/heaptrack_interpret
if [[ ! -f $preload || ! -x $interpreter ]]; then
    echo "heap-profile: $preload or $interpreter is missing; this script expects heaptrack's Debian layout" >&2
    exit 1
fi

out=$repo/target/heap-profile
cargo build --release -p smsfold --features system-allocator --target-dir "$out"
rm -f "$out"/smsfold.*.zst "$out"/smsfold.*.done

wrapper=$out/smsfold-under-heaptrack
# The paths go into the wrapper quoted by printf, so that any character in
# them survives. The wrapper's pipeline writes a .done file once the
# recording is complete, after smsfold has exited.
{
    echo '#!/usr/bin/env bash'
    echo '# Written by scripts/heap-profile.sh: starts smsfold with heaptrack preloaded.'
    echo 'set -euo pipefail'
    printf 'out=%q interpreter=%q preload=%q\n' "$out" "$interpreter" "$preload"
    cat <<'WRAPPER'
fifo=$(mktemp -u "$out/heaptrack.$$.XXXXXX.fifo")
mkfifo "$fifo"
("$interpreter" <"$fifo" | zstd -q -c >"$out/smsfold.$$.zst"; touch "$out/smsfold.$$.done") &
LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}" DUMP_HEAPTRACK_OUTPUT="$fifo" exec "$out/release/smsfold" "$@"
WRAPPER
} >"$wrapper"
chmod +x "$wrapper"

SMSFOLD_COMPARE_SMSFOLD=$wrapper SMSFOLD_COMPARE_PHASES=saturation SMSFOLD_COMPARE_SYSTEMS=smsfold \
    SMSFOLD_COMPARE_RUNS=1 SMSFOLD_COMPARE_MESSAGES=$messages scripts/compare.sh

# The interpreter finishes once smsfold has exited and closed the fifo.
for _ in $(seq 120); do
    compgen -G "$out/smsfold.*.done" >/dev/null && break
    sleep 1
done
rm -f "$out"/heaptrack.*.fifo
if ! done_file=$(compgen -G "$out/smsfold.*.done" | head -n 1) || [[ -z $done_file ]]; then
    echo "heap-profile: heaptrack's interpreter did not finish within 120 s of the run" >&2
    exit 1
fi
recording=${done_file%.done}.zst
echo "heap-profile: recording in $recording" >&2
heaptrack_print --file "$recording" --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    | grep -E '^(total runtime|peak heap memory|peak RSS)'
heaptrack_print --file "$recording" --shorten-templates 0 --flamegraph-cost-type peak --print-flamegraph "$out/peak-stacks.txt" >/dev/null
scripts/heap-peak-summary.py "$out/peak-stacks.txt" 15
