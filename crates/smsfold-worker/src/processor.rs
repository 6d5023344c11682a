//! Turns each consumed record into the records it causes: status changes,
//! internal records for the other stages, and dead letters.
//!
//! The flow across topics, so that a campaign's counts are right however its
//! messages are spread over partitions and instances:
//! - The message stage folds message events per partition. Each change of a
//!   campaign's message goes to the internal campaign stage topic, keyed by
//!   campaign id, packed with the batch's other updates of that campaign
//!   (see `update_packs`).
//! - Campaign events are checked and forwarded to that same topic, so one
//!   campaign's lifecycle events and message updates meet in one partition,
//!   whatever partitioner the platform used for its campaign events.
//! - The campaign stage folds that topic. It sends a cancellation to every
//!   partition of the internal message commands topic. That topic has the
//!   partitions of the message events topic and is assigned with them (range
//!   assignment), so each message stage cancels its own messages.
//!
//! Receipts that name only a carrier id take a detour, because the carrier
//! id and the message id land on different partitions:
//! - The message stage publishes each carrier id of a sent event to the
//!   internal carrier join topic, keyed by carrier key, with the sent
//!   event's partition. It publishes such a receipt there too, after
//!   reading it.
//! - The carrier join stage meets the two in one partition. It sends the
//!   matched receipt to the message's partition of the message commands
//!   topic, where the message stage applies it. A receipt that waits too
//!   long, or matches more than one message, is dead-lettered.
//!
//! Each stage is one file: `message_stage`, `campaign_stage` and
//! `carrier_stage`. What they share is here.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use smsfold_domain::{CampaignChange, CarrierReport, MessageChange, Timestamp};
use smsfold_smpp::StateTable;
use smsfold_wire::carrier_join::OriginalRecord;
use smsfold_wire::internal::MessageUpdateRecord;
use smsfold_wire::{CampaignStatusChange, Counts, DecodeError, Format, MessageStatusChange, CONTENT_TYPE_HEADER};

use crate::config::Topics;
use crate::dead_letter::{dead_letter, dead_letter_original};
use crate::metrics::{self, EventMetrics};
use crate::output::{Output, Outputs};
use crate::projections::Projections;

mod campaign_stage;
mod carrier_stage;
mod message_stage;

/// Header naming what an internal record holds, on the campaign stage,
/// carrier join and message commands topics.
pub const RECORD_TYPE_HEADER: &str = "smsfold-record";
const CAMPAIGN_EVENT: &[u8] = b"campaign-event";
/// One update, as smsfold before packs wrote them; still read.
const MESSAGE_UPDATE: &[u8] = b"message-update";
/// A [`MessageUpdatePack`](smsfold_wire::internal::MessageUpdatePack).
pub(crate) const MESSAGE_UPDATES: &[u8] = b"message-updates";
const CARRIER_LINK: &[u8] = b"carrier-link";
const PENDING_RECEIPT: &[u8] = b"pending-receipt";
const RESOLVED_RECEIPT: &[u8] = b"resolved-receipt";

/// Per-worker settings the processor needs.
#[derive(Debug, Clone)]
pub struct Processor {
    pub topics: Topics,
    pub output_format: Format,
    pub max_record_bytes: usize,
    /// Partitions of the message commands topic; a cancellation goes to each.
    pub message_command_partitions: i32,
    /// Changelog of the message stage, partitioned like the message events.
    pub message_changelog: String,
    /// Changelog of the campaign stage, partitioned like its stage topic.
    pub campaign_changelog: String,
    /// Changelog of the carrier join stage, partitioned like its topic.
    pub carrier_changelog: String,
    /// Whether the campaign stage keeps, and writes to its changelog, an
    /// entry per message, so that an update delivered twice is counted
    /// once. At-least-once processing needs it; exactly-once processing
    /// applies each update once and only moves counts (see
    /// `CampaignFold::count`).
    pub campaign_message_entries: bool,
    /// Maps the `stat` of SMPP receipts to outcomes.
    pub receipt_states: StateTable,
    /// How long a receipt that names only a carrier id waits for its sent
    /// event, in event-time milliseconds.
    pub unmatched_receipt_wait_ms: i64,
    pub metrics: EventMetrics,
}

