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

/// One event about one message, keyed by `message_id` on its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageEvent {
    /// Unique per event; a redelivered event carries the same id.
    pub event_id: String,
    /// When the event happened at its source.
    pub occurred_at: Timestamp,
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

/// The outcome a delivery receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptOutcome {
    Delivered,
    Undelivered,
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
        /// The carrier's id for the message, from its submit response.
        carrier_message_id: Option<String>,
    },
    Failed {
        error_code: u32,
    },
    DeliveryReceipt {
        outcome: ReceiptOutcome,
        error_code: u32,
        /// The carrier's done time, read as UTC.
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
    /// Returns the status this kind of event reports.
    pub fn status(&self) -> MessageStatus {
        match self {
            MessageEventKind::Accepted { .. } => MessageStatus::Accepted,
            MessageEventKind::Scheduled { .. } => MessageStatus::Scheduled,
            MessageEventKind::Queued => MessageStatus::Queued,
            MessageEventKind::Sending => MessageStatus::Sending,
            MessageEventKind::Sent { .. } => MessageStatus::Sent,
            MessageEventKind::Failed { .. } => MessageStatus::Failed,
            MessageEventKind::DeliveryReceipt { outcome: ReceiptOutcome::Delivered, .. } => {
                MessageStatus::Delivered
            }
            MessageEventKind::DeliveryReceipt { outcome: ReceiptOutcome::Undelivered, .. } => {
                MessageStatus::Undelivered
            }
            MessageEventKind::Canceled => MessageStatus::Canceled,
            MessageEventKind::InboundReceiving { .. } => MessageStatus::Receiving,
            MessageEventKind::InboundReceived { .. } => MessageStatus::Received,
        }
    }

    /// Returns the kind's name as used on the wire and as a metric label.
    pub fn name(&self) -> &'static str {
        match self {
            MessageEventKind::Accepted { .. } => "accepted",
            MessageEventKind::Scheduled { .. } => "scheduled",
            MessageEventKind::Queued => "queued",
            MessageEventKind::Sending => "sending",
            MessageEventKind::Sent { .. } => "sent",
            MessageEventKind::Failed { .. } => "failed",
            MessageEventKind::DeliveryReceipt { .. } => "delivery_receipt",
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
            _ => 0,
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
