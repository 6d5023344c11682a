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
    /// The status and segments of the message's previous update, `None` for
    /// its first.
    pub previous: Option<(MessageStatus, u16)>,
    /// False for an update from an smsfold that did not send the previous
    /// status yet: `previous` is then `None` whatever came before.
    pub previous_known: bool,
    /// True when an at-least-once worker sent the update: it may arrive
    /// twice, so the campaign stage counts its message by an entry.
    pub may_repeat: bool,
}

/// Returns the `previous_status` field of an update: the previous status
/// number, 0 for a first update, absent when the previous is not known.
fn previous_status(previous: Option<(MessageStatus, u16)>, known: bool) -> Option<u32> {
    known.then(|| previous.map_or(0, |(status, _)| u32::from(status.rank())))
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
            previous_status: previous_status(self.previous, self.previous_known),
            previous_segments: self.previous.map_or(0, |(_, segments)| u32::from(segments)),
            may_repeat: self.may_repeat,
        };
        message.encode(buf).unwrap_or_default();
    }

    pub fn decode(value: &[u8]) -> Result<Self, DecodeError> {
        Self::from_proto(internal::MessageUpdate::decode(value)?)
    }

    fn from_proto(message: internal::MessageUpdate) -> Result<Self, DecodeError> {
        let status_of = |field, number: u32| {
            u8::try_from(number)
                .ok()
                .and_then(MessageStatus::from_rank)
                .ok_or_else(|| DecodeError::invalid(field, format!("unknown status number {number}")))
        };
        let status = status_of("status", message.status)?;
        let previous = match message.previous_status {
            None | Some(0) => None,
            Some(number) => Some((
                status_of("previous_status", number)?,
                u16::try_from(message.previous_segments).unwrap_or(u16::MAX),
            )),
        };
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
            previous,
            previous_known: message.previous_status.is_some(),
            may_repeat: message.may_repeat,
        })
    }
}

/// The message updates of one campaign gathered in one record, in the order
/// they were made. A batch of a message stage sends one pack per campaign
/// instead of one record per update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageUpdatePack {
    message: internal::MessageUpdates,
}

impl MessageUpdatePack {
    /// Starts an empty pack of `campaign_id`'s updates.
    pub fn new(campaign_id: &str) -> Self {
        MessageUpdatePack { message: internal::MessageUpdates { campaign_id: campaign_id.to_owned(), updates: Vec::new() } }
    }

    pub fn campaign_id(&self) -> &str {
        &self.message.campaign_id
    }

    pub fn len(&self) -> usize {
        self.message.updates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.message.updates.is_empty()
    }

    /// Appends an update of the pack's campaign. Returns the pack's encoded
    /// size with it.
    pub fn push(&mut self, update: MessageUpdateRecord) -> usize {
        debug_assert_eq!(update.campaign_id, self.message.campaign_id, "an update joins the pack of its campaign");
        self.message.updates.push(internal::MessageUpdate {
            campaign_id: String::new(),
            message_id: update.message_id,
            status: u32::from(update.status.rank()),
            segments: u32::from(update.segments),
            status_at_ms: update.status_at.as_millis(),
            cause_event_id: update.cause_event_id,
            previous_status: previous_status(update.previous, update.previous_known),
            previous_segments: update.previous.map_or(0, |(_, segments)| u32::from(segments)),
            may_repeat: update.may_repeat,
        });
        self.message.encoded_len()
    }

    pub fn encode(&self) -> Vec<u8> {
        self.message.encode_to_vec()
    }

