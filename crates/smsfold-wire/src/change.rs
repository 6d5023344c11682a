//! The status changes smsfold publishes, in JSON or protobuf.
//!
//! The JSON form of a message change:
//! `{"message_id":"m-1","campaign_id":"c-1","previous_status":"sent","status":"delivered",
//!   "occurred_at":"2024-03-15T12:31:00Z","cause_event_id":"e-9","error_code":0}`.
//! `previous_status` is null for a message's first change, `campaign_id` is
//! null outside campaigns. A change caused by a receipt in SMPP form adds
//! the receipt's `receipt_stat` and `receipt_err`. Campaign changes add a
//! `counts` object.

use std::borrow::Cow;

use prost::Message;
use serde::{Deserialize, Serialize};
use smsfold_domain::{CampaignCounts, CampaignStatus, MessageStatus, Timestamp};

use crate::content_type::Format;
use crate::error::DecodeError;
use crate::proto;
use crate::timestamp::{format_rfc3339, parse_rfc3339, to_proto};

/// One message's status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatusChange<'a> {
    pub message_id: Cow<'a, str>,
    pub campaign_id: Option<Cow<'a, str>>,
    pub previous: Option<MessageStatus>,
    pub status: MessageStatus,
    pub occurred_at: Timestamp,
    pub cause_event_id: Cow<'a, str>,
    pub error_code: u32,
    /// The raw `stat` of the receipt in SMPP form that caused the change.
    pub receipt_stat: Option<Cow<'a, str>>,
    /// The raw `err` of that receipt.
    pub receipt_err: Option<Cow<'a, str>>,
}

/// A campaign's counts as published with its status changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub accepted: u64,
    pub scheduled: u64,
    pub queued: u64,
    pub sending: u64,
    pub sent: u64,
    pub canceled: u64,
    pub failed: u64,
    pub undelivered: u64,
    pub delivered: u64,
    pub messages: u64,
    pub segments: u64,
    pub billable_segments: u64,
    pub recipients: Option<u64>,
    pub dispatched: Option<u64>,
    pub delivery_rate: Option<f64>,
}

impl Counts {
    /// Builds the published counts from a campaign fold's counts.
    pub fn new(counts: &CampaignCounts, recipients: Option<u64>, dispatched: Option<u64>) -> Self {
        let count = |status| counts.count(status);
        Counts {
            accepted: count(MessageStatus::Accepted),
            scheduled: count(MessageStatus::Scheduled),
            queued: count(MessageStatus::Queued),
            sending: count(MessageStatus::Sending),
            sent: count(MessageStatus::Sent),
            canceled: count(MessageStatus::Canceled),
            failed: count(MessageStatus::Failed),
            undelivered: count(MessageStatus::Undelivered),
            delivered: count(MessageStatus::Delivered),
            messages: counts.messages(),
            segments: counts.segments,
            billable_segments: counts.billable_segments,
            recipients,
            dispatched,
            delivery_rate: counts.delivery_rate(),
        }
    }
}

/// One campaign's status change.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignStatusChange<'a> {
    pub campaign_id: Cow<'a, str>,
    pub previous: Option<CampaignStatus>,
    pub status: CampaignStatus,
    pub occurred_at: Timestamp,
    pub cause_event_id: Cow<'a, str>,
    pub counts: Counts,
}

#[derive(Serialize, Deserialize)]
struct JsonMessageChange<'a> {
    #[serde(borrow)]
    message_id: Cow<'a, str>,
    #[serde(borrow)]
    campaign_id: Option<Cow<'a, str>>,
    previous_status: Option<Cow<'a, str>>,
    status: Cow<'a, str>,
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    cause_event_id: Cow<'a, str>,
    error_code: u32,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    receipt_stat: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    receipt_err: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
struct JsonCampaignChange<'a> {
    #[serde(borrow)]
    campaign_id: Cow<'a, str>,
    previous_status: Option<Cow<'a, str>>,
    status: Cow<'a, str>,
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    cause_event_id: Cow<'a, str>,
    counts: Counts,
}

