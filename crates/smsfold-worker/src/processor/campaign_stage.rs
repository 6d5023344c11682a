//! The campaign stage. Campaign events are checked and forwarded to the
//! campaign stage topic, where they meet their campaign's message updates,
//! which come packed per campaign and batch (see `update_packs`). The stage
//! folds both and broadcasts cancellations.

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use smsfold_domain::{CampaignFold, MessageUpdate, Timestamp};
use smsfold_wire::changelog;
use smsfold_wire::internal::{CampaignCancelledRecord, MessageUpdatePack, MessageUpdateRecord};
use smsfold_wire::{decode_campaign_event, Format, CONTENT_TYPE_HEADER};

use super::{header, Processor, CAMPAIGN_EVENT, MESSAGE_UPDATE, MESSAGE_UPDATES, RECORD_TYPE_HEADER};
use crate::output::{Output, Outputs};
use crate::projections::Projections;

impl Processor {
    /// Checks a campaign event and forwards it, unchanged, to the campaign
    /// stage topic keyed by campaign id.
    pub(super) fn on_campaign_event(&self, record: &BorrowedMessage<'_>, outputs: &mut Outputs) {
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

    pub(super) fn on_campaign_stage_record(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let fold = projections.campaigns.entry(record.partition()).or_default();
        let value = record.payload().unwrap_or_default();
        match header(record, RECORD_TYPE_HEADER) {
            Some(MESSAGE_UPDATES) => {
                // A pack that does not decode is dead-lettered whole: none
                // of its updates is applied.
                let updates = match MessageUpdatePack::decode(value) {
                    Ok(updates) => updates,
                    Err(error) => return self.decode_failed(record, &error, outputs),
                };
                for update in &updates {
                    self.apply_update(fold, record.partition(), update, outputs);
                }
                if let Some(update) = updates.first() {
                    self.campaign_entry(fold, record.partition(), &update.campaign_id, outputs);
                }
                return;
            }
            Some(MESSAGE_UPDATE) => {
                let update = match MessageUpdateRecord::decode(value) {
                    Ok(update) => update,
                    Err(error) => return self.decode_failed(record, &error, outputs),
                };
                self.apply_update(fold, record.partition(), &update, outputs);
                self.campaign_entry(fold, record.partition(), &update.campaign_id, outputs);
                return;
            }
            _ => {}
        }

        let format = match Format::detect(header(record, CONTENT_TYPE_HEADER), value) {
            Ok(format) => format,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        let event = match decode_campaign_event(format, value) {
            Ok(event) => event,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        self.observe_event(event.kind.name(), event.occurred_at);
        let change = match fold.apply(&event) {
            Ok(change) => change,
            Err(reject) => return self.dead_letter(record, reject.reason(), &reject.to_string(), outputs),
        };
        let projection = fold.get(&event.campaign_id);
        if let Some(projection) = &projection {
            let (key, value) = changelog::campaign_record(projection);
            self.changelog(&self.campaign_changelog, record.partition(), key, Some(value), outputs);
        }
        let Some(change) = change else { return };
        let cancelled = change.status == smsfold_domain::CampaignStatus::Cancelled;
        self.campaign_change(&event.campaign_id, change, projection, &event.event_id, outputs);
        if cancelled {
            self.broadcast_cancellation(&event.campaign_id, &event.event_id, event.occurred_at, outputs);
        }
    }

    /// Folds one message update into its campaign and publishes what it
    /// causes, but not the campaign's changelog entry (see
    /// [`campaign_entry`](Self::campaign_entry)).
    fn apply_update(&self, fold: &mut CampaignFold, partition: i32, update: &MessageUpdateRecord, outputs: &mut Outputs) {
        let update_of = MessageUpdate {
            campaign_id: &update.campaign_id,
            message_id: &update.message_id,
            status: update.status,
            segments: update.segments,
            at: update.status_at,
            previous: update.previous,
        };
        // An update that may arrive twice, or one from an smsfold that did
        // not send the previous status, is counted by an entry. Updates of
        // an at-least-once worker may be repeated after a crash, and an
        // exactly-once worker that takes over reads the copies too: the
        // first copy makes the entry, so the others change nothing.
        let keep_entry = self.campaign_message_entries || update.may_repeat || !update.previous_known;
        let write_entry = keep_entry || fold.has_message_entries(&update.campaign_id);
        // What the counts held for the message: its entry or, without one,
        // its previous update.
        let counted = if write_entry { fold.message(&update.campaign_id, &update.message_id) } else { None };
        let counted = counted.or(update.previous);
        let change = if keep_entry { fold.record(&update_of) } else { fold.count(&update_of) };
        // A message with an entry (kept as above, or restored from a
        // changelog that had them) is counted by it, so the entry in the
        // changelog follows each change.
        if write_entry {
            if let Some((status, segments)) = fold.message(&update.campaign_id, &update.message_id) {
                let (key, value) =
                    changelog::campaign_message_record(&update.campaign_id, &update.message_id, status, segments, counted);
                self.changelog(&self.campaign_changelog, partition, key, Some(value), outputs);
            }
        }
        if let Some(change) = change {
            let projection = fold.get(&update.campaign_id);
            self.campaign_change(&update.campaign_id, change, projection, &update.cause_event_id, outputs);
        }
    }

    /// Writes a campaign's changelog entry, with its counts, after its
    /// updates of one pack. It follows the pack's campaign message entries,
    /// if any, so a restore ends with the counts it contains. At least once
    /// the changelog is written without a transaction, and a worker can stop
    /// between a batch's message entries and this entry. A restore then moves
    /// each of those messages from what its entry records as counted before,
    /// on top of the last counts entry. The batch writes each key once, and
    /// a rewritten entry keeps the counted state of its first write
    /// (`changelog::combine_rewrite`).
    fn campaign_entry(&self, fold: &CampaignFold, partition: i32, campaign_id: &str, outputs: &mut Outputs) {
        if let Some(projection) = fold.get(campaign_id) {
            let (key, value) = changelog::campaign_record(&projection);
            self.changelog(&self.campaign_changelog, partition, key, Some(value), outputs);
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
}
