//! The events smsfold folds: what happened to a message, and what happened
//! to a campaign. Names are in the past tense; applying an event only updates
//! a projection.

use crate::status::MessageStatus;
use crate::time::Timestamp;

/// The channel a message travels on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Channel {
    #[default]
    Sms,
    Mms,
}

impl Channel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Mms => "mms",
        }
    }
}

/// The maximum length of a carrier message id, in bytes: the 64 characters
/// of an SMPP `message_id` (a C-Octet String of at most 65 bytes with its
/// NUL).
pub const MAX_CARRIER_ID_LEN: usize = 64;

/// One event about one message, keyed by `message_id` on its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// Unique per event; a redelivered event carries the same id.
    pub event_id: String,
    /// When the event happened at its source.
    pub occurred_at: Timestamp,
    /// Empty only for an SMPP receipt that names just the carrier's id.
    pub message_id: String,
    pub kind: MessageEventKind,
}

/// The attributes the platform records for a message when it accepts or
/// receives it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageAttributes {
    /// The campaign the message belongs to; `None` for a one-off message.
    pub campaign_id: Option<String>,
    pub account_id: String,
    pub from: String,
    pub to: String,
    pub channel: Channel,
    /// Number of SMS segments (1 for a short SMS and for MMS).
    pub segments: u16,
}

/// The outcome a delivery receipt reports for its message or for one
/// segment of it, ordered from the least to the most final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReceiptOutcome {
    /// The receipt's state is not in the receipt state table, maps to
    /// unknown there, or is missing. Like an intermediate state it ends
    /// nothing.
    Unknown,
    /// The carrier has the message and has not delivered it yet (accepted,
    /// en route, buffered, scheduled). A later receipt is expected.
    Intermediate,
    Undelivered,
    Delivered,
}

impl ReceiptOutcome {
    /// Returns true for the outcomes that end a message.
    pub const fn is_final(self) -> bool {
        matches!(self, ReceiptOutcome::Delivered | ReceiptOutcome::Undelivered)
    }

    /// Returns the lowercase name used on the wire and as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReceiptOutcome::Unknown => "unknown",
            ReceiptOutcome::Intermediate => "intermediate",
            ReceiptOutcome::Undelivered => "undelivered",
            ReceiptOutcome::Delivered => "delivered",
        }
    }
}

/// The raw `stat` and `err` of an SMPP delivery receipt, as the carrier
/// wrote them, kept on the message's projection.
///
/// Each value is cut to [`CarrierReport::MAX_LEN`] bytes, at a character
/// boundary, so that a malformed receipt cannot grow the projection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CarrierReport {
    /// The receipt state: the text's `stat`, or the SMPP name of the
    /// `message_state` TLV when the text has none.
    pub stat: Option<String>,
    /// The carrier's error code: the text's `err`, or the code of the
    /// `network_error_code` TLV in decimal when the text has none.
    pub err: Option<String>,
}

impl CarrierReport {
    /// The maximum length of `stat` and of `err`, in bytes.
    pub const MAX_LEN: usize = 32;

    /// Builds a report, cutting each value to [`Self::MAX_LEN`] bytes.
    pub fn new(stat: Option<&str>, err: Option<&str>) -> Self {
        CarrierReport { stat: stat.map(cut), err: err.map(cut) }
    }

    pub fn is_empty(&self) -> bool {
        self.stat.is_none() && self.err.is_none()
    }
}

fn cut(value: &str) -> String {
    let mut end = value.len().min(CarrierReport::MAX_LEN);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// One segment of a message that went out in several parts, each with its
/// own carrier id and its own receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Segment {
    /// Zero-based position of the segment in the message.
    pub index: u16,
    /// Segments of the message, at least 1 and above `index`.
    pub count: u16,
}

impl Segment {
    /// Returns the segment, or `None` unless `index < count`.
    pub const fn new(index: u16, count: u16) -> Option<Self> {
        if index < count {
            Some(Segment { index, count })
        } else {
            None
        }
    }
}

/// The value of the SMPP `network_error_code` TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkErrorCode {
    /// The network type `error_code` belongs to, such as 3 for GSM.
    pub network_type: u8,
    pub error_code: u16,
}

