//! The message stage: message events, and the commands other stages send it
//! on the message commands topic (campaign cancellations and receipts
//! matched by carrier id), folded per partition of the message events topic.
//!
//! A receipt in SMPP form is read here with the configured state table.
//! When it names its message it is folded at once. When it names only the
//! carrier's id it goes to the carrier join topic, as do the carrier ids of
//! every sent event that is applied.

use rdkafka::message::{BorrowedMessage, Message};
use smsfold_domain::{MessageEvent, MessageEventKind, Segment};
use smsfold_smpp::{link_join_keys, read_smpp_receipt, receipt_join_key};
use smsfold_wire::carrier_join::{CarrierLinkRecord, PendingReceiptRecord, ReadReceipt, ResolvedReceiptRecord};
use smsfold_wire::changelog;
use smsfold_wire::decode_message_event;
use smsfold_wire::internal::{CampaignCancelledRecord, MessageUpdateRecord};
use tracing::debug;

use super::{header, Processor, Source, CARRIER_LINK, PENDING_RECEIPT, RECORD_TYPE_HEADER, RESOLVED_RECEIPT};
use crate::dead_letter::original_record;
use crate::metrics;
use crate::output::Outputs;
use crate::projections::Projections;

impl Processor {
    pub(super) fn on_message_event(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let Some((value, format)) = self.read_value(record, outputs) else { return };
        let event = match decode_message_event(format, value) {
            Ok(event) => event,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        // A receipt that names only the carrier's id is keyed by that id.
        if !event.message_id.is_empty() && !self.check_key(record, "message_id", &event.message_id, outputs) {
            return;
        }
        self.observe_event(event.kind.name(), event.occurred_at);

        if let MessageEventKind::SmppReceipt { receipt, error_code, done_at } = &event.kind {
            let reading = match read_smpp_receipt(receipt, *error_code, *done_at, &self.receipt_states) {
                Ok(reading) => reading,
                Err(error) => return self.dead_letter(record, error.reason(), &error.to_string(), outputs),
            };
            metrics::receipt_read(reading.outcome.as_str());
            if reading.ids_disagree {
                debug!(event_id = %event.event_id, carrier_id = %reading.carrier_id, "receipt text names another id than its TLV; using the TLV's");
            }
            let read = ReadReceipt {
                event_id: event.event_id.clone(),
                occurred_at: event.occurred_at,
                outcome: reading.outcome,
                error_code: reading.error_code,
                done_at: reading.done_at,
                carrier: Some(reading.carrier),
            };
            if event.message_id.is_empty() {
                return self.send_pending(record, &reading.carrier_id, read, outputs);
            }
            let decided = read.event(&event.message_id, None);
            self.apply_message_event(&decided, record.partition(), Source::Consumed(record), projections, outputs);
            return;
        }

        let applied = self.apply_message_event(&event, record.partition(), Source::Consumed(record), projections, outputs);
        if let (true, MessageEventKind::Sent { carrier_message_ids }) = (applied, &event.kind) {
            self.send_links(&event, carrier_message_ids, record.partition(), outputs);
        }
    }

    pub(super) fn on_message_command(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let Some(value) = record.payload() else { return };
        if header(record, RECORD_TYPE_HEADER) == Some(RESOLVED_RECEIPT) {
            let resolved = match ResolvedReceiptRecord::decode(value) {
                Ok(resolved) => resolved,
                Err(error) => return self.decode_failed(record, &error, outputs),
            };
            let event = resolved.pending.receipt.event(&resolved.message_id, Some(resolved.segment));
            let source = Source::Carried(&resolved.pending.original);
            self.apply_message_event(&event, record.partition(), source, projections, outputs);
            return;
        }

        let command = match CampaignCancelledRecord::decode(value) {
            Ok(command) => command,
            Err(error) => return self.decode_failed(record, &error, outputs),
        };
        let fold = projections.messages.entry(record.partition()).or_default();
        let canceled = fold.cancel_campaign(&command.campaign_id, &command.cause_event_id, command.occurred_at);
        let (key, value) =
            changelog::cancellation_record(&command.campaign_id, &command.cause_event_id, command.occurred_at);
        self.changelog(&self.message_changelog, record.partition(), key, Some(value), outputs);
        for message in &canceled {
            if let Some(projection) = fold.get(&message.message_id) {
                let (key, value) = changelog::message_record(&projection);
                self.changelog(&self.message_changelog, record.partition(), key, Some(value), outputs);
            }
        }
        debug!(campaign_id = %command.campaign_id, partition = record.partition(), canceled = canceled.len(), "applied a campaign cancellation");
        for message in canceled {
            let campaign = Some(command.campaign_id.as_str());
            self.message_change(&message.message_id, campaign, message.change, &command.cause_event_id, None, outputs);
            let update = MessageUpdateRecord {
                campaign_id: command.campaign_id.clone(),
                message_id: message.message_id,
                status: message.campaign.status,
                segments: message.campaign.segments,
                status_at: message.campaign.at,
                cause_event_id: command.cause_event_id.clone(),
                previous: message.campaign.previous,
                previous_known: true,
                may_repeat: false,
            };
            self.send_update(update, outputs);
        }
    }

    /// Folds one event into its partition's message fold and publishes what
    /// it causes. Returns false when the fold rejected it, after
    /// dead-lettering `source`.
    fn apply_message_event(
        &self,
        event: &MessageEvent,
        partition: i32,
        source: Source<'_, '_>,
        projections: &mut Projections,
        outputs: &mut Outputs,
    ) -> bool {
        let fold = projections.messages.entry(partition).or_default();
        let applied = match fold.apply(event) {
            Ok(applied) => applied,
            Err(reject) => {
                self.dead_letter_source(source, reject.reason(), &reject.to_string(), outputs);
                return false;
            }
        };

        let campaign_id = applied.campaign.map(|link| fold.campaign_id(link.campaign).to_owned());
        let claimed_campaign = event.kind.attributes().and_then(|attributes| attributes.campaign_id.as_deref());
        let known_campaign = claimed_campaign.or(campaign_id.as_deref());
        let projection = fold.get(&event.message_id);
        if let Some(change) = applied.change {
            // The event's own change set the status, so the projection's
            // status report is the event's raw report, if it had one.
            let carrier = projection.as_ref().and_then(|projection| projection.receipts.status_report.as_ref());
            self.message_change(&event.message_id, known_campaign, change, &event.event_id, carrier, outputs);
        }
        let mut cause = event.event_id.as_str();
        if let (Some(change), Some(link)) = (applied.canceled, applied.campaign) {
            cause = fold.cancellation_event_id(link.campaign).unwrap_or(cause);
            self.message_change(&event.message_id, known_campaign, change, cause, None, outputs);
        }
        if let Some(projection) = &projection {
            let (key, value) = changelog::message_record(projection);
            self.changelog(&self.message_changelog, partition, key, Some(value), outputs);
        }
        if let (Some(link), Some(campaign_id)) = (applied.campaign, campaign_id) {
            let update = MessageUpdateRecord {
                campaign_id,
                message_id: event.message_id.clone(),
                status: link.status,
                segments: link.segments,
                status_at: link.at,
                cause_event_id: cause.to_owned(),
                previous: link.previous,
                previous_known: true,
                may_repeat: false,
            };
            self.send_update(update, outputs);
        }
        true
    }

    /// Publishes each carrier id of a sent event under every key a receipt
    /// may look it up by.
    fn send_links(&self, event: &MessageEvent, carrier_ids: &[String], partition: i32, outputs: &mut Outputs) {
        // The decoder allows at most 65535 ids.
        let count = u16::try_from(carrier_ids.len()).unwrap_or(u16::MAX);
        for (index, carrier_id) in (0..count).zip(carrier_ids) {
            let Some(segment) = Segment::new(index, count) else { continue };
            for join_key in link_join_keys(carrier_id) {
                let link = CarrierLinkRecord {
                    carrier_id: carrier_id.clone(),
                    message_id: event.message_id.clone(),
                    segment,
                    sent_at: event.occurred_at,
                    sent_event_id: event.event_id.clone(),
                    message_partition: partition,
                    join_key,
                };
                self.internal(&self.topics.carrier_join, None, link.join_key.as_bytes(), CARRIER_LINK, link.encode(), outputs);
            }
        }
    }

    /// Publishes a receipt that names only a carrier id to the carrier join
    /// topic, under the receipt's key.
    fn send_pending(&self, record: &BorrowedMessage<'_>, carrier_id: &str, receipt: ReadReceipt, outputs: &mut Outputs) {
        let Some(join_key) = receipt_join_key(carrier_id) else {
            let error = format!("receipt carrier id {carrier_id:?} is blank, so it cannot be matched to a message");
            return self.dead_letter(record, "receipt_missing_id", &error, outputs);
        };
        let pending = PendingReceiptRecord {
            join_key,
            carrier_id: carrier_id.to_owned(),
            receipt,
            original: original_record(record),
        };
        let key = pending.join_key.clone();
        self.internal(&self.topics.carrier_join, None, key.as_bytes(), PENDING_RECEIPT, pending.encode(), outputs);
    }
}
