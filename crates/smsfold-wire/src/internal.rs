//! The records smsfold's stages send each other, always in protobuf.

use prost::Message;
use smsfold_domain::{MessageStatus, Timestamp};

use crate::error::DecodeError;
use crate::proto::internal;

/// A message's current state for its campaign's stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUpdateRecord {
    pub campaign_id: String,
    pub message_id: String,
    pub status: MessageStatus,
    pub segments: u16,
    pub status_at: Timestamp,
    pub cause_event_id: String,
}

/// A campaign cancellation for the message stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignCancelledRecord {
    pub campaign_id: String,
    pub cause_event_id: String,
    pub occurred_at: Timestamp,
}

impl MessageUpdateRecord {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let message = internal::MessageUpdate {
            campaign_id: self.campaign_id.clone(),
            message_id: self.message_id.clone(),
            status: u32::from(self.status.rank()),
            segments: u32::from(self.segments),
            status_at_ms: self.status_at.as_millis(),
            cause_event_id: self.cause_event_id.clone(),
        };
        message.encode(buf).unwrap_or_default();
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let message = internal::MessageUpdate::decode(value)?;
        let status = u8::try_from(message.status)
            .ok()
            .and_then(MessageStatus::from_rank)
            .ok_or_else(|| DecodeError::invalid("status", format!("unknown status number {}", message.status)))?;
        if message.campaign_id.is_empty() {
            return Err(DecodeError::MissingField("campaign_id"));
        }
        if message.message_id.is_empty() {
            return Err(DecodeError::MissingField("message_id"));
        }
        Ok(MessageUpdateRecord {
            campaign_id: message.campaign_id,
            message_id: message.message_id,
            status,
            segments: u16::try_from(message.segments).unwrap_or(u16::MAX),
            status_at: Timestamp::from_millis(message.status_at_ms),
            cause_event_id: message.cause_event_id,
        })
    }
}

impl CampaignCancelledRecord {
    pub fn encode(&self, buf: &mut Vec<u8>) {
        let message = internal::CampaignCancelled {
            campaign_id: self.campaign_id.clone(),
            cause_event_id: self.cause_event_id.clone(),
            occurred_at_ms: self.occurred_at.as_millis(),
        };
        message.encode(buf).unwrap_or_default();
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        let message = internal::CampaignCancelled::decode(value)?;
        if message.campaign_id.is_empty() {
            return Err(DecodeError::MissingField("campaign_id"));
        }
        Ok(CampaignCancelledRecord {
            campaign_id: message.campaign_id,
            cause_event_id: message.cause_event_id,
            occurred_at: Timestamp::from_millis(message.occurred_at_ms),
        })
    }
}
