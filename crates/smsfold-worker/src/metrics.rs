//! The worker's Prometheus metrics: their names, labels and the one place
//! that records each, so logs and metrics agree.
//!
//! Labels are of low cardinality: event kinds, statuses, reasons, topics and
//! partition numbers, never a message or campaign id.

use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use smsfold_domain::{MessageEventKind, MessageStatus};

pub const EVENTS_CONSUMED: &str = "smsfold_events_consumed_total";
pub const STATUS_CHANGES: &str = "smsfold_status_changes_total";
pub const CAMPAIGNS: &str = "smsfold_campaigns";
pub const LIVE_MESSAGES: &str = "smsfold_live_messages";
pub const DECODE_FAILURES: &str = "smsfold_decode_failures_total";
pub const DEAD_LETTERS: &str = "smsfold_dead_letters_total";
pub const PROCESSING_LATENCY: &str = "smsfold_processing_latency_seconds";
pub const EVENT_AGE: &str = "smsfold_event_age_seconds";
pub const CONSUMER_LAG: &str = "smsfold_consumer_lag_records";
pub const BATCHES: &str = "smsfold_batches_committed_total";
pub const COMMIT_PHASE: &str = "smsfold_commit_phase_seconds";
pub const BUILD_INFO: &str = "smsfold_build_info";

/// Buckets for the latency histograms, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the Prometheus recorder for this process, with an unknown build
/// commit; see [`install_with_commit`].
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    install_with_commit("unknown")
}

/// Installs the Prometheus recorder for this process and returns the handle
/// that renders `/metrics`. `smsfold_build_info` carries the crate version
/// and `commit`, the build's source commit.
///
/// A process has one global recorder: a second call returns an error, which
/// callers running several workers in one process (tests) may ignore.
pub fn install_with_commit(commit: &str) -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|error| metrics_exporter_prometheus::BuildError::FailedToSetGlobalRecorder(error))?;
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => commit.to_owned()).set(1.0);
    Ok(handle)
}

pub fn event_consumed(kind: &'static str) {
    counter!(EVENTS_CONSUMED, "kind" => kind).increment(1);
}

/// Handles of the metrics recorded for each input event, registered once,
/// because the `counter!` macro looks its metric up in the registry and
/// allocates its labels on every call.
#[derive(Debug, Clone)]
pub struct EventMetrics {
    consumed: Vec<(&'static str, Counter)>,
    /// By `MessageStatus` discriminant minus one.
    message_status_changes: Vec<Counter>,
    age: Histogram,
}

impl EventMetrics {
    /// Registers the handles with the recorder installed now, so call it
    /// after [`install`].
    pub fn register() -> EventMetrics {
        EventMetrics {
            consumed: MessageEventKind::NAMES.iter().map(|&kind| (kind, counter!(EVENTS_CONSUMED, "kind" => kind))).collect(),
            message_status_changes: MessageStatus::ALL
                .iter()
                .map(|status| counter!(STATUS_CHANGES, "entity" => "message", "status" => status.as_str()))
                .collect(),
            age: histogram!(EVENT_AGE),
        }
    }

    /// Counts one consumed event; a kind without a handle (campaign events)
    /// is counted through the registry.
    pub fn event_consumed(&self, kind: &'static str) {
        match self.consumed.iter().find(|(name, _)| *name == kind) {
            Some((_, counter)) => counter.increment(1),
            None => event_consumed(kind),
        }
    }

    pub fn message_status_changed(&self, status: MessageStatus) {
        self.message_status_changes[status as usize - 1].increment(1);
    }

    /// Records the age of an event (now minus its event time) when it is applied.
    pub fn event_age(&self, seconds: f64) {
        self.age.record(seconds.max(0.0));
    }
}

pub fn campaign_status_changed(status: &'static str) {
    counter!(STATUS_CHANGES, "entity" => "campaign", "status" => status).increment(1);
}

pub fn campaigns_in_status(status: &'static str, count: usize) {
    gauge!(CAMPAIGNS, "status" => status).set(count as f64);
}

pub fn live_messages(count: usize) {
    gauge!(LIVE_MESSAGES).set(count as f64);
}

pub fn decode_failed(reason: &'static str) {
    counter!(DECODE_FAILURES, "reason" => reason).increment(1);
}

pub fn dead_lettered(reason: &'static str) {
    counter!(DEAD_LETTERS, "reason" => reason).increment(1);
}

/// Records one committed batch: the time from its first record being polled
/// to its outputs being durable and its offsets committed.
pub fn batch_committed(latency: Duration) {
    counter!(BATCHES).increment(1);
    histogram!(PROCESSING_LATENCY).record(latency.as_secs_f64());
}

/// A step of a batch's commit, timed by [`commit_phase`].
#[derive(Debug, Clone, Copy)]
pub enum CommitPhase {
    /// The wait until the broker has acknowledged every output of the batch.
    Acknowledged,
    /// The hand-over of the batch's input offsets: into the transaction
    /// (exactly-once), or as a consumer commit (at-least-once).
    Offsets,
    /// The transaction's commit (exactly-once).
    Transaction,
}

impl CommitPhase {
    fn label(self) -> &'static str {
        match self {
            CommitPhase::Acknowledged => "acknowledged",
            CommitPhase::Offsets => "offsets",
            CommitPhase::Transaction => "transaction",
        }
    }
}

