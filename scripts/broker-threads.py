#!/usr/bin/env python3
"""Records which threads of a process use the CPU, and sets them beside a
compare run's latency.

Usage:
  scripts/broker-threads.py record PID FILE
  scripts/broker-threads.py report FILE LATENCIES_CSV [BUCKET_MS]

`record` reads /proc/PID/task/*/stat every 0.5 s and appends one JSON line
per reading to FILE (wall-clock milliseconds, and per thread its name and
user and system CPU ticks) until the process ends or the command is
stopped. Start it beside a latency run of scripts/compare.sh, with PID
from `scripts/kafka-broker.sh pid`.

`report` groups the readings into buckets of BUCKET_MS (2000 by default),
counted from the first event time in LATENCIES_CSV (a `*-latencies.csv`
from the run's log directory, see scripts/latency-timeline.py). Each line
gives a bucket's start as seconds into the run and the median latency of
the records whose event time falls in it. Then come the process's CPU use
and its four busiest thread groups, in percent of one CPU; a group is a
thread name without its trailing number.
"""

import csv
import json
import os
import re
import sys
import time
from collections import defaultdict

INTERVAL_S = 0.5


def read_threads(pid):
    """Returns {thread id: (name, user+system ticks)} of a process."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # the thread ended between the listing and the read
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        threads[tid] = (name, int(fields[11]) + int(fields[12]))
    return threads


def record(pid, path):
    with open(path, "a") as out:
        while True:
            try:
                threads = read_threads(pid)
            except FileNotFoundError:
                return  # the process ended
            out.write(json.dumps({"ms": int(time.time() * 1000), "threads": threads}) + "\n")
            out.flush()
            time.sleep(INTERVAL_S)


def report(path, latencies_path, bucket_ms):
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    with open(latencies_path) as file:
        latencies = [(int(row[0]), int(row[1])) for row in csv.reader(file) if row and row[0].isdigit()]
    if not latencies:
        sys.exit(f"broker-threads: no latencies in {latencies_path}")
    start = min(occurred for occurred, _ in latencies)
    by_bucket = defaultdict(list)
    for occurred, latency in latencies:
        by_bucket[(occurred - start) // bucket_ms].append(latency)

    with open(path) as file:
        readings = [json.loads(line) for line in file]
    cpu = defaultdict(lambda: defaultdict(int))
    for before, after in zip(readings, readings[1:]):
        bucket = (after["ms"] - start) // bucket_ms
        for tid, (name, ticks) in after["threads"].items():
            if tid in before["threads"]:
                group = re.sub(r"[-_ #]?\d+$", "", name)
                cpu[bucket][group] += ticks - before["threads"][tid][1]

    seconds = bucket_ms / 1000
    print("seconds  p50 ms  CPU %  busiest threads, % of one CPU")
    for bucket in sorted(by_bucket):
        ordered = sorted(by_bucket[bucket])
        groups = cpu.get(bucket, {})
        total = sum(groups.values()) / ticks_per_second / seconds * 100
        busiest = sorted(groups.items(), key=lambda item: -item[1])[:4]
        names = ", ".join(f"{name} {ticks / ticks_per_second / seconds * 100:.0f}" for name, ticks in busiest)
        print(f"{bucket * seconds:7.1f}  {ordered[len(ordered) // 2]:6d}  {total:5.0f}  {names}")


def main(args):
    if len(args) == 3 and args[0] == "record":
        record(int(args[1]), args[2])
    elif len(args) in (3, 4) and args[0] == "report":
        report(args[1], args[2], int(args[3]) if len(args) == 4 else 2000)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