/// An SMPP delivery receipt as the platform passed it on, before smsfold has
/// read it: the short message text of the `deliver_sm` and its receipt TLVs.
/// At least one of `text` and `receipted_message_id` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmppReceipt {
    /// The short message text: `id:… sub:… dlvrd:… … stat:… err:… text:…`.
    pub text: Option<String>,
    /// The `receipted_message_id` TLV: the carrier's message id.
    pub receipted_message_id: Option<String>,
    /// The `message_state` TLV.
    pub message_state: Option<u8>,
    /// The `network_error_code` TLV.
    pub network_error_code: Option<NetworkErrorCode>,
}

/// The kinds of message event, one per reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageEventKind {
    Accepted {
        attributes: MessageAttributes,
        /// When the message is to go out; `None` sends it at once.
        send_at: Option<Timestamp>,
    },
    Scheduled {
        send_at: Option<Timestamp>,
    },
    Queued,
    Sending,
    Sent {
        /// The carrier's ids for the message, from its submit responses: one
        /// per segment, in segment order. Empty when the platform gave none.
        carrier_message_ids: Vec<String>,
    },
    Failed {
        error_code: u32,
    },
    /// A receipt whose outcome is decided: by the platform, or by smsfold
    /// after reading an [`SmppReceipt`](MessageEventKind::SmppReceipt).
    DeliveryReceipt {
        outcome: ReceiptOutcome,
        error_code: u32,
        /// The carrier's done time, read as UTC.
        done_at: Option<Timestamp>,
        /// The carrier's raw stat and err, for a receipt read from SMPP.
        carrier: Option<CarrierReport>,
        /// The segment the receipt reports on, for a receipt matched to a
        /// message through one segment's carrier id. `None` reports on the
        /// whole message.
        segment: Option<Segment>,
    },
    /// A receipt in SMPP form, not read yet. The worker reads it into a
    /// [`DeliveryReceipt`](MessageEventKind::DeliveryReceipt) before folding
    /// it. Its `message_id` may be empty: the receipt then names only the
    /// carrier's id.
    SmppReceipt {
        receipt: SmppReceipt,
        /// The error code to use when the receipt gives none.
        error_code: u32,
        /// The done time to use when the receipt gives none.
        done_at: Option<Timestamp>,
    },
    Canceled,
    InboundReceiving {
        attributes: MessageAttributes,
    },
    InboundReceived {
        attributes: MessageAttributes,
    },
}

impl MessageEventKind {
    /// Returns the status this kind of event reports on its own.
    ///
    /// Any receipt shows that a carrier has the message, so a receipt that
    /// ends nothing reports `Sent`. Such receipts are the intermediate and
    /// unknown ones, SMPP receipts not read yet, and the delivered receipt
    /// of one segment of several. The message fold delivers a message of
    /// several segments once every segment is delivered.
    pub fn status(&self) -> MessageStatus {
        match self {
            MessageEventKind::Accepted { .. } => MessageStatus::Accepted,
            MessageEventKind::Scheduled { .. } => MessageStatus::Scheduled,
            MessageEventKind::Queued => MessageStatus::Queued,
            MessageEventKind::Sending => MessageStatus::Sending,
            MessageEventKind::Sent { .. } => MessageStatus::Sent,
            MessageEventKind::Failed { .. } => MessageStatus::Failed,
            MessageEventKind::DeliveryReceipt { outcome, segment, .. } => receipt_status(*outcome, *segment),
            MessageEventKind::SmppReceipt { .. } => MessageStatus::Sent,
            MessageEventKind::Canceled => MessageStatus::Canceled,
            MessageEventKind::InboundReceiving { .. } => MessageStatus::Receiving,
            MessageEventKind::InboundReceived { .. } => MessageStatus::Received,
        }
    }

    /// Every name [`MessageEventKind::name`] returns.
    pub const NAMES: [&'static str; 10] = [
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "failed",
        "delivery_receipt",
        "canceled",
        "inbound_receiving",
        "inbound_received",
    ];