/// The record a dead letter is made of.
#[derive(Clone, Copy)]
enum Source<'a, 'r> {
    /// The record being processed.
    Consumed(&'a BorrowedMessage<'r>),
    /// A record consumed earlier, carried along by internal records.
    Carried(&'a OriginalRecord),
}

impl Processor {
    /// Processes one record, adding what it causes to `outputs`.
    pub fn process(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let topic = record.topic();
        if topic == self.topics.message_events {
            self.on_message_event(record, projections, outputs);
        } else if topic == self.topics.campaign_events {
            self.on_campaign_event(record, outputs);
        } else if topic == self.topics.campaign_stage {
            self.on_campaign_stage_record(record, projections, outputs);
        } else if topic == self.topics.message_commands {
            self.on_message_command(record, projections, outputs);
        } else if topic == self.topics.carrier_join {
            self.on_carrier_join_record(record, projections, outputs);
        }
    }

    fn dead_letter(&self, record: &BorrowedMessage<'_>, reason: &'static str, error: &str, outputs: &mut Outputs) {
        outputs.push(dead_letter(&self.topics.dead_letter, record, reason, error));
    }

    fn dead_letter_source(&self, source: Source<'_, '_>, reason: &'static str, error: &str, outputs: &mut Outputs) {
        match source {
            Source::Consumed(record) => self.dead_letter(record, reason, error, outputs),
            Source::Carried(original) => {
                outputs.push(dead_letter_original(&self.topics.dead_letter, original, reason, error));
            }
        }
    }

    fn decode_failed(&self, record: &BorrowedMessage<'_>, error: &DecodeError, outputs: &mut Outputs) {
        metrics::decode_failed(error.reason());
        self.dead_letter(record, error.reason(), &error.to_string(), outputs);
    }

    /// Returns the record's value and format, or dead-letters the record.
    fn read_value<'r>(&self, record: &'r BorrowedMessage<'_>, outputs: &mut Outputs) -> Option<(&'r [u8], Format)> {
        let Some(value) = record.payload() else {
            self.decode_failed(record, &DecodeError::MissingField("record value"), outputs);
            return None;
        };
        if value.len() > self.max_record_bytes {
            let error = format!("record value is {} bytes; the limit is {}", value.len(), self.max_record_bytes);
            self.dead_letter(record, "too_large", &error, outputs);
            return None;
        }
        match Format::detect(header(record, CONTENT_TYPE_HEADER), value) {
            Ok(format) => Some((value, format)),
            Err(error) => {
                self.decode_failed(record, &error, outputs);
                None
            }
        }
    }

    /// Dead-letters a record whose key is not the id in its payload; returns
    /// true when the key is right.
    fn check_key(&self, record: &BorrowedMessage<'_>, id_field: &str, id: &str, outputs: &mut Outputs) -> bool {
        match record.key() {
            Some(key) if key == id.as_bytes() => true,
            Some(key) => {
                let error = format!(
                    "record key {:?} differs from {id_field} {id:?}; key each record by its {id_field}",
                    String::from_utf8_lossy(key)
                );
                self.dead_letter(record, "key_mismatch", &error, outputs);
                false
            }
            None => {
                let error = format!("record has no key; key each record by its {id_field} ({id:?})");
                self.dead_letter(record, "key_mismatch", &error, outputs);
                false
            }
        }
    }

    /// Adds a changelog entry for the stage partition `partition`; `None`
    /// writes a tombstone.
    fn changelog(&self, topic: &str, partition: i32, key: Vec<u8>, value: Option<Vec<u8>>, outputs: &mut Outputs) {
        outputs.changelog.push(Output {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(key),
            payload: value,
            headers: None,
        });
    }

