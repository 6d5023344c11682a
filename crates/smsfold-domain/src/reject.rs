//! The reasons a fold rejects an event. A rejected event changes nothing, and
//! the worker sends it to the dead-letter topic with the reason.

/// An event that a fold cannot apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("{status} is an {event} status but message {message_id} is {state}")]
    DirectionConflict {
        message_id: String,
        status: &'static str,
        event: &'static str,
        state: &'static str,
    },
    #[error("message {message_id} belongs to campaign {known:?}, but the event names campaign {claimed:?}")]
    CampaignConflict {
        message_id: String,
        known: String,
        claimed: String,
    },
    #[error("message id is {len} bytes long; the maximum is {max}")]
    MessageIdTooLong { len: usize, max: usize },
    #[error("message {message_id} was settled longer than the retention ago and has left the live state")]
    MessageRetired { message_id: String },
    #[error("the event of message {message_id} happened at {occurred_at_ms} ms, before the retention horizon {horizon_ms} ms")]
    BeyondRetention { message_id: String, occurred_at_ms: i64, horizon_ms: i64 },
    #[error("campaign {campaign_id} ended longer than the retention ago and has left the live state")]
    CampaignRetired { campaign_id: String },
    #[error("the SMPP receipt of message {message_id:?} was not read into an outcome before it was applied")]
    ReceiptNotRead { message_id: String },
    #[error("campaign {campaign_id} is already {status}; a {event} event cannot apply")]
    CampaignFinal {
        campaign_id: String,
        status: &'static str,
        event: &'static str,
    },
}

impl Reject {
    /// Returns the low-cardinality reason used as a metric label and in the
    /// dead-letter reason header.
    pub fn reason(&self) -> &'static str {
        match self {
            Reject::DirectionConflict { .. } => "direction_conflict",
            Reject::CampaignConflict { .. } => "campaign_conflict",
            Reject::MessageIdTooLong { .. } => "message_id_too_long",
            Reject::MessageRetired { .. } => "message_retired",
            Reject::BeyondRetention { .. } => "beyond_retention",
            Reject::CampaignFinal { .. } => "campaign_final",
            Reject::CampaignRetired { .. } => "campaign_retired",
            Reject::ReceiptNotRead { .. } => "receipt_not_read",
        }
    }
}
