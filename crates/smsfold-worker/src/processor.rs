//! Turns each consumed record into the records it causes: status changes,
//! internal records for the other stage, and dead letters.
//!
//! The flow across topics, so that a campaign's counts are right however its
//! messages are spread over partitions and instances:
//! - The message stage folds message events per partition. Each change of a
//!   campaign's message goes to the internal campaign stage topic, keyed by
//!   campaign id.
//! - Campaign events are checked and forwarded to that same topic, so one
//!   campaign's lifecycle events and message updates meet in one partition,
//!   whatever partitioner the platform used for its campaign events.
//! - The campaign stage folds that topic. It sends a cancellation to every
//!   partition of the internal message commands topic. That topic has the
//!   partitions of the message events topic and is assigned with them (range
//!   assignment), so each message stage cancels its own messages.

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use smsfold_domain::{CampaignChange, MessageChange, MessageEvent, MessageUpdate, Timestamp};
use smsfold_wire::changelog;
use smsfold_wire::internal::{CampaignCancelledRecord, MessageUpdateRecord};
use smsfold_wire::{
    decode_campaign_event, decode_message_event, CampaignStatusChange, Counts, DecodeError, Format,
    MessageStatusChange, CONTENT_TYPE_HEADER,
};
use tracing::debug;

use crate::config::Topics;
use crate::dead_letter::dead_letter;
use crate::metrics;
use crate::output::{Output, Outputs};
use crate::projections::Projections;

