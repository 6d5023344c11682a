//! The carrier join stage: carrier links of sent events and receipts that
//! name only a carrier id meet per partition of the carrier join topic
//! (see `smsfold_smpp::CarrierJoin` for the rules). A matched receipt goes
//! to its message's partition of the message commands topic.
//!
//! After each record the stage dead-letters, as `receipt_unmatched`, the
//! receipts that waited longer than the configured wait in event time. The
//! partition's event time is the latest time of its sent events and
//! receipts, so a partition that receives nothing keeps its receipts
//! waiting.

use rdkafka::message::{BorrowedMessage, Message};
use smsfold_smpp::{Joined, Link, MatchRule, Pending};
use smsfold_wire::carrier_join::{CarrierLinkRecord, PendingReceiptRecord, ResolvedReceiptRecord};
use smsfold_wire::changelog;
use tracing::debug;

use super::{header, Processor, Source, PENDING_RECEIPT, RECORD_TYPE_HEADER, RESOLVED_RECEIPT};
use crate::metrics;
use crate::output::Outputs;
use crate::projections::{CarrierFold, LinkTarget, Projections};

impl Processor {
    pub(super) fn on_carrier_join_record(&self, record: &BorrowedMessage<'_>, projections: &mut Projections, outputs: &mut Outputs) {
        let partition = record.partition();
        let value = record.payload().unwrap_or_default();
        let join = projections.carriers.entry(partition).or_default();
        if header(record, RECORD_TYPE_HEADER) == Some(PENDING_RECEIPT) {
            match PendingReceiptRecord::decode(value) {
                Ok(pending) => self.join_receipt(join, partition, pending, outputs),
                Err(error) => return self.decode_failed(record, &error, outputs),
            }
        } else {
            match CarrierLinkRecord::decode(value) {
                Ok(link) => self.join_link(join, partition, link, outputs),
                Err(error) => return self.decode_failed(record, &error, outputs),
            }
        }
        self.expire_pending(join, partition, outputs);
    }

    fn join_link(&self, join: &mut CarrierFold, partition: i32, record: CarrierLinkRecord, outputs: &mut Outputs) {
        let target = LinkTarget {
            message_id: record.message_id.as_str().into(),
            segment: record.segment,
            message_partition: record.message_partition,
        };
        let link = Link::new(&record.carrier_id, record.sent_at.as_millis(), &record.sent_event_id, target.clone());
        let added = join.add_link(&record.join_key, link);
        if !added.stored {
            return;
        }
        let spelling = smsfold_smpp::carrier_spelling(&record.carrier_id);
        let (key, value) = changelog::carrier_link_record(&record, &spelling);
        self.changelog(&self.carrier_changelog, partition, key, Some(value), outputs);

        for (pending, rule) in added.matched {
            let key = changelog::pending_receipt_key(&pending.data.join_key, &pending.event_id);
            self.changelog(&self.carrier_changelog, partition, key, None, outputs);
            self.resolve(pending.data, &target, rule, outputs);
        }
    }

    fn join_receipt(&self, join: &mut CarrierFold, partition: i32, record: PendingReceiptRecord, outputs: &mut Outputs) {
        let receipt = &record.receipt;
        let pending = Pending::new(&record.carrier_id, &receipt.event_id, receipt.occurred_at.as_millis(), record.clone());
        match join.add_receipt(&record.join_key, pending) {
            Joined::Matched { link, rule } => self.resolve(record, &link, rule, outputs),
            Joined::Ambiguous { candidates } => {
                let error = format!(
                    "receipt carrier id {:?} matches {candidates} messages, each the same number in the other base \
                     (decimal or hexadecimal); none is spelled like the receipt's id",
                    record.carrier_id
                );
                self.dead_letter_source(Source::Carried(&record.original), "receipt_ambiguous_carrier_id", &error, outputs);
            }
            Joined::Pending => {
                debug!(event_id = %receipt.event_id, carrier_id = %record.carrier_id, "receipt waits for its sent event");
                let (key, value) = changelog::pending_receipt_record(&record);
                self.changelog(&self.carrier_changelog, partition, key, Some(value), outputs);
            }
        }
    }

    /// Sends a matched receipt to its message's partition of the message
    /// commands topic.
    fn resolve(&self, pending: PendingReceiptRecord, target: &LinkTarget, rule: MatchRule, outputs: &mut Outputs) {
        if !(0..self.message_command_partitions).contains(&target.message_partition) {
            let error = format!(
                "the sent event of carrier id {:?} came from message events partition {}, but the message commands \
                 topic has {} partitions; recreate the carrier join topic after changing partition counts",
                pending.carrier_id, target.message_partition, self.message_command_partitions
            );
            return self.dead_letter_source(Source::Carried(&pending.original), "receipt_unroutable", &error, outputs);
        }
        metrics::receipt_matched(rule.as_str());
        let resolved = ResolvedReceiptRecord { pending, message_id: target.message_id.to_string(), segment: target.segment };
        let topic = &self.topics.message_commands;
        let key = target.message_id.as_bytes();
        self.internal(topic, Some(target.message_partition), key, RESOLVED_RECEIPT, resolved.encode(), outputs);
    }

    /// Dead-letters the receipts of a partition that waited too long.
    fn expire_pending(&self, join: &mut CarrierFold, partition: i32, outputs: &mut Outputs) {
        for (join_key, pending) in join.expire_pending(self.unmatched_receipt_wait_ms) {
            let key = changelog::pending_receipt_key(&join_key, &pending.event_id);
            self.changelog(&self.carrier_changelog, partition, key, None, outputs);
            let error = format!(
                "no sent event recorded carrier id {:?} within {} ms (event time) of the receipt; check that sent \
                 events carry carrier_message_id or segment_carrier_message_ids",
                pending.carrier_id, self.unmatched_receipt_wait_ms
            );
            self.dead_letter_source(Source::Carried(&pending.data.original), "receipt_unmatched", &error, outputs);
        }
    }
}
