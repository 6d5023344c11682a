//! The open batch and its commit.
//!
//! Exactly-once, a batch is one transaction. Its commit runs on a thread of
//! its own ([`Inflight`]) while the worker folds the next batch. The next
//! batch's outputs wait in [`OpenBatch::pending`] until the commit is done
//! and the next transaction begins. So under load a batch grows for as long
//! as the previous commit takes.
//!
//! At-least-once, a batch's offsets are committed after every output it
//! caused is acknowledged, in line with the worker loop.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use crate::changelog_buffer::ChangelogBuffer;
use crate::committer::{self, Inflight};
use crate::context::{WorkerContext, COMMIT_TIMEOUT};
use crate::metrics::{self, CommitPhase};
use crate::output::Output;
use crate::partition_map::PartitionMap;
use crate::publisher;
use crate::update_packs::UpdatePacks;

/// The batch that is processed but not committed yet.
#[derive(Debug, Default)]
pub struct OpenBatch {
    /// True from the batch's first record until its commit starts.
    pub open: bool,
    /// True once the batch's transaction began (exactly-once) and its
    /// outputs are handed to the producer as they are made.
    pub begun: bool,
    /// Outputs made while the previous batch's commit still ran, sent when
    /// this batch's transaction begins.
    pub pending: Vec<Output>,
    /// Next offset to consume, per consumed topic and partition.
    pub offsets: PartitionMap,
    /// Input records in the batch.
    pub records: usize,
    /// Set when a commit made from a callback failed; the worker loop then
    /// aborts and rewinds.
    pub failed: Option<String>,
    /// Changelog entries to send before the batch commits.
    pub changelog: ChangelogBuffer,
    /// Updates for the campaign stage, packed per campaign, to send before
    /// the batch commits.
    pub updates: UpdatePacks,
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

    /// Clears the batch, committed or aborted.
    pub fn close(&mut self) {
        self.open = false;
        self.begun = false;
        self.pending.clear();
        self.offsets.clear();
        self.records = 0;
    }
}

