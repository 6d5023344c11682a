#!/usr/bin/env python3
"""Prints how the latency of one compare run changed over the run.

Usage: scripts/latency-timeline.py FILE [BUCKET_MS]

FILE is a `*-latencies.csv` that `scripts/compare.sh` leaves in its log
directory (`occurred_ms,latency_ms` per record read back). The records are
grouped by event time into buckets of BUCKET_MS (500 by default). Each line
gives a bucket's start as seconds into the run, its record count, and its
median and highest latency. A last line counts the buckets whose median is
above the run's overall 99th percentile: a few such buckets in a row mean
the tail came from one episode, many scattered ones mean it is spread over
the run.
"""

import csv
import math
import sys


def percentile(ordered, share):
    """Returns the nearest-rank percentile of an ascending list."""
    rank = math.ceil(len(ordered) * share)
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[2])
    bucket_ms = int(sys.argv[2]) if len(sys.argv) == 3 else 500
    with open(sys.argv[1], newline="") as file:
        rows = [(int(occurred), int(latency)) for occurred, latency in list(csv.reader(file))[1:]]
    if not rows:
        sys.exit(f"{sys.argv[1]} holds no readings")
    start = min(occurred for occurred, _ in rows)
    buckets = {}
    for occurred, latency in rows:
        buckets.setdefault((occurred - start) // bucket_ms, []).append(latency)
    overall_p99 = percentile(sorted(latency for _, latency in rows), 0.99)
    above = 0
    print("seconds  records  p50 ms  max ms")
    for index in sorted(buckets):
        latencies = sorted(buckets[index])
        median = percentile(latencies, 0.5)
        above += median > overall_p99
        print(f"{index * bucket_ms / 1000:7.1f}  {len(latencies):7d}  {median:6d}  {latencies[-1]:6d}")
    print(f"p99 over the whole run, warm-up included: {overall_p99} ms; "
          f"buckets with a median above it: {above} of {len(buckets)}")


if __name__ == "__main__":
    main()
