//! The JSON shape of input events: one flat object per event whose `kind`
//! names the event; the other fields are those of that kind. Unknown fields
//! are ignored, so producers may add fields before smsfold reads them.

use serde::Deserialize;

use crate::timestamp::JsonTime;

#[derive(Debug, Deserialize)]
pub(crate) struct JsonMessageEvent {
    pub event_id: Option<String>,
    pub occurred_at: Option<JsonTime>,
    pub message_id: Option<String>,
    pub kind: Option<String>,
    pub campaign_id: Option<String>,
    pub account_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub channel: Option<String>,
    pub segments: Option<u16>,
    pub send_at: Option<JsonTime>,
    pub carrier_message_id: Option<String>,
    pub segment_carrier_message_ids: Option<Vec<String>>,
    pub error_code: Option<u32>,
    pub outcome: Option<String>,
    pub done_at: Option<JsonTime>,
    pub receipt_text: Option<String>,
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
    pub network_error_code: Option<JsonNetworkErrorCode>,
}

/// The `network_error_code` object of a receipt; a missing field reads as 0.
#[derive(Debug, Deserialize)]
pub(crate) struct JsonNetworkErrorCode {
    pub network_type: Option<u8>,
    pub error_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct JsonCampaignEvent {
    pub event_id: Option<String>,
    pub occurred_at: Option<JsonTime>,
    pub campaign_id: Option<String>,
    pub kind: Option<String>,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub send_at: Option<JsonTime>,
    pub recipients: Option<u64>,
    pub dispatched: Option<u64>,
}