    /// Returns the kind's name as used on the wire and as a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            MessageEventKind::Accepted { .. } => "accepted",
            MessageEventKind::Scheduled { .. } => "scheduled",
            MessageEventKind::Queued => "queued",
            MessageEventKind::Sending => "sending",
            MessageEventKind::Sent { .. } => "sent",
            MessageEventKind::Failed { .. } => "failed",
            MessageEventKind::DeliveryReceipt { .. } | MessageEventKind::SmppReceipt { .. } => "delivery_receipt",
            MessageEventKind::Canceled => "canceled",
            MessageEventKind::InboundReceiving { .. } => "inbound_receiving",
            MessageEventKind::InboundReceived { .. } => "inbound_received",
        }
    }

    /// Returns the error code the event reports, 0 when it reports none.
    pub fn error_code(&self) -> u32 {
        match self {
            MessageEventKind::Failed { error_code } => *error_code,
            MessageEventKind::DeliveryReceipt { error_code, .. } => *error_code,
            MessageEventKind::SmppReceipt { error_code, .. } => *error_code,
            _ => 0,
        }
    }

    /// Returns the raw stat and err the event carries, if any.
    pub fn carrier_report(&self) -> Option<&CarrierReport> {
        match self {
            MessageEventKind::DeliveryReceipt { carrier, .. } => carrier.as_ref(),
            _ => None,
        }
    }

    /// Returns the number of segments the event shows the message to have
    /// at least, 0 when it shows none: those of its attributes, one per
    /// carrier id of a sent event, and a segment receipt's count.
    pub fn segments_hint(&self) -> u16 {
        match self {
            MessageEventKind::Sent { carrier_message_ids } => {
                u16::try_from(carrier_message_ids.len()).unwrap_or(u16::MAX)
            }
            MessageEventKind::DeliveryReceipt { segment: Some(segment), .. } => segment.count,
            _ => self.attributes().map_or(0, |attributes| attributes.segments),
        }
    }

    /// Returns the message's attributes when this kind carries them.
    pub fn attributes(&self) -> Option<&MessageAttributes> {
        match self {
            MessageEventKind::Accepted { attributes, .. }
            | MessageEventKind::InboundReceiving { attributes }
            | MessageEventKind::InboundReceived { attributes } => Some(attributes),
            _ => None,
        }
    }
}

/// Returns the status a decided receipt reports on its own.
fn receipt_status(outcome: ReceiptOutcome, segment: Option<Segment>) -> MessageStatus {
    let one_of_several = segment.is_some_and(|segment| segment.count > 1);
    match outcome {
        ReceiptOutcome::Delivered if !one_of_several => MessageStatus::Delivered,
        ReceiptOutcome::Undelivered => MessageStatus::Undelivered,
        ReceiptOutcome::Delivered | ReceiptOutcome::Intermediate | ReceiptOutcome::Unknown => MessageStatus::Sent,
    }
}

/// One event about one campaign, keyed by `campaign_id` on its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignEvent {
    pub event_id: String,
    pub occurred_at: Timestamp,
    pub campaign_id: String,
    pub kind: CampaignEventKind,
}

/// The kinds of campaign event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignEventKind {
    /// The campaign was saved as a draft.
    Created { account_id: String, name: String },
    /// The campaign was set to start at `send_at`.
    Scheduled { send_at: Timestamp },
    /// The platform started dispatching to `recipients` recipients.
    StartedSending { recipients: u64 },
    /// The campaign was cancelled.
    Cancelled,
    /// The platform handed its last message to the send queue; it dispatched
    /// `dispatched` messages in all.
    DispatchFinished { dispatched: u64 },
}

impl CampaignEventKind {
    /// Returns the kind's name as used on the wire and as a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            CampaignEventKind::Created { .. } => "campaign_created",
            CampaignEventKind::Scheduled { .. } => "campaign_scheduled",
            CampaignEventKind::StartedSending { .. } => "campaign_started_sending",
            CampaignEventKind::Cancelled => "campaign_cancelled",
            CampaignEventKind::DispatchFinished { .. } => "campaign_dispatch_finished",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_every_kind() {
        let attributes = MessageAttributes::default;
        let kinds = [
            MessageEventKind::Accepted { attributes: attributes(), send_at: None },
            MessageEventKind::Scheduled { send_at: None },
            MessageEventKind::Queued,
            MessageEventKind::Sending,
            MessageEventKind::Sent { carrier_message_ids: Vec::new() },
            MessageEventKind::Failed { error_code: 1 },
            MessageEventKind::DeliveryReceipt {
                outcome: ReceiptOutcome::Unknown,
                error_code: 0,
                done_at: None,
                carrier: None,
                segment: None,
            },
            MessageEventKind::SmppReceipt { receipt: SmppReceipt::default(), error_code: 0, done_at: None },
            MessageEventKind::Canceled,
            MessageEventKind::InboundReceiving { attributes: attributes() },
            MessageEventKind::InboundReceived { attributes: attributes() },
        ];
        let mut names: Vec<&str> = kinds.iter().map(MessageEventKind::name).collect();
        names.dedup();
        assert_eq!(names, MessageEventKind::NAMES);
    }
}
