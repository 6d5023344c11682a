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
# benchmark's RSS and CPU figures are still smsfold's own, slowed by the
# tracing. MESSAGES (default 1000000) is the size of the input. The
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
preload=$(readlink -f "$libexec/libheaptrack_preload.so")
interpreter=$(readlink -f "$libexec/libexec/heaptrack_interpret")

out=$repo/target/heap-profile
cargo build --release -p smsfold --features system-allocator --target-dir "$out"
rm -f "$out"/smsfold.*.zst

wrapper=$out/smsfold-under-heaptrack
cat >"$wrapper" <<EOF
#!/usr/bin/env bash
# Written by scripts/heap-profile.sh: starts smsfold with heaptrack preloaded.
set -euo pipefail
fifo=\$(mktemp -u "$out/heaptrack.\$\$.XXXXXX.fifo")
mkfifo "\$fifo"
"$interpreter" <"\$fifo" | zstd -q -c >"$out/smsfold.\$\$.zst" &
LD_PRELOAD="$preload" DUMP_HEAPTRACK_OUTPUT="\$fifo" exec "$out/release/smsfold" "\$@"
EOF
chmod +x "$wrapper"

SMSFOLD_COMPARE_SMSFOLD=$wrapper SMSFOLD_COMPARE_PHASES=saturation SMSFOLD_COMPARE_SYSTEMS=smsfold \
    SMSFOLD_COMPARE_RUNS=1 SMSFOLD_COMPARE_MESSAGES=$messages scripts/compare.sh

# The interpreter finishes once smsfold has exited and closed the fifo.
sleep 2
rm -f "$out"/heaptrack.*.fifo
recording=$(ls -t "$out"/smsfold.*.zst | head -n 1)
echo "heap-profile: recording in $recording" >&2
heaptrack_print --file "$recording" --print-peaks 0 --print-allocators 0 --print-temporary 0 \
    | grep -E '^(total runtime|peak heap memory|peak RSS)'
heaptrack_print --file "$recording" --flamegraph-cost-type peak --print-flamegraph "$out/peak-stacks.txt" >/dev/null
scripts/heap-peak-summary.py "$out/peak-stacks.txt" 15
