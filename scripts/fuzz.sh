#!/usr/bin/env bash
# Runs every cargo-fuzz target under fuzz/ for a number of seconds each, one
# after another on one core, and lists the targets that failed.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  run time per target, 60 when not given
#   TARGET   targets to run, all of `cargo fuzz list` when none is given
#
# Needs a nightly toolchain (`rustup toolchain install nightly --profile
# minimal`) and cargo-fuzz (`cargo install cargo-fuzz`). Debug assertions
# are on, so an integer overflow fails like a crash.
#
# Each target reads the committed seeds in fuzz/seeds/TARGET and keeps the
# inputs it finds in fuzz/corpus/TARGET. A failing input is written to
# fuzz/artifacts/TARGET/; add it as a regression test before fixing the
# bug. `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` (from
# fuzz/) replays it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"

seconds=${1:-60}
shift || true
if [[ ! $seconds =~ ^[0-9]+$ ]]; then
    echo "SECONDS must be a whole number of seconds, not '$seconds'" >&2
    exit 2
fi
if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

failed=()
for target in "${targets[@]}"; do
    case $target in
        receipt_text) dictionary=(-dict=receipt_text.dict) ;;
        *_json) dictionary=(-dict=event_json.dict) ;;
        *) dictionary=() ;;
    esac
    mkdir -p "corpus/$target" "seeds/$target"
    echo "== $target: ${seconds} s"
    if ! cargo +nightly fuzz run --debug-assertions "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 "${dictionary[@]}"; then
        failed+=("$target")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all ${#targets[@]} targets ran ${seconds} s without a failure"
