#!/usr/bin/env python3
"""Sums heaptrack's peak heap by the code that asked for it.

Usage: scripts/heap-peak-summary.py [--calls] STACKS [LIMIT]

STACKS is the output of `heaptrack_print --flamegraph-cost-type peak -F
STACKS`: one line per backtrace, frames from the root to the allocation
joined by ";", then a space and the bytes that backtrace held at the peak.
Each backtrace is charged to its frame nearest the allocation that lies in
smsfold's own crates or in librdkafka. A backtrace with neither is charged
to "other". Prints the LIMIT (default 25) largest sites with their
bytes and share of the peak. With --calls, the counts are calls to
allocation functions (`--flamegraph-cost-type allocations`) instead of
bytes.
"""

import re
import sys

OWN_CODE = re.compile(r"smsfold_(domain|smpp|wire|worker)|rd_kafka|rdkafka")
# Rust frames look like `path::to::function::h0123abcd (file.rs)`, C frames
# like `function (file.c)`.
HASH_SUFFIX = re.compile(r"::h[0-9a-f]{16}")


def site(frames):
    for frame in reversed(frames):
        if OWN_CODE.search(frame):
            return HASH_SUFFIX.sub("", frame)
    return "other"


def main():
    arguments = sys.argv[1:]
    calls = "--calls" in arguments
    arguments = [argument for argument in arguments if argument != "--calls"]
    if len(arguments) not in (1, 2):
        sys.exit("usage: scripts/heap-peak-summary.py [--calls] STACKS [LIMIT]")
    limit = int(arguments[1]) if len(arguments) == 2 else 25
    totals = {}
    with open(arguments[0], encoding="utf-8", errors="replace") as stacks:
        for line in stacks:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            key = site(stack.split(";"))
            totals[key] = totals.get(key, 0) + int(count)
    total = sum(totals.values())
    if total == 0:
        sys.exit(f"{arguments[0]} holds no backtraces")
    if calls:
        print(f"calls to allocation functions: {total:,}")
    else:
        print(f"peak heap: {total / 2**20:.1f} MiB")
    for key, count in sorted(totals.items(), key=lambda item: -item[1])[:limit]:
        figure = f"{count:13,}" if calls else f"{count / 2**20:8.1f} MiB"
        print(f"{figure} {100 * count / total:5.1f}%  {key}")


if __name__ == "__main__":
    main()