/// Header naming what an internal campaign stage record holds.
pub const RECORD_TYPE_HEADER: &str = "smsfold-record";
const CAMPAIGN_EVENT: &[u8] = b"campaign-event";
const MESSAGE_UPDATE: &[u8] = b"message-update";

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
        }
    }

    fn dead_letter(&self, record: &BorrowedMessage<'_>, reason: &'static str, error: &str, outputs: &mut Outputs) {
        outputs.push(dead_letter(&self.topics.dead_letter, record, reason, error));
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

    fn on_message_event(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let Some((value, format)) = self.read_value(record, outputs) else { return };
        let event = match decode_message_event(format, value) {
            Ok(event) => event,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        if !self.check_key(record, "message_id", &event.message_id, outputs) {
            return;
        }
        metrics::event_consumed(event.kind.name());
        observe_age(event.occurred_at);

        let fold = projections.messages.entry(record.partition()).or_default();
        let applied = match fold.apply(&event) {
            Ok(applied) => applied,
            Err(reject) => return self.dead_letter(record, reject.reason(), &reject.to_string(), outputs),
        };

        let campaign_id = applied.campaign.map(|link| fold.campaign_id(link.campaign).to_owned());
        let known_campaign = campaign_of(&event).or(campaign_id.as_deref());
        if let Some(change) = applied.change {
            self.message_change(&event.message_id, known_campaign, change, &event.event_id, outputs);
        }
        let mut cause = event.event_id.as_str();
        if let (Some(change), Some(link)) = (applied.canceled, applied.campaign) {
            cause = fold.cancellation_event_id(link.campaign).unwrap_or(cause);
            self.message_change(&event.message_id, known_campaign, change, cause, outputs);
        }
        if let Some(projection) = fold.get(&event.message_id) {
            let (key, value) = changelog::message_record(&projection);
            self.changelog(&self.message_changelog, record.partition(), key, value, outputs);
        }
        if let (Some(link), Some(campaign_id)) = (applied.campaign, campaign_id) {
            let update = MessageUpdateRecord {
                campaign_id,
                message_id: event.message_id.clone(),
                status: link.status,
                segments: link.segments,
                status_at: link.at,
                cause_event_id: cause.to_owned(),
            };
            self.send_update(&update, outputs);
        }
    }

    fn on_message_command(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let Some(value) = record.payload() else { return };
        let command = match CampaignCancelledRecord::decode(value) {
            Ok(command) => command,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        let fold = projections.messages.entry(record.partition()).or_default();
        let canceled = fold.cancel_campaign(&command.campaign_id, &command.cause_event_id, command.occurred_at);
        let (key, value) =
            changelog::cancellation_record(&command.campaign_id, &command.cause_event_id, command.occurred_at);
        self.changelog(&self.message_changelog, record.partition(), key, value, outputs);
        for message in &canceled {
            if let Some(projection) = fold.get(&message.message_id) {
                let (key, value) = changelog::message_record(&projection);
                self.changelog(&self.message_changelog, record.partition(), key, value, outputs);
            }
        }
        debug!(campaign_id = %command.campaign_id, partition = record.partition(), canceled = canceled.len(), "applied a campaign cancellation");
        for message in canceled {
            self.message_change(
                &message.message_id,
                Some(&command.campaign_id),
                message.change,
                &command.cause_event_id,
                outputs,
            );
            let update = MessageUpdateRecord {
                campaign_id: command.campaign_id.clone(),
                message_id: message.message_id,
                status: message.campaign.status,
                segments: message.campaign.segments,
                status_at: message.campaign.at,
                cause_event_id: command.cause_event_id.clone(),
            };
            self.send_update(&update, outputs);
        }
    }

    /// Checks a campaign event and forwards it, unchanged, to the campaign
    /// stage topic keyed by campaign id.
    fn on_campaign_event(&self, record: &BorrowedMessage<'_>, outputs: &mut Outputs) {
        let Some((value, format)) = self.read_value(record, outputs) else { return };
        let event = match decode_campaign_event(format, value) {
            Ok(event) => event,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        if !self.check_key(record, "campaign_id", &event.campaign_id, outputs) {
            return;
        }
        let mut headers = OwnedHeaders::new();
        if let Some(original) = record.headers() {
            for header in original.iter() {
                headers = headers.insert(Header { key: header.key, value: header.value });
            }
        }
        headers = headers.insert(Header { key: RECORD_TYPE_HEADER, value: Some(CAMPAIGN_EVENT) });
        outputs.push(Output {
            topic: self.topics.campaign_stage.clone(),
            partition: None,
            key: Some(event.campaign_id.into_bytes()),
            payload: Some(value.to_vec()),
            headers: Some(headers),
        });
    }

    fn on_campaign_stage_record(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let fold = projections.campaigns.entry(record.partition()).or_default();
        let value = record.payload().unwrap_or_default();
        if header(record, RECORD_TYPE_HEADER) == Some(MESSAGE_UPDATE) {
            let update = match MessageUpdateRecord::decode(value) {
                Ok(update) => update,
                Err(error) => return self.decode_failed(record, &error, outputs),
            };
            let change = fold.record(&MessageUpdate {
                campaign_id: &update.campaign_id,
                message_id: &update.message_id,
                status: update.status,
                segments: update.segments,
                at: update.status_at,
            });
            if let Some((status, segments)) = fold.message(&update.campaign_id, &update.message_id) {
                let (key, value) =
                    changelog::campaign_message_record(&update.campaign_id, &update.message_id, status, segments);
                self.changelog(&self.campaign_changelog, record.partition(), key, value, outputs);
            }
            if let Some(change) = change {
                let projection = fold.get(&update.campaign_id);
                if let Some(projection) = &projection {
                    let (key, value) = changelog::campaign_record(projection);
                    self.changelog(&self.campaign_changelog, record.partition(), key, value, outputs);
                }
                self.campaign_change(&update.campaign_id, change, projection, &update.cause_event_id, outputs);
            }
            return;
        }

        let format = match Format::detect(header(record, CONTENT_TYPE_HEADER), value) {
            Ok(format) => format,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        let event = match decode_campaign_event(format, value) {
            Ok(event) => event,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        metrics::event_consumed(event.kind.name());
        observe_age(event.occurred_at);
        let change = match fold.apply(&event) {
            Ok(change) => change,
            Err(reject) => return self.dead_letter(record, reject.reason(), &reject.to_string(), outputs),
        };
        let projection = fold.get(&event.campaign_id);
        if let Some(projection) = &projection {
            let (key, value) = changelog::campaign_record(projection);
            self.changelog(&self.campaign_changelog, record.partition(), key, value, outputs);
        }
        let Some(change) = change else { return };
        let cancelled = change.status == smsfold_domain::CampaignStatus::Cancelled;
        self.campaign_change(&event.campaign_id, change, projection, &event.event_id, outputs);
        if cancelled {
            self.broadcast_cancellation(&event.campaign_id, &event.event_id, event.occurred_at, outputs);
        }
    }

    fn broadcast_cancellation(&self, campaign_id: &str, event_id: &str, at: Timestamp, outputs: &mut Outputs) {
        let command = CampaignCancelledRecord {
            campaign_id: campaign_id.to_owned(),
            cause_event_id: event_id.to_owned(),
            occurred_at: at,
        };
        let mut payload = Vec::new();
        command.encode(&mut payload);
        for partition in 0..self.message_command_partitions {
            outputs.push(Output {
                topic: self.topics.message_commands.clone(),
                partition: Some(partition),
                key: Some(campaign_id.as_bytes().to_vec()),
                payload: Some(payload.clone()),
                headers: None,
            });
        }
    }

    /// Adds a changelog entry for the stage partition `partition`.
    fn changelog(&self, topic: &str, partition: i32, key: Vec<u8>, value: Vec<u8>, outputs: &mut Outputs) {
        outputs.changelog.push(Output {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(key),
            payload: Some(value),
            headers: None,
        });
    }

    fn send_update(&self, update: &MessageUpdateRecord, outputs: &mut Outputs) {
        let mut payload = Vec::with_capacity(64);
        update.encode(&mut payload);
        let headers = OwnedHeaders::new().insert(Header { key: RECORD_TYPE_HEADER, value: Some(MESSAGE_UPDATE) });
        outputs.push(Output {
            topic: self.topics.campaign_stage.clone(),
            partition: None,
            key: Some(update.campaign_id.as_bytes().to_vec()),
            payload: Some(payload),
            headers: Some(headers),
        });
    }

    fn message_change(
        &self,
        message_id: &str,
        campaign_id: Option<&str>,
        change: MessageChange,
        cause_event_id: &str,
        outputs: &mut Outputs,
    ) {
        metrics::message_status_changed(change.status.as_str());
        let record = MessageStatusChange {
            message_id: Cow::Borrowed(message_id),
            campaign_id: campaign_id.map(Cow::Borrowed),
            previous: change.previous,
            status: change.status,
            occurred_at: change.at,
            cause_event_id: Cow::Borrowed(cause_event_id),
            error_code: change.error_code,
            receipt_stat: None,
            receipt_err: None,
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

/// Returns the campaign id an event names, if any.
fn campaign_of(event: &MessageEvent) -> Option<&str> {
    event.kind.attributes().and_then(|attributes| attributes.campaign_id.as_deref())
}

/// Returns the value of the first header named `name`.
fn header<'r>(record: &'r BorrowedMessage<'_>, name: &str) -> Option<&'r [u8]> {
    record.headers()?.iter().find(|header| header.key.eq_ignore_ascii_case(name))?.value
}

fn observe_age(occurred_at: Timestamp) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    metrics::event_age((now - occurred_at.as_millis()) as f64 / 1000.0);
}
