"""Summarizes `jfr print --events jdk.ExecutionSample` output.

Prints the share of samples per thread kind, and for each listed Kafka
Streams, Kafka client and application method the share of samples whose
stack contains it. Shares of one list overlap, because one stack contains
several of the methods. Used by scripts/profile-compare.sh.
"""

import collections
import re
import sys

# Methods whose inclusive share shows where a stream thread spends its time.
METHODS = [
    "StreamThread.runOnce",
    "StreamTask.process",
    "MessageFoldProcessor.process",
    "CampaignFoldProcessor.process",
    "RecordCollectorImpl.send",
    "KafkaProducer.send",
    "ChangeLoggingKeyValueBytesStore",
    "CachingKeyValueStore",
    "RocksDBStore",
    "MeteredKeyValueStore",
    "PartitionGroup",
    "KafkaConsumer.poll",
    "TaskManager.commit",
    "Sensor.record",
    "parseFrom",
    "toByteArray",
    "Sender.run",
]


def main(path):
    text = open(path, encoding="utf-8").read()
    samples = 0
    threads = collections.Counter()
    methods = collections.Counter()
    for event in text.split("jdk.ExecutionSample")[1:]:
        stack = re.search(r"stackTrace = \[(.*?)\n\s*\]", event, re.S)
        if not stack:
            continue
        samples += 1
        thread = re.search(r'sampledThread = "([^"]*)"', event)
        if thread:
            name = thread.group(1)
            if "kafka-producer-network-thread" in name:
                kind = "producer network thread"
            elif "StreamThread" in name:
                kind = "stream thread"
            else:
                kind = "other"
            threads[kind] += 1
        for method in METHODS:
            if method in stack.group(1):
                methods[method] += 1
    if samples == 0:
        print("no execution samples")
        return
    print(f"{samples} Java execution samples")
    for kind, count in threads.most_common():
        print(f"{100 * count / samples:5.1f}%  thread: {kind}")
    for method, count in methods.most_common():
        print(f"{100 * count / samples:5.1f}%  {method}")


if __name__ == "__main__":
    main(sys.argv[1])