impl MessageStatusChange<'_> {
    /// Appends the change, encoded in `format`, to `buf`.
    pub fn encode(&self, format: Format, buf: &mut Vec<u8>) {
        match format {
            Format::Json => {
                let json = JsonMessageChange {
                    message_id: Cow::Borrowed(&self.message_id),
                    campaign_id: self.campaign_id.as_deref().map(Cow::Borrowed),
                    previous_status: self.previous.map(|status| Cow::Borrowed(status.as_str())),
                    status: Cow::Borrowed(self.status.as_str()),
                    occurred_at: Cow::Owned(format_rfc3339(self.occurred_at)),
                    cause_event_id: Cow::Borrowed(&self.cause_event_id),
                    error_code: self.error_code,
                    receipt_stat: self.receipt_stat.as_deref().map(Cow::Borrowed),
                    receipt_err: self.receipt_err.as_deref().map(Cow::Borrowed),
                };
                // Writing plain strings and numbers to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *buf, &json);
            }
            Format::Protobuf => {
                let message = proto::MessageStatusChanged {
                    message_id: self.message_id.to_string(),
                    campaign_id: self.campaign_id.as_deref().unwrap_or_default().to_owned(),
                    previous_status: self.previous.map_or(0, |status| i32::from(status.rank())),
                    status: i32::from(self.status.rank()),
                    occurred_at: Some(to_proto(self.occurred_at)),
                    cause_event_id: self.cause_event_id.to_string(),
                    error_code: self.error_code,
                    receipt_stat: self.receipt_stat.as_deref().unwrap_or_default().to_owned(),
                    receipt_err: self.receipt_err.as_deref().unwrap_or_default().to_owned(),
                };
                message.encode(buf).unwrap_or_default();
            }
        }
    }

    /// Decodes a change that [`MessageStatusChange::encode`] wrote.
    pub fn decode(format: Format, value: &[u8]) -> Result<MessageStatusChange<'static>, DecodeError> {
        match format {
            Format::Json => {
                let json: JsonMessageChange<'_> = serde_json::from_slice(value)?;
                Ok(MessageStatusChange {
                    message_id: Cow::Owned(json.message_id.into_owned()),
                    campaign_id: json.campaign_id.map(|id| Cow::Owned(id.into_owned())),
                    previous: json.previous_status.map(|s| parse_message_status(&s)).transpose()?,
                    status: parse_message_status(&json.status)?,
                    occurred_at: parse_rfc3339(&json.occurred_at, "occurred_at")?,
                    cause_event_id: Cow::Owned(json.cause_event_id.into_owned()),
                    error_code: json.error_code,
                    receipt_stat: json.receipt_stat.map(|stat| Cow::Owned(stat.into_owned())),
                    receipt_err: json.receipt_err.map(|err| Cow::Owned(err.into_owned())),
                })
            }
            Format::Protobuf => {
                let message = proto::MessageStatusChanged::decode(value)?;
                Ok(MessageStatusChange {
                    message_id: Cow::Owned(message.message_id),
                    campaign_id: Some(message.campaign_id).filter(|id| !id.is_empty()).map(Cow::Owned),
                    previous: message_status_from_number(message.previous_status)?,
                    status: message_status_from_number(message.status)?
                        .ok_or(DecodeError::MissingField("status"))?,
                    occurred_at: crate::timestamp::from_proto(message.occurred_at.as_ref(), "occurred_at")?
                        .ok_or(DecodeError::MissingField("occurred_at"))?,
                    cause_event_id: Cow::Owned(message.cause_event_id),
                    error_code: message.error_code,
                    receipt_stat: Some(message.receipt_stat).filter(|stat| !stat.is_empty()).map(Cow::Owned),
                    receipt_err: Some(message.receipt_err).filter(|err| !err.is_empty()).map(Cow::Owned),
                })
            }
        }
    }
}