/// Records how long one step of a batch's commit took.
pub fn commit_phase(phase: CommitPhase, duration: Duration) {
    histogram!(COMMIT_PHASE, "phase" => phase.label()).record(duration.as_secs_f64());
}

pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!(CONSUMER_LAG, "topic" => topic.to_owned(), "partition" => partition.to_string()).set(lag as f64);
}

pub const RESTORE_REMAINING: &str = "smsfold_restore_remaining_records";
pub const RESTORED_RECORDS: &str = "smsfold_restored_records_total";
pub const RESTORE_DURATION: &str = "smsfold_restore_duration_seconds";
pub const READY: &str = "smsfold_ready";
pub const CONSUMER_LAG_SECONDS: &str = "smsfold_consumer_lag_seconds";
pub const TRANSACTIONS_ABORTED: &str = "smsfold_transactions_aborted_total";

/// Records the changelog records still to read for a partition.
pub fn restore_remaining(topic: &str, partition: i32, records: i64) {
    gauge!(RESTORE_REMAINING, "topic" => topic.to_owned(), "partition" => partition.to_string()).set(records as f64);
}

/// Records a finished restore.
pub fn restored(records: u64, duration: Duration) {
    counter!(RESTORED_RECORDS).increment(records);
    histogram!(RESTORE_DURATION).record(duration.as_secs_f64());
}

pub fn ready(ready: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// Records how far behind a partition's consumption is: now minus the
/// timestamp of the last record consumed from it, 0 when caught up.
pub fn consumer_lag_seconds(topic: &str, partition: i32, seconds: f64) {
    gauge!(CONSUMER_LAG_SECONDS, "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(seconds.max(0.0));
}

pub fn transaction_aborted(reason: &'static str) {
    counter!(TRANSACTIONS_ABORTED, "reason" => reason).increment(1);
}

pub const GROUP_REJOINS: &str = "smsfold_group_rejoins_total";

/// Counts joins refused because a killed predecessor with the same
/// instance id was still a member of the group.
pub fn rejoin_attempted() {
    counter!(GROUP_REJOINS).increment(1);
}

pub const EVICTED: &str = "smsfold_evicted_total";

/// Counts messages and campaigns that left the live state.
pub fn evicted(messages: usize, campaigns: usize) {
    counter!(EVICTED, "entity" => "message").increment(messages as u64);
    counter!(EVICTED, "entity" => "campaign").increment(campaigns as u64);
}

pub const RECEIPTS: &str = "smsfold_receipts_total";
pub const RECEIPT_MATCHES: &str = "smsfold_receipt_matches_total";
pub const PENDING_RECEIPTS: &str = "smsfold_pending_receipts";
pub const CARRIER_LINKS: &str = "smsfold_carrier_links";

/// Counts one receipt read from its SMPP form, by the outcome its state maps
/// to (`delivered`, `undelivered`, `intermediate`, `unknown`).
pub fn receipt_read(outcome: &'static str) {
    counter!(RECEIPTS, "outcome" => outcome).increment(1);
}

/// Counts one receipt matched to its message by carrier id, by the rule
/// that matched it (`same_spelling`, `other_base`).
pub fn receipt_matched(rule: &'static str) {
    counter!(RECEIPT_MATCHES, "rule" => rule).increment(1);
}

/// Records the receipts waiting for their carrier id's sent event, and the
/// carrier links held for receipts to come, over this worker's partitions.
pub fn carrier_join_state(pending: usize, links: usize) {
    gauge!(PENDING_RECEIPTS).set(pending as f64);
    gauge!(CARRIER_LINKS).set(links as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_metrics_count_by_label() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let events = EventMetrics::register();
            events.event_consumed("accepted");
            events.event_consumed("accepted");
            events.event_consumed("campaign_created");
            events.message_status_changed(MessageStatus::Delivered);
            events.message_status_changed(MessageStatus::Received);
            events.event_age(-1.0);
        });
        let text = handle.render();

        assert!(text.contains("smsfold_events_consumed_total{kind=\"accepted\"} 2\n"), "{text}");
        assert!(text.contains("smsfold_events_consumed_total{kind=\"campaign_created\"} 1\n"), "{text}");
        assert!(text.contains("smsfold_events_consumed_total{kind=\"sent\"} 0\n"), "{text}");
        assert!(text.contains("smsfold_status_changes_total{entity=\"message\",status=\"delivered\"} 1\n"), "{text}");
        assert!(text.contains("smsfold_status_changes_total{entity=\"message\",status=\"received\"} 1\n"), "{text}");
        assert!(text.contains("smsfold_status_changes_total{entity=\"message\",status=\"accepted\"} 0\n"), "{text}");
        // A negative age (a clock behind the producer's) counts as zero.
        assert!(text.contains("smsfold_event_age_seconds_count 1\n"), "{text}");
        assert!(text.contains("smsfold_event_age_seconds_sum 0\n"), "{text}");
    }
}
