//! The consumer's callbacks. Before partitions are revoked the open batch is
//! committed, so a rebalance does not throw work away; assignments are
//! queued for the worker loop, which restores new partitions' state; and
//! librdkafka's statistics feed the consumer lag gauges.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::producer::Producer;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use tracing::{info, warn};

use crate::changelog_buffer::ChangelogBuffer;
use crate::metrics;
use crate::partition_map::PartitionMap;
use crate::publisher::{self, Publisher};

/// Partitions assigned to this worker, by topic.
pub type Assignment = Vec<(String, i32)>;

/// How long a commit may take before it counts as failed.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The batch that is processed but not committed yet.
#[derive(Debug, Default)]
pub struct OpenBatch {
    /// True while a transaction is open (exactly-once) or outputs are in
    /// flight (at-least-once).
    pub open: bool,
    /// Next offset to consume, per consumed topic and partition.
    pub offsets: PartitionMap,
    /// Input records in the batch.
    pub records: usize,
    /// Set when a commit made from a callback failed; the worker loop then
    /// aborts and rewinds.
    pub failed: Option<String>,
    /// Changelog entries to send before the batch commits.
    pub changelog: ChangelogBuffer,
}

impl OpenBatch {
    pub fn offsets_list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in self.offsets.iter() {
            // Adding a partition to a fresh list only fails for invalid input.
            let _ = list.add_partition_offset(topic, partition, Offset::Offset(offset));
        }
        list
    }
}

pub struct WorkerContext {
    /// The newest assignment, taken by the worker loop between records.
    pub assigned: Mutex<Option<Assignment>>,
    /// The partitions assigned now, kept from the rebalance events.
    pub owned: Mutex<BTreeSet<(String, i32)>>,
    pub batch: Arc<Mutex<OpenBatch>>,
    /// The producer of the open batch's outputs.
    pub producer: Publisher,
    pub exactly_once: bool,
    /// Set while the worker has restored state for its partitions.
    pub ready: Arc<AtomicBool>,
}

impl WorkerContext {
    pub fn batch(&self) -> MutexGuard<'_, OpenBatch> {
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the open batch: its transaction, or its offsets after the
    /// outputs are flushed. Returns the error text on failure.
    ///
    /// The worker loop waits for the batch's acknowledgements before it
    /// calls this; from a rebalance callback the flush inside librdkafka's
    /// commit (or the explicit flush at-least-once) waits for them.
    pub fn commit_open_batch(&self, consumer: &impl Consumer<Self>) -> Result<(), String> {
        let mut batch = self.batch();
        if !batch.open {
            return Ok(());
        }
        let offsets = batch.offsets_list();
        for output in batch.changelog.drain() {
            publisher::send(&self.producer, output)
                .map_err(|(topic, error)| format!("could not send to {topic}: {error}"))?;
        }
        let result = if self.exactly_once {
            match consumer.group_metadata() {
                Some(group) => self
                    .producer
                    .send_offsets_to_transaction(&offsets, &group, COMMIT_TIMEOUT)
                    .and_then(|()| self.producer.commit_transaction(COMMIT_TIMEOUT))
                    .map_err(|error| error.to_string())
                    .and_then(|()| publisher::take_failure(&self.producer)),
                None => Err("the consumer has no group metadata".to_owned()),
            }
        } else {
            publisher::flush_blocking(&self.producer, COMMIT_TIMEOUT).and_then(|()| {
                if offsets.count() > 0 {
                    consumer.commit(&offsets, CommitMode::Sync).map_err(|error| error.to_string())
                } else {
                    Ok(())
                }
            })
        };
        if result.is_ok() {
            batch.open = false;
            batch.offsets.clear();
            batch.records = 0;
        }
        result
    }
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                // librdkafka's own consumer_lag counts from the committed
                // offset, which a transactional commit does not report to the
                // consumer; so count from the next offset handed to the
                // worker up to the last stable offset (read_committed's end).
                if *partition < 0 || stats.app_offset < 0 || stats.ls_offset < 0 {
                    continue;
                }
                let lag = (stats.ls_offset - stats.app_offset).max(0);
                metrics::consumer_lag(topic, *partition, lag);
                // The commit marker of the last transaction sits past the
                // last record, so one record of lag means caught up.
                if lag <= 1 {
                    metrics::consumer_lag_seconds(topic, *partition, 0.0);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            self.ready.store(false, Ordering::Release);
            metrics::ready(false);
            info!(partitions = partitions.count(), "partitions revoked; committing the open batch");
            if let Err(error) = self.commit_open_batch(consumer) {
                warn!(%error, "could not commit the open batch before the rebalance; it will be aborted");
                self.batch().failed = Some(error);
            }
        }
    }

    /// Queues the whole assignment after every change: with incremental
    /// (cooperative or consumer-protocol) rebalancing a callback names only
    /// the partitions added or removed, so the whole is kept here. An eager
    /// rebalance revokes everything before it assigns, which keeps the same
    /// bookkeeping right.
    ///
    /// The assignment is not read back with `rd_kafka_assignment`: that call
    /// waits on librdkafka's main thread, which during consumer close waits
    /// on this callback, and the consumer's drop then never returns.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut owned = self.owned.lock().unwrap_or_else(|e| e.into_inner());
        match rebalance {
            Rebalance::Assign(partitions) => {
                owned.extend(partitions.elements().iter().map(|e| (e.topic().to_owned(), e.partition())));
            }
            Rebalance::Revoke(partitions) => {
                for element in partitions.elements() {
                    owned.remove(&(element.topic().to_owned(), element.partition()));
                }
            }
            Rebalance::Error(error) => {
                warn!(%error, "rebalance failed");
                return;
            }
        }
        let assignment: Assignment = owned.iter().cloned().collect();
        info!(partitions = assignment.len(), "assignment changed");
        *self.assigned.lock().unwrap_or_else(|e| e.into_inner()) = Some(assignment);
    }
}
