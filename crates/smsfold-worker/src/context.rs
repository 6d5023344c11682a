//! The consumer's callbacks. Before partitions are revoked the open batch is
//! committed, so a rebalance does not throw work away; assignments are
//! queued for the worker loop, which restores new partitions' state; and
//! librdkafka's statistics feed the consumer lag gauges.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Statistics};
use tracing::{debug, error, info, warn};

use crate::batch::OpenBatch;
use crate::committer::Inflight;
use crate::metrics;
use crate::publisher::Publisher;

/// Partitions assigned to this worker, by topic.
pub type Assignment = Vec<(String, i32)>;

/// How long a commit may take before it counts as failed.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct WorkerContext {
    /// The newest assignment, taken by the worker loop between records.
    pub assigned: Mutex<Option<Assignment>>,
    /// The partitions assigned now, kept from the rebalance events.
    pub owned: Mutex<BTreeSet<(String, i32)>>,
    pub batch: Arc<Mutex<OpenBatch>>,
    /// The producer of the open batch's outputs.
    pub producer: Arc<Publisher>,
    /// The commit of the previous batch while it runs (exactly-once).
    pub inflight: Mutex<Option<Inflight>>,
    pub exactly_once: bool,
    /// Set while the worker has restored state for its partitions.
    pub ready: Arc<AtomicBool>,
}

impl WorkerContext {
    pub fn batch(&self) -> MutexGuard<'_, OpenBatch> {
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Text of librdkafka's messages when a member joins under an instance id
/// whose previous member has not left the group yet.
const UNRELEASED_INSTANCE: &str = "instance ID is still used by another member";

impl ClientContext for WorkerContext {
    /// Logs librdkafka's messages as rdkafka does, but a rejoin under an
    /// unreleased instance id at debug level: librdkafka calls it fatal,
    /// and the worker joins again and logs a warning of its own.
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if message.contains(UNRELEASED_INSTANCE) {
            debug!(target: "librdkafka", "librdkafka: {facility} {message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                error!(target: "librdkafka", "librdkafka: {facility} {message}");
            }
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "librdkafka: {facility} {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => info!(target: "librdkafka", "librdkafka: {facility} {message}"),
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", "librdkafka: {facility} {message}"),
        }
    }

    /// Logs a client error, but an unreleased instance id at debug level
    /// (see [`log`](Self::log)).
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnreleasedInstanceId) {
            debug!(target: "librdkafka", "librdkafka: {error}: {reason}");
        } else {
            error!(target: "librdkafka", "librdkafka: {error}: {reason}");
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                // librdkafka's own consumer_lag counts from the committed
                // offset, which a transactional commit does not report to the
                // consumer; so count from the next offset handed to the
                // worker up to the last stable offset (read_committed's end).
                // Until the worker gets a record of the partition, count from
                // the offset the group had committed when it was assigned.
                let position = if stats.app_offset >= 0 { stats.app_offset } else { stats.committed_offset };
                if *partition < 0 || position < 0 || stats.ls_offset < 0 {
                    continue;
                }
                let lag = (stats.ls_offset - position).max(0);
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
