//! smsfold's wire formats.
//!
//! Input events come as protobuf (the reference, see `proto/`) or as JSON
//! (one flat object per event, `kind` naming the event), distinguished by the
//! record's `content-type` header. This crate decodes both into the domain's
//! events and encodes the status changes smsfold publishes, in either format.

pub mod carrier_join;
pub mod change;
pub mod changelog;
pub mod content_type;
pub mod decode;
pub mod error;
pub mod internal;
mod json;
mod receipt_history;
mod timestamp;

/// Code generated from `proto/smsfold/v1/*.proto`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/smsfold.v1.rs"));

    /// Records smsfold sends to itself between its stages.
    pub mod internal {
        include!(concat!(env!("OUT_DIR"), "/smsfold.v1.internal.rs"));
    }
}

pub use change::{CampaignStatusChange, Counts, MessageStatusChange};
pub use content_type::{Format, CONTENT_TYPE_HEADER};
pub use decode::{decode_campaign_event, decode_message_event};
pub use error::DecodeError;