    /// Adds an internal record of type `record_type`.
    fn internal(&self, topic: &str, partition: Option<i32>, key: &[u8], record_type: &'static [u8], payload: Vec<u8>, outputs: &mut Outputs) {
        let headers = OwnedHeaders::new().insert(Header { key: RECORD_TYPE_HEADER, value: Some(record_type) });
        outputs.push(Output {
            topic: topic.to_owned(),
            partition,
            key: Some(key.to_vec()),
            payload: Some(payload),
            headers: Some(headers),
        });
    }

    /// Adds an update for the campaign stage. The worker packs a batch's
    /// updates of one campaign into one record.
    fn send_update(&self, mut update: MessageUpdateRecord, outputs: &mut Outputs) {
        // An at-least-once batch may send its updates and then stop before
        // it commits its input, so they are sent again after a restart.
        update.may_repeat = self.campaign_message_entries;
        outputs.updates.push(update);
    }

    /// Publishes a message's status change. `carrier` is the raw report of
    /// the SMPP receipt that caused it, if one did.
    fn message_change(
        &self,
        message_id: &str,
        campaign_id: Option<&str>,
        change: MessageChange,
        cause_event_id: &str,
        carrier: Option<&CarrierReport>,
        outputs: &mut Outputs,
    ) {
        self.metrics.message_status_changed(change.status);
        let record = MessageStatusChange {
            message_id: Cow::Borrowed(message_id),
            campaign_id: campaign_id.map(Cow::Borrowed),
            previous: change.previous,
            status: change.status,
            occurred_at: change.at,
            cause_event_id: Cow::Borrowed(cause_event_id),
            error_code: change.error_code,
            receipt_stat: carrier.and_then(|report| report.stat.as_deref()).map(Cow::Borrowed),
            receipt_err: carrier.and_then(|report| report.err.as_deref()).map(Cow::Borrowed),
        };
        let mut payload = Vec::with_capacity(160);
        record.encode(self.output_format, &mut payload);
        outputs.push(Output {
            topic: self.topics.message_changes.clone(),
            partition: None,
            key: Some(message_id.as_bytes().to_vec()),
            payload: Some(payload),
            headers: Some(self.content_type_headers()),
        });
    }

    fn campaign_change(
        &self,
        campaign_id: &str,
        change: CampaignChange,
        projection: Option<smsfold_domain::CampaignProjection>,
        cause_event_id: &str,
        outputs: &mut Outputs,
    ) {
        metrics::campaign_status_changed(change.status.as_str());
        let (recipients, dispatched) = projection.map_or((None, None), |p| (p.recipients, p.dispatched));
        let record = CampaignStatusChange {
            campaign_id: Cow::Borrowed(campaign_id),
            previous: change.previous,
            status: change.status,
            occurred_at: change.at,
            cause_event_id: Cow::Borrowed(cause_event_id),
            counts: Counts::new(&change.counts, recipients, dispatched),
        };
        let mut payload = Vec::with_capacity(512);
        record.encode(self.output_format, &mut payload);
        outputs.push(Output {
            topic: self.topics.campaign_changes.clone(),
            partition: None,
            key: Some(campaign_id.as_bytes().to_vec()),
            payload: Some(payload),
            headers: Some(self.content_type_headers()),
        });
    }

    fn content_type_headers(&self) -> OwnedHeaders {
        OwnedHeaders::new().insert(Header { key: CONTENT_TYPE_HEADER, value: Some(self.output_format.media_type()) })
    }
}

/// Returns the value of the first header named `name`.
fn header<'r>(record: &'r BorrowedMessage<'_>, name: &str) -> Option<&'r [u8]> {
    record.headers()?.iter().find(|header| header.key.eq_ignore_ascii_case(name))?.value
}

impl Processor {
    /// Counts a consumed input event and records its age.
    fn observe_event(&self, kind: &'static str, occurred_at: Timestamp) {
        self.metrics.event_consumed(kind);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        self.metrics.event_age((now - occurred_at.as_millis()) as f64 / 1000.0);
    }
}
