//! The records of the carrier join stage, always in protobuf
//! (`smsfold.v1.internal`): carrier links and pending receipts on the
//! carrier join topic and in its changelog, and resolved receipts on the
//! message commands topic.
//!
//! A receipt that names only the carrier's id travels with the record it
//! came in ([`OriginalRecord`]), so that it can still be dead-lettered with
//! its original key, value and headers when it never finds its message.

use prost::Message;
use smsfold_domain::{CarrierReport, MessageEvent, MessageEventKind, ReceiptOutcome, Segment, Timestamp};

use crate::error::DecodeError;
use crate::proto::internal;

/// One carrier id of a sent message, under one key a receipt may look it
/// up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierLinkRecord {
    /// The key the record is published under.
    pub join_key: String,
    /// The carrier id as the sent event wrote it.
    pub carrier_id: String,
    pub message_id: String,
    pub segment: Segment,
    pub sent_at: Timestamp,
    pub sent_event_id: String,
    /// The message events partition of the sent event, and so the message's
    /// partition of the message commands topic.
    pub message_partition: i32,
}

/// A consumed record, as the dead-letter topic needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OriginalRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// Header names and values, in their order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// A delivery receipt after smsfold read it from its SMPP form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub event_id: String,
    pub occurred_at: Timestamp,
    pub outcome: ReceiptOutcome,
    pub error_code: u32,
    pub done_at: Option<Timestamp>,
    pub carrier: Option<CarrierReport>,
}

impl ReadReceipt {
    /// Builds the message event that applies this receipt to `message_id`,
    /// for `segment` of it when the message has several.
    pub fn event(&self, message_id: &str, segment: Option<Segment>) -> MessageEvent {
        MessageEvent {
            event_id: self.event_id.clone(),
            occurred_at: self.occurred_at,
            message_id: message_id.to_owned(),
            kind: MessageEventKind::DeliveryReceipt {
                outcome: self.outcome,
                error_code: self.error_code,
                done_at: self.done_at,
                carrier: self.carrier.clone(),
                segment: segment.filter(|segment| segment.count > 1),
            },
        }
    }
}

/// A receipt that names only a carrier id, waiting for that id's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReceiptRecord {
    /// The key the record is published under: the receipt's first carrier key.
    pub join_key: String,
    pub carrier_id: String,
    pub receipt: ReadReceipt,
    pub original: OriginalRecord,
}

/// A receipt matched to its message through a carrier link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedReceiptRecord {
    pub pending: PendingReceiptRecord,
    pub message_id: String,
    pub segment: Segment,
}

impl CarrierLinkRecord {
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        Self::from_proto(internal::CarrierLink::decode(value)?)
    }

    fn to_proto(&self) -> internal::CarrierLink {
        internal::CarrierLink {
            join_key: self.join_key.clone(),
            carrier_id: self.carrier_id.clone(),
            message_id: self.message_id.clone(),
            segment_index: u32::from(self.segment.index),
            segment_count: u32::from(self.segment.count),
            sent_at_ms: self.sent_at.as_millis(),
            sent_event_id: self.sent_event_id.clone(),
            message_partition: self.message_partition,
        }
    }

    fn from_proto(link: internal::CarrierLink) -> Result<Self, DecodeError> {
        if link.join_key.is_empty() {
            return Err(DecodeError::MissingField("join_key"));
        }
        if link.message_id.is_empty() {
            return Err(DecodeError::MissingField("message_id"));
        }
        Ok(CarrierLinkRecord {
            join_key: link.join_key,
            carrier_id: link.carrier_id,
            message_id: link.message_id,
            segment: segment(link.segment_index, link.segment_count)?,
            sent_at: Timestamp::from_millis(link.sent_at_ms),
            sent_event_id: link.sent_event_id,
            message_partition: link.message_partition,
        })
    }
}

impl PendingReceiptRecord {
    pub fn encode(&self) -> Vec<u8> {
        self.to_proto().encode_to_vec()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        Self::from_proto(internal::PendingReceipt::decode(value)?)
    }

