//! The smsfold domain: message and campaign events, their statuses, and the
//! folds that turn an unordered, duplicated event stream into projections.
//!
//! Nothing here does IO. The Kafka worker feeds decoded events in, one
//! partition's fold at a time, and publishes what the folds return.

pub mod campaign_fold;
mod chunked_map;
pub mod event;
pub mod key;
pub mod message_fold;
pub mod reject;
pub mod retention;
pub mod status;
pub mod time;

pub use campaign_fold::{
    CampaignChange, CampaignCounts, CampaignFold, CampaignProjection, EvictedCampaign, MessageUpdate,
};
pub use event::{
    CampaignEvent, CampaignEventKind, CarrierReport, Channel, MessageAttributes, MessageEvent, MessageEventKind,
    NetworkErrorCode, ReceiptOutcome, Segment, SmppReceipt, MAX_CARRIER_ID_LEN,
};
pub use key::MessageKey;
pub use message_fold::{
    Applied, CampaignLink, MessageChange, MessageFold, MessageProjection, ProgressReport, ReceiptHistory,
    SegmentDelivery,
};
pub use reject::Reject;
pub use status::{CampaignStatus, Direction, MessageStatus};
pub use time::Timestamp;