impl CampaignStatusChange<'_> {
    /// Appends the change, encoded in `format`, to `buf`.
    pub fn encode(&self, format: Format, buf: &mut Vec<u8>) {
        match format {
            Format::Json => {
                let json = JsonCampaignChange {
                    campaign_id: Cow::Borrowed(&self.campaign_id),
                    previous_status: self.previous.map(|status| Cow::Borrowed(status.as_str())),
                    status: Cow::Borrowed(self.status.as_str()),
                    occurred_at: Cow::Owned(format_rfc3339(self.occurred_at)),
                    cause_event_id: Cow::Borrowed(&self.cause_event_id),
                    counts: self.counts,
                };
                let _ = serde_json::to_writer(&mut *buf, &json);
            }
            Format::Protobuf => {
                let counts = &self.counts;
                let message = proto::CampaignStatusChanged {
                    campaign_id: self.campaign_id.to_string(),
                    previous_status: self.previous.map_or(0, |status| status as i32),
                    status: self.status as i32,
                    occurred_at: Some(to_proto(self.occurred_at)),
                    cause_event_id: self.cause_event_id.to_string(),
                    counts: Some(proto::CampaignCounts {
                        accepted: counts.accepted,
                        scheduled: counts.scheduled,
                        queued: counts.queued,
                        sending: counts.sending,
                        sent: counts.sent,
                        canceled: counts.canceled,
                        failed: counts.failed,
                        undelivered: counts.undelivered,
                        delivered: counts.delivered,
                        messages: counts.messages,
                        segments: counts.segments,
                        billable_segments: counts.billable_segments,
                        recipients: counts.recipients.unwrap_or(0),
                        dispatched: counts.dispatched.unwrap_or(0),
                        delivery_rate: counts.delivery_rate.unwrap_or(0.0),
                    }),
                };
                message.encode(buf).unwrap_or_default();
            }
        }
    }

    /// Decodes a change that [`CampaignStatusChange::encode`] wrote.
    pub fn decode(format: Format, value: &[u8]) -> Result<CampaignStatusChange<'static>, DecodeError> {
        match format {
            Format::Json => {
                let json: JsonCampaignChange<'_> = serde_json::from_slice(value)?;
                Ok(CampaignStatusChange {
                    campaign_id: Cow::Owned(json.campaign_id.into_owned()),
                    previous: json.previous_status.map(|s| parse_campaign_status(&s)).transpose()?,
                    status: parse_campaign_status(&json.status)?,
                    occurred_at: parse_rfc3339(&json.occurred_at, "occurred_at")?,
                    cause_event_id: Cow::Owned(json.cause_event_id.into_owned()),
                    counts: json.counts,
                })
            }
            Format::Protobuf => {
                let message = proto::CampaignStatusChanged::decode(value)?;
                let counts = message.counts.unwrap_or_default();
                let nonzero = |n: u64| (n > 0).then_some(n);
                let outcomes = counts.delivered + counts.undelivered + counts.failed;
                Ok(CampaignStatusChange {
                    campaign_id: Cow::Owned(message.campaign_id),
                    previous: campaign_status_from_number(message.previous_status)?,
                    status: campaign_status_from_number(message.status)?
                        .ok_or(DecodeError::MissingField("status"))?,
                    occurred_at: crate::timestamp::from_proto(message.occurred_at.as_ref(), "occurred_at")?
                        .ok_or(DecodeError::MissingField("occurred_at"))?,
                    cause_event_id: Cow::Owned(message.cause_event_id),
                    counts: Counts {
                        accepted: counts.accepted,
                        scheduled: counts.scheduled,
                        queued: counts.queued,
                        sending: counts.sending,
                        sent: counts.sent,
                        canceled: counts.canceled,
                        failed: counts.failed,
                        undelivered: counts.undelivered,
                        delivered: counts.delivered,
                        messages: counts.messages,
                        segments: counts.segments,
                        billable_segments: counts.billable_segments,
                        recipients: nonzero(counts.recipients),
                        dispatched: nonzero(counts.dispatched),
                        delivery_rate: (outcomes > 0).then_some(counts.delivery_rate),
                    },
                })
            }
        }
    }
}

fn parse_message_status(name: &str) -> Result<MessageStatus, DecodeError> {
    name.parse().map_err(|_| DecodeError::invalid("status", format!("unknown message status {name:?}")))
}

fn parse_campaign_status(name: &str) -> Result<CampaignStatus, DecodeError> {
    name.parse().map_err(|_| DecodeError::invalid("status", format!("unknown campaign status {name:?}")))
}

fn message_status_from_number(number: i32) -> Result<Option<MessageStatus>, DecodeError> {
    if number == 0 {
        return Ok(None);
    }
    u8::try_from(number)
        .ok()
        .and_then(MessageStatus::from_rank)
        .map(Some)
        .ok_or_else(|| DecodeError::invalid("status", format!("unknown message status number {number}")))
}

fn campaign_status_from_number(number: i32) -> Result<Option<CampaignStatus>, DecodeError> {
    if number == 0 {
        return Ok(None);
    }
    CampaignStatus::ALL
        .into_iter()
        .find(|status| *status as i32 == number)
        .map(Some)
        .ok_or_else(|| DecodeError::invalid("status", format!("unknown campaign status number {number}")))
}