    /// Decodes a pack into its updates, each with the pack's campaign id.
    pub fn decode(value: &[u8]) -> Result<Vec<MessageUpdateRecord>, DecodeError> {
        let message = internal::MessageUpdates::decode(value)?;
        if message.campaign_id.is_empty() {
            return Err(DecodeError::MissingField("campaign_id"));
        }
        let campaign_id = message.campaign_id;
        message
            .updates
            .into_iter()
            .map(|update| MessageUpdateRecord::from_proto(internal::MessageUpdate { campaign_id: campaign_id.clone(), ..update }))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use smsfold_domain::MessageStatus;

    fn update(message_id: &str, status: MessageStatus, at: i64) -> MessageUpdateRecord {
        MessageUpdateRecord {
            campaign_id: "CP1".to_owned(),
            message_id: message_id.to_owned(),
            status,
            segments: 2,
            status_at: Timestamp::from_millis(at),
            cause_event_id: format!("EV-{message_id}-{at}"),
            previous: None,
            previous_known: true,
            may_repeat: false,
        }
    }

    #[test]
    fn pack_keeps_updates_in_order() {
        let updates = [
            update("SM1", MessageStatus::Queued, 10),
            update("SM2", MessageStatus::Sent, 11),
            update("SM1", MessageStatus::Delivered, 12),
        ];
        let mut pack = MessageUpdatePack::new("CP1");
        let mut sizes = Vec::new();
        for update in &updates {
            sizes.push(pack.push(update.clone()));
        }
        let encoded = pack.encode();

        assert_eq!(pack.len(), 3);
        assert_eq!(pack.campaign_id(), "CP1");
        assert_eq!(*sizes.last().unwrap(), encoded.len());
        assert!(sizes.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(MessageUpdatePack::decode(&encoded).unwrap(), updates.to_vec());
    }

    #[test]
    fn previous_status_round_trips() {
        let first = update("SM1", MessageStatus::Queued, 10);
        let next = MessageUpdateRecord { previous: Some((MessageStatus::Queued, 2)), ..update("SM1", MessageStatus::Sent, 11) };
        let mut single = Vec::new();
        next.encode(&mut single);
        assert_eq!(MessageUpdateRecord::decode(&single).unwrap(), next);

        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(first.clone());
        pack.push(next.clone());
        let decoded = MessageUpdatePack::decode(&pack.encode()).unwrap();
        assert_eq!(decoded, vec![first, next]);
        assert_eq!(decoded[0].previous, None);
        assert_eq!(decoded[1].previous, Some((MessageStatus::Queued, 2)));
    }

    #[test]
    fn unknown_previous_status_is_rejected() {
        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(MessageUpdateRecord { previous: Some((MessageStatus::Queued, 1)), ..update("SM1", MessageStatus::Sent, 11) });
        pack.message.updates[0].previous_status = Some(12);
        let error = MessageUpdatePack::decode(&pack.encode()).unwrap_err();
        assert!(error.to_string().contains("previous_status"), "{error}");
    }

    #[test]
    fn update_without_previous_field_is_not_known() {
        // As smsfold wrote updates before it sent previous statuses.
        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(update("SM1", MessageStatus::Sent, 11));
        pack.message.updates[0].previous_status = None;
        let decoded = MessageUpdatePack::decode(&pack.encode()).unwrap();
        assert_eq!(decoded[0].previous, None);
        assert!(!decoded[0].previous_known);

        let first = MessageUpdatePack::decode(&{
            let mut pack = MessageUpdatePack::new("CP1");
            pack.push(update("SM1", MessageStatus::Queued, 10));
            pack.encode()
        })
        .unwrap();
        assert_eq!(first[0].previous, None);
        assert!(first[0].previous_known);
    }

    #[test]
    fn repeat_mark_survives_pack() {
        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(MessageUpdateRecord { may_repeat: true, ..update("SM1", MessageStatus::Queued, 10) });
        pack.push(update("SM2", MessageStatus::Queued, 11));
        let decoded = MessageUpdatePack::decode(&pack.encode()).unwrap();

        assert!(decoded[0].may_repeat);
        assert!(!decoded[1].may_repeat);
    }

    #[test]
    fn pack_names_campaign_once() {
        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(update("SM1", MessageStatus::Queued, 10));
        let mut single = Vec::new();
        update("SM1", MessageStatus::Queued, 10).encode(&mut single);
        let mut packed_twice = MessageUpdatePack::new("CP1");
        packed_twice.push(update("SM1", MessageStatus::Queued, 10));
        packed_twice.push(update("SM1", MessageStatus::Queued, 10));

        // The second update adds its own bytes only, not the campaign id's.
        let added = packed_twice.encode().len() - pack.encode().len();
        assert!(added < single.len(), "{added} bytes added, {} for a single record", single.len());
    }

    #[test]
    fn pack_without_campaign_is_rejected() {
        let encoded = internal::MessageUpdates { campaign_id: String::new(), updates: Vec::new() }.encode_to_vec();
        assert!(matches!(MessageUpdatePack::decode(&encoded), Err(DecodeError::MissingField("campaign_id"))));
    }

    #[test]
    fn pack_with_bad_update_is_rejected() {
        let mut pack = MessageUpdatePack::new("CP1");
        pack.push(update("SM1", MessageStatus::Queued, 10));
        pack.message.updates[0].status = 99;
        assert!(MessageUpdatePack::decode(&pack.encode()).is_err());
        pack.message.updates[0].status = u32::from(MessageStatus::Queued.rank());
        pack.message.updates[0].message_id.clear();
        assert!(matches!(MessageUpdatePack::decode(&pack.encode()), Err(DecodeError::MissingField("message_id"))));
    }
}
