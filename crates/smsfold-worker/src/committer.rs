//! A batch's transaction commit on a thread of its own, so that the worker
//! folds the next batch while the broker acknowledges this one's records and
//! writes its commit markers.
//!
//! A producer has one transaction at a time: the next batch's outputs wait
//! in memory until this commit is done and the next transaction begins.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::producer::Producer;
use rdkafka::TopicPartitionList;

use crate::metrics::{self, CommitPhase};
use crate::publisher::{self, Publisher};

/// A commit that runs while the worker goes on.
#[derive(Debug)]
pub struct Inflight {
    thread: JoinHandle<Result<(), String>>,
    /// When the batch's first record was taken, for the batch duration metric.
    pub batch_started: Instant,
}

impl Inflight {
    /// Starts committing the open transaction with `offsets`: waits for the
    /// acknowledgement of every record sent, then sends the offsets with the
    /// group metadata and commits.
    pub fn start(
        producer: Arc<Publisher>,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
        timeout: Duration,
        batch_started: Instant,
    ) -> Result<Self, String> {
        let thread = std::thread::Builder::new()
            .name("smsfold-commit".to_owned())
            .spawn(move || {
                settle_timed(&producer, timeout)?;
                commit_transaction_timed(&producer, &offsets, &group, timeout)?;
                publisher::take_failure(&producer)
            })
            .map_err(|error| format!("could not start a commit thread: {error}"))?;
        Ok(Inflight { thread, batch_started })
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the commit and returns its outcome.
    pub fn wait(self) -> Result<(), String> {
        self.thread.join().unwrap_or_else(|_| Err("the commit thread panicked".to_owned()))
    }
}

/// Waits until the broker has acknowledged every record sent so far, as
/// [`publisher::settle_blocking`] does, and records how long that took.
pub fn settle_timed(producer: &Publisher, timeout: Duration) -> Result<(), String> {
    let started = Instant::now();
    let settled = publisher::settle_blocking(producer, timeout);
    metrics::commit_phase(CommitPhase::Acknowledged, started.elapsed());
    settled
}

/// Hands `offsets` to the open transaction and commits it, recording how
/// long each of the two steps took.
pub fn commit_transaction_timed(
    producer: &Publisher,
    offsets: &TopicPartitionList,
    group: &ConsumerGroupMetadata,
    timeout: Duration,
) -> Result<(), String> {
    let started = Instant::now();
    producer.send_offsets_to_transaction(offsets, group, timeout).map_err(|error| error.to_string())?;
    let sent = Instant::now();
    metrics::commit_phase(CommitPhase::Offsets, sent - started);
    producer.commit_transaction(timeout).map_err(|error| error.to_string())?;
    metrics::commit_phase(CommitPhase::Transaction, sent.elapsed());
    Ok(())
}
