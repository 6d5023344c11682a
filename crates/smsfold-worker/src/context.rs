//! The consumer's callbacks: rebalances are queued for the worker loop, and
//! librdkafka's statistics feed the consumer lag gauge.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Statistics};
use tracing::{info, warn};

use crate::metrics;

/// Partitions newly assigned to this worker, by topic.
pub type Assignment = Vec<(String, i32)>;

#[derive(Default)]
pub struct WorkerContext {
    /// The newest assignment, taken by the worker loop between records.
    pub assigned: Mutex<Option<Assignment>>,
    /// Set once the group has assigned partitions to this worker.
    pub ready: Arc<AtomicBool>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    metrics::consumer_lag(topic, *partition, stats.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                let assignment: Assignment = partitions
                    .elements()
                    .iter()
                    .map(|element| (element.topic().to_owned(), element.partition()))
                    .collect();
                info!(partitions = assignment.len(), "partitions assigned");
                *self.assigned.lock().unwrap_or_else(|e| e.into_inner()) = Some(assignment);
                self.ready.store(true, Ordering::Release);
            }
            Rebalance::Revoke(partitions) => {
                info!(partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Error(error) => warn!(%error, "rebalance failed"),
        }
    }
}
