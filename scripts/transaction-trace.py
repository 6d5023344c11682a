#!/usr/bin/env python3
"""Summarises the transactions in a worker log written with librdkafka's
`eos` and `msg` debug contexts, to show where a commit's time goes.

Write such a log with a latency run of the comparison, for example:

    SMSFOLD_BENCH_WORKER_LOG=debug SMSFOLD_KAFKA_PROPERTY_DEBUG=eos,msg \\
    SMSFOLD_COMPARE_PHASES=latency SMSFOLD_COMPARE_SYSTEMS=smsfold \\
    SMSFOLD_COMPARE_RUNS=1 SMSFOLD_COMPARE_FULL_RATE=57095 \\
    SMSFOLD_COMPARE_WARMUP_SECONDS=10 SMSFOLD_COMPARE_MEASURE_SECONDS=5 \\
    scripts/compare.sh

then pass one of the `*-smsfold.log` files in the directory its `logs:`
line names:

    scripts/transaction-trace.py target/tmp/compare-*/cmp-lat50-*-smsfold.log

It prints four figures over the transactions the log holds. First, how
many produce requests each sent; librdkafka sends one partition per
request. Second, how long each took from `begin_transaction` to the end
of `commit_transaction`. Third, the time between consecutive acknowledged
requests; the broker serves one request of a connection at a time.
Fourth, how many transactions had a partition rejected with
CONCURRENT_TRANSACTIONS.
"""

import json
import statistics
import sys
from datetime import datetime


def millis(timestamp):
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def quantile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def read_transactions(path):
    """Returns the committed transactions of the log, each with its begin and
    commit times, its produce requests and whether a partition was rejected,
    and the gaps between consecutive acknowledgements."""
    transactions = []
    current = None
    gaps = []
    last_ack = None
    with open(path, encoding="utf-8") as log:
        for line in log:
            if "librdkafka" not in line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            message = entry["fields"].get("message", "")
            at = millis(entry["timestamp"])
            if "begin_transaction return" in message:
                current = {"begun": at, "requests": 0, "rejected": False}
            elif current is None:
                continue
            elif "Produce MessageSet with" in message:
                current["requests"] += 1
            elif "MSGSET" in message and "delivered" in message:
                if last_ack is not None:
                    gaps.append(at - last_ack)
                last_ack = at
            elif "AddPartitionsToTxn response" in message and "concurrent operation" in message:
                current["rejected"] = True
            elif "commit_transaction return" in message:
                current["committed"] = at
                transactions.append(current)
                current = None
    return transactions, gaps


def main(path):
    transactions, gaps = read_transactions(path)
    if not transactions:
        sys.exit(f"{path}: no committed transaction with librdkafka's eos and msg debug lines")
    requests = [t["requests"] for t in transactions]
    durations = [t["committed"] - t["begun"] for t in transactions]
    rejected = sum(t["rejected"] for t in transactions)
    # A gap longer than a second spans an idle pause, not a busy broker.
    gaps = [gap for gap in gaps if gap < 1000]
    print(f"transactions: {len(transactions)}")
    print(f"produce requests per transaction: median {statistics.median(requests):.0f}, p90 {quantile(requests, 0.9)}")
    print(f"begin to commit: median {statistics.median(durations):.1f} ms, p90 {quantile(durations, 0.9):.1f} ms")
    print(
        f"between consecutive acknowledged requests: median {statistics.median(gaps):.2f} ms, "
        f"mean {statistics.mean(gaps):.2f} ms, p90 {quantile(gaps, 0.9):.2f} ms"
    )
    print(f"transactions with a partition rejected by CONCURRENT_TRANSACTIONS: {rejected} ({rejected / len(transactions):.0%})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scripts/transaction-trace.py WORKER_LOG")
    main(sys.argv[1])