    fn to_proto(&self) -> internal::PendingReceipt {
        let receipt = &self.receipt;
        let original = &self.original;
        internal::PendingReceipt {
            join_key: self.join_key.clone(),
            carrier_id: self.carrier_id.clone(),
            event_id: receipt.event_id.clone(),
            occurred_at_ms: receipt.occurred_at.as_millis(),
            outcome: outcome_to_proto(receipt.outcome) as i32,
            error_code: receipt.error_code,
            done_at_ms: receipt.done_at.map(Timestamp::as_millis),
            report: receipt.carrier.as_ref().map(report_to_proto),
            original: Some(internal::OriginalRecord {
                key: original.key.clone(),
                value: original.value.clone(),
                headers: original
                    .headers
                    .iter()
                    .map(|(key, value)| internal::OriginalHeader { key: key.clone(), value: value.clone() })
                    .collect(),
                topic: original.topic.clone(),
                partition: original.partition,
                offset: original.offset,
            }),
        }
    }

    fn from_proto(pending: internal::PendingReceipt) -> Result<Self, DecodeError> {
        if pending.join_key.is_empty() {
            return Err(DecodeError::MissingField("join_key"));
        }
        let original = pending.original.unwrap_or_default();
        Ok(PendingReceiptRecord {
            join_key: pending.join_key,
            carrier_id: pending.carrier_id,
            receipt: ReadReceipt {
                event_id: pending.event_id,
                occurred_at: Timestamp::from_millis(pending.occurred_at_ms),
                outcome: outcome_from_proto(pending.outcome)?,
                error_code: pending.error_code,
                done_at: pending.done_at_ms.map(Timestamp::from_millis),
                carrier: pending.report.map(report_from_proto),
            },
            original: OriginalRecord {
                key: original.key,
                value: original.value,
                headers: original.headers.into_iter().map(|header| (header.key, header.value)).collect(),
                topic: original.topic,
                partition: original.partition,
                offset: original.offset,
            },
        })
    }
}

impl ResolvedReceiptRecord {
    pub fn encode(&self) -> Vec<u8> {
        internal::ResolvedReceipt {
            receipt: Some(self.pending.to_proto()),
            message_id: self.message_id.clone(),
            segment_index: u32::from(self.segment.index),
            segment_count: u32::from(self.segment.count),
        }
        .encode_to_vec()
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let resolved = internal::ResolvedReceipt::decode(value)?;
        if resolved.message_id.is_empty() {
            return Err(DecodeError::MissingField("message_id"));
        }
        let pending = resolved.receipt.ok_or(DecodeError::MissingField("receipt"))?;
        Ok(ResolvedReceiptRecord {
            pending: PendingReceiptRecord::from_proto(pending)?,
            message_id: resolved.message_id,
            segment: segment(resolved.segment_index, resolved.segment_count)?,
        })
    }
}

fn segment(index: u32, count: u32) -> Result<Segment, DecodeError> {
    let (Ok(index), Ok(count)) = (u16::try_from(index), u16::try_from(count)) else {
        return Err(DecodeError::invalid("segment", format!("segment {index} of {count} is out of range")));
    };
    Segment::new(index, count)
        .ok_or_else(|| DecodeError::invalid("segment", format!("segment {index} of {count} does not exist")))
}

/// Converts a receipt outcome to its internal protobuf number.
pub(crate) fn outcome_to_proto(outcome: ReceiptOutcome) -> internal::ReadOutcome {
    match outcome {
        ReceiptOutcome::Delivered => internal::ReadOutcome::Delivered,
        ReceiptOutcome::Undelivered => internal::ReadOutcome::Undelivered,
        ReceiptOutcome::Intermediate => internal::ReadOutcome::Intermediate,
        ReceiptOutcome::Unknown => internal::ReadOutcome::Unknown,
    }
}

