#!/usr/bin/env python3
"""Sums heaptrack's peak heap by the code that asked for it.

Usage: scripts/heap-peak-summary.py STACKS [LIMIT]

STACKS is the output of `heaptrack_print --flamegraph-cost-type peak -F
STACKS`: one line per backtrace, frames from the root to the allocation
joined by ";", then a space and the bytes that backtrace held at the peak.
Each backtrace is charged to its frame nearest the allocation that lies in
smsfold's own crates, or, for the C side, in librdkafka; others are
charged to "other". Prints the LIMIT (default 25) largest sites with their
bytes and share of the peak.
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
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: scripts/heap-peak-summary.py STACKS [LIMIT]")
    limit = int(sys.argv[2]) if len(sys.argv) == 3 else 25
    totals = {}
    with open(sys.argv[1], encoding="utf-8", errors="replace") as stacks:
        for line in stacks:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            key = site(stack.split(";"))
            totals[key] = totals.get(key, 0) + int(count)
    peak = sum(totals.values())
    if peak == 0:
        sys.exit(f"{sys.argv[1]} holds no backtraces")
    print(f"peak heap: {peak / 2**20:.1f} MiB")
    for key, size in sorted(totals.items(), key=lambda item: -item[1])[:limit]:
        print(f"{size / 2**20:8.1f} MiB {100 * size / peak:5.1f}%  {key}")


if __name__ == "__main__":
    main()