impl WorkerContext {
    /// Waits for the previous batch's commit, if one runs, and returns its
    /// outcome. The time of a successful one goes to the batch metric.
    pub fn finish_inflight(&self) -> Result<(), String> {
        let inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner()).take();
        match inflight {
            Some(inflight) => {
                let started = inflight.batch_started;
                inflight.wait()?;
                metrics::batch_committed(started.elapsed());
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Returns true while the previous batch's commit runs.
    pub fn commit_running(&self) -> bool {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|inflight| !inflight.is_finished())
    }

    /// Returns true when a previous batch's commit ran and has ended.
    pub fn commit_ended(&self) -> bool {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(Inflight::is_finished)
    }

    /// Begins the open batch's transaction, if it has not begun, and sends
    /// the outputs that waited for it. Call only when no commit runs.
    pub fn begin(&self, batch: &mut OpenBatch) -> Result<(), String> {
        if !batch.open || batch.begun {
            return Ok(());
        }
        if self.exactly_once {
            self.producer.begin_transaction().map_err(|error| format!("could not begin a transaction: {error}"))?;
        }
        batch.begun = true;
        for output in std::mem::take(&mut batch.pending) {
            publisher::send(&self.producer, output)
                .map_err(|(topic, error)| format!("could not send to {topic}: {error}"))?;
        }
        Ok(())
    }

    /// Hands an output of the open batch to the producer, or keeps it until
    /// the batch's transaction begins.
    pub fn publish(&self, batch: &mut OpenBatch, output: Output) -> Result<(), (String, KafkaError)> {
        if batch.begun {
            publisher::send(&self.producer, output)
        } else {
            batch.pending.push(output);
            Ok(())
        }
    }

    /// Starts committing the open batch on a thread of its own
    /// (exactly-once). Call only when no commit runs.
    pub fn start_commit(&self, consumer: &impl Consumer<Self>, batch_started: Instant) -> Result<(), String> {
        let mut batch = self.batch();
        if !batch.open {
            return Ok(());
        }
        self.begin(&mut batch)?;
        self.send_buffered(&mut batch)?;
        let group = consumer.group_metadata().ok_or_else(|| "the consumer has no group metadata".to_owned())?;
        let inflight =
            Inflight::start(Arc::clone(&self.producer), batch.offsets_list(), group, COMMIT_TIMEOUT, batch_started)?;
        *self.inflight.lock().unwrap_or_else(|e| e.into_inner()) = Some(inflight);
        batch.close();
        Ok(())
    }

    /// Commits the open batch and waits for it: the previous batch's commit
    /// first, then this batch's transaction, or its offsets once its outputs
    /// are acknowledged. Returns the error text on failure.
    pub fn commit_open_batch(&self, consumer: &impl Consumer<Self>) -> Result<(), String> {
        self.finish_inflight()?;
        let mut batch = self.batch();
        if !batch.open {
            return Ok(());
        }
        self.begin(&mut batch)?;
        if self.exactly_once {
            self.send_buffered(&mut batch)?;
        } else {
            // Without a transaction the changelog must not get ahead of the
            // outputs. A worker that stopped with a state durable and the
            // outputs it caused lost would restore that state, fold the
            // events again, find nothing changed and never send them. So the
            // outputs are acknowledged before the changelog entries go out.
            let packs = batch.updates.drain();
            self.send(packs)?;
            committer::settle_timed(&self.producer, COMMIT_TIMEOUT)?;
            let entries = batch.changelog.drain();
            self.send(entries)?;
        }
        // A failed delivery fails the commit; the error names its topic.
        committer::settle_timed(&self.producer, COMMIT_TIMEOUT)?;
        let offsets = batch.offsets_list();
        let result = if self.exactly_once {
            match consumer.group_metadata() {
                Some(group) => committer::commit_transaction_timed(&self.producer, &offsets, &group, COMMIT_TIMEOUT),
                None => Err("the consumer has no group metadata".to_owned()),
            }
        } else if offsets.count() > 0 {
            let started = Instant::now();
            let committed = consumer.commit(&offsets, CommitMode::Sync).map_err(|error| error.to_string());
            metrics::commit_phase(CommitPhase::Offsets, started.elapsed());
            committed
        } else {
            Ok(())
        };
        if result.is_ok() {
            batch.close();
        }
        result
    }

    /// Aborts the open transaction, if any, once the previous batch's commit
    /// has ended, and clears the open batch. Returns the abort's error, which
    /// may be fatal for the producer.
    pub fn abort(&self) -> Result<(), KafkaError> {
        // The commit thread uses the transaction: let it end first. Its
        // failure is what is being handled.
        let _ = self.finish_inflight();
        let mut batch = self.batch();
        batch.close();
        batch.changelog.clear();
        batch.updates.clear();
        drop(batch);
        if !self.exactly_once {
            return Ok(());
        }
        match self.producer.abort_transaction(COMMIT_TIMEOUT) {
            Ok(()) => Ok(()),
            // No transaction was open, e.g. the failure came before one began.
            Err(KafkaError::Transaction(error)) if error.code() == RDKafkaErrorCode::State => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Sends the batch's update packs and changelog entries.
    fn send_buffered(&self, batch: &mut OpenBatch) -> Result<(), String> {
        let packs = batch.updates.drain();
        let entries = batch.changelog.drain();
        self.send(packs.into_iter().chain(entries))
    }

    /// Hands outputs to the producer, stopping at the first that fails.
    fn send(&self, outputs: impl IntoIterator<Item = Output>) -> Result<(), String> {
        for output in outputs {
            publisher::send(&self.producer, output)
                .map_err(|(topic, error)| format!("could not send to {topic}: {error}"))?;
        }
        Ok(())
    }
}