/// Reads a receipt outcome from its internal protobuf number.
pub(crate) fn outcome_from_proto(number: i32) -> Result<ReceiptOutcome, DecodeError> {
    match internal::ReadOutcome::try_from(number) {
        Ok(internal::ReadOutcome::Delivered) => Ok(ReceiptOutcome::Delivered),
        Ok(internal::ReadOutcome::Undelivered) => Ok(ReceiptOutcome::Undelivered),
        Ok(internal::ReadOutcome::Intermediate) => Ok(ReceiptOutcome::Intermediate),
        Ok(internal::ReadOutcome::Unknown) => Ok(ReceiptOutcome::Unknown),
        _ => Err(DecodeError::invalid("outcome", format!("unknown receipt outcome number {number}"))),
    }
}

pub(crate) fn report_to_proto(report: &CarrierReport) -> internal::CarrierReportState {
    internal::CarrierReportState { stat: report.stat.clone(), err: report.err.clone() }
}

pub(crate) fn report_from_proto(report: internal::CarrierReportState) -> CarrierReport {
    CarrierReport::new(report.stat.as_deref(), report.err.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changelog::{self, ChangelogEntry};

    fn link() -> CarrierLinkRecord {
        CarrierLinkRecord {
            join_key: "n:a1b2c3d".into(),
            carrier_id: "169552957".into(),
            message_id: "msg-7f3a".into(),
            segment: Segment { index: 1, count: 2 },
            sent_at: Timestamp::from_millis(1_710_525_600_480),
            sent_event_id: "evt-0005".into(),
            message_partition: 3,
        }
    }

    fn pending() -> PendingReceiptRecord {
        PendingReceiptRecord {
            join_key: "n:a1b2c3d".into(),
            carrier_id: "0A1B2C3D".into(),
            receipt: ReadReceipt {
                event_id: "evt-0007".into(),
                occurred_at: Timestamp::from_millis(1_710_525_604_900),
                outcome: ReceiptOutcome::Unknown,
                error_code: 34,
                done_at: None,
                carrier: Some(CarrierReport::new(Some("NOROUTE"), Some("034"))),
            },
            original: OriginalRecord {
                key: Some(b"0A1B2C3D".to_vec()),
                value: Some(b"{}".to_vec()),
                headers: vec![("content-type".into(), Some(b"application/json".to_vec())), ("empty".into(), None)],
                topic: "message-events".into(),
                partition: 2,
                offset: 41,
            },
        }
    }

    #[test]
    fn link_round_trips() {
        assert_eq!(CarrierLinkRecord::decode(&link().encode()).unwrap(), link());
    }

    #[test]
    fn pending_round_trips() {
        assert_eq!(PendingReceiptRecord::decode(&pending().encode()).unwrap(), pending());
    }

    #[test]
    fn resolved_round_trips() {
        let resolved = ResolvedReceiptRecord { pending: pending(), message_id: "msg-7f3a".into(), segment: Segment { index: 0, count: 1 } };

        assert_eq!(ResolvedReceiptRecord::decode(&resolved.encode()).unwrap(), resolved);
    }

    #[test]
    fn segment_past_count_rejected() {
        let mut value = link().to_proto();
        value.segment_index = 2;

        let error = CarrierLinkRecord::from_proto(value).unwrap_err();

        assert_eq!(error.reason(), "invalid_value");
    }

    #[test]
    fn changelog_entries_round_trip() {
        let (key, value) = changelog::carrier_link_record(&link(), "169552957");
        assert_eq!(changelog::decode(&key, Some(&value)).unwrap(), Some(ChangelogEntry::CarrierLink(link())));

        let (key, value) = changelog::pending_receipt_record(&pending());
        assert_eq!(key, changelog::pending_receipt_key("n:a1b2c3d", "evt-0007"));
        assert_eq!(changelog::decode(&key, Some(&value)).unwrap(), Some(ChangelogEntry::PendingReceipt(pending())));
    }

    #[test]
    fn read_receipt_event_drops_single_segment() {
        let event = pending().receipt.event("msg-7f3a", Some(Segment { index: 0, count: 1 }));

        assert!(matches!(event.kind, MessageEventKind::DeliveryReceipt { segment: None, .. }));
    }
}
