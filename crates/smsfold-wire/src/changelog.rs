//! Records of the changelog topics, from which a worker rebuilds a
//! partition's state when the partition is assigned to it.
//!
//! Keys are compacted per entry: one key per message, per cancellation, per
//! campaign and per campaign message, and in the carrier join changelog one
//! per carrier link and per pending receipt. A key starts with a one-byte
//! tag and, where it joins two ids, gives the first id's length, so no two
//! entries share a key whatever bytes the ids contain.

use prost::Message;
use smsfold_domain::{
    CampaignCounts, CampaignProjection, CampaignStatus, Channel, MessageKey, MessageProjection, MessageStatus,
    Timestamp,
};

use crate::carrier_join::{CarrierLinkRecord, PendingReceiptRecord};
use crate::error::DecodeError;
use crate::proto::internal;
use crate::receipt_history;

const MESSAGE_TAG: u8 = b'm';
const CANCELLATION_TAG: u8 = b'x';
const CAMPAIGN_TAG: u8 = b'c';
const CAMPAIGN_MESSAGE_TAG: u8 = b'e';
const RETIRED_MESSAGE_TAG: u8 = b'r';
const RETIRED_CAMPAIGN_TAG: u8 = b'q';
const CARRIER_LINK_TAG: u8 = b'l';
const PENDING_RECEIPT_TAG: u8 = b'p';

/// One decoded changelog entry.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangelogEntry {
    Message(MessageProjection),
    Cancellation { campaign_id: String, cause_event_id: String, occurred_at: Timestamp },
    /// A campaign's lifecycle fields, and its counts unless the entry was
    /// written before the changelog kept them.
    Campaign { projection: CampaignProjection, counts: Option<CampaignCounts> },
    /// One of a campaign's messages. `counted` is what the campaign's counts
    /// held for it before this entry, if they held it and the entry records it.
    CampaignMessage {
        campaign_id: String,
        message_id: String,
        status: MessageStatus,
        segments: u16,
        counted: Option<(MessageStatus, u16)>,
    },
    /// A message that left the live state, remembered until `retired_at`
    /// is more than the retention in the past.
    RetiredMessage { key: MessageKey, retired_at: Timestamp },
    RetiredCampaign { campaign_id: String, retired_at: Timestamp },
    /// A carrier link of the carrier join stage.
    CarrierLink(CarrierLinkRecord),
    /// A receipt of the carrier join stage waiting for its link.
    PendingReceipt(PendingReceiptRecord),
}

/// The entry of the carrier join changelog that a key names, read from the
/// key alone so that a tombstone, which has no value, can be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierEntryKey<'a> {
    /// A carrier link, by join key and the carrier id's spelling.
    Link { join_key: &'a str, spelling: &'a str },
    /// A pending receipt, by join key and the receipt's event id.
    PendingReceipt { join_key: &'a str, event_id: &'a str },
}

/// Builds a message entry's key and value.
pub fn message_record(projection: &MessageProjection) -> (Vec<u8>, Vec<u8>) {
    let mut value = internal::MessageState {
        message_id: projection.message_id.clone(),
        status: u32::from(projection.status.rank()),
        status_at_ms: projection.status_at.as_millis(),
        error_code: projection.error_code,
        segments: u32::from(projection.segments),
        mms: projection.channel == Channel::Mms,
        campaign_id: projection.campaign_id.clone().unwrap_or_default(),
        ..Default::default()
    };
    receipt_history::write(&projection.receipts, &mut value);
    (tagged(MESSAGE_TAG, &[&projection.message_id]), value.encode_to_vec())
}

/// Returns the key of a message entry, for a tombstone.
pub fn message_key(message_id: &str) -> Vec<u8> {
    tagged(MESSAGE_TAG, &[message_id])
}

/// Builds a cancellation entry's key and value.
pub fn cancellation_record(campaign_id: &str, cause_event_id: &str, occurred_at: Timestamp) -> (Vec<u8>, Vec<u8>) {
    let value = internal::CancellationState {
        campaign_id: campaign_id.to_owned(),
        cause_event_id: cause_event_id.to_owned(),
        occurred_at_ms: occurred_at.as_millis(),
    };
    (tagged(CANCELLATION_TAG, &[campaign_id]), value.encode_to_vec())
}

/// Builds a campaign entry's key and value from its projection, counts
/// included.
pub fn campaign_record(projection: &CampaignProjection) -> (Vec<u8>, Vec<u8>) {
    let counts = &projection.counts;
    let value = internal::CampaignState {
        campaign_id: projection.campaign_id.clone(),
        status: projection.status.map_or(0, |status| status as u32),
        status_at_ms: projection.status_at.map_or(0, Timestamp::as_millis),
        account_id: projection.account_id.clone().unwrap_or_default(),
        name: projection.name.clone().unwrap_or_default(),
        send_at_ms: projection.send_at.map(Timestamp::as_millis),
        recipients: projection.recipients,
        dispatched: projection.dispatched,
        has_account_id: projection.account_id.is_some(),
        has_name: projection.name.is_some(),
        counts: Some(internal::CampaignCountsState {
            by_status: counts.by_status.to_vec(),
            segments: counts.segments,
            billable_segments: counts.billable_segments,
        }),
    };
    (tagged(CAMPAIGN_TAG, &[&projection.campaign_id]), value.encode_to_vec())
}

/// Builds a campaign message entry's key and value. `counted` is what the
/// campaign's counts held for the message before this change, if anything.
pub fn campaign_message_record(
    campaign_id: &str,
    message_id: &str,
    status: MessageStatus,
    segments: u16,
    counted: Option<(MessageStatus, u16)>,
) -> (Vec<u8>, Vec<u8>) {
    let value = internal::CampaignMessageState {
        campaign_id: campaign_id.to_owned(),
        message_id: message_id.to_owned(),
        status: u32::from(status.rank()),
        segments: u32::from(segments),
        counted_status: counted.map(|(status, _)| u32::from(status.rank())),
        counted_segments: counted.map_or(0, |(_, segments)| u32::from(segments)),
    };
    (campaign_message_key(campaign_id, MessageKey::of(message_id)), value.encode_to_vec())
}

/// Returns the value a batch keeps when it writes `later` under a key that
/// it wrote `earlier` under, or `None` to keep `later` as it is. A campaign
/// message entry keeps the counted state of the batch's first write: that is
/// what the counts entry of the batch before holds, and a restore that finds
/// no counts entry after this one moves the message from there.
pub fn combine_rewrite(key: &[u8], earlier: &[u8], later: &[u8]) -> Option<Vec<u8>> {
    if key.first() != Some(&CAMPAIGN_MESSAGE_TAG) {
        return None;
    }
    let earlier = internal::CampaignMessageState::decode(earlier).ok()?;
    let mut later = internal::CampaignMessageState::decode(later).ok()?;
    later.counted_status = earlier.counted_status;
    later.counted_segments = earlier.counted_segments;
    Some(later.encode_to_vec())
}

/// Returns the key of a campaign entry, for a tombstone.
pub fn campaign_key(campaign_id: &str) -> Vec<u8> {
    tagged(CAMPAIGN_TAG, &[campaign_id])
}

/// Returns the key of a campaign message entry: the campaign id with its
/// length, then the message's 16-byte key, so that the entries of an
/// evicted campaign can be deleted from the fold's keys alone.
pub fn campaign_message_key(campaign_id: &str, message: MessageKey) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 4 + campaign_id.len() + 16);
    key.push(CAMPAIGN_MESSAGE_TAG);
    key.extend_from_slice(&(campaign_id.len() as u32).to_be_bytes());
    key.extend_from_slice(campaign_id.as_bytes());
    key.extend_from_slice(&message.to_bytes());
    key
}

/// Builds the entry of a retired message.
pub fn retired_message_record(message: MessageKey, retired_at: Timestamp) -> (Vec<u8>, Vec<u8>) {
    (retired_message_key(message), retired_at.as_millis().to_be_bytes().to_vec())
}

/// Returns the key of a retired message's entry, for a tombstone.
pub fn retired_message_key(message: MessageKey) -> Vec<u8> {
    let mut key = vec![RETIRED_MESSAGE_TAG];
    key.extend_from_slice(&message.to_bytes());
    key
}

/// Builds the entry of a retired campaign.
pub fn retired_campaign_record(campaign_id: &str, retired_at: Timestamp) -> (Vec<u8>, Vec<u8>) {
    (retired_campaign_key(campaign_id), retired_at.as_millis().to_be_bytes().to_vec())
}

/// Returns the key of a retired campaign's entry, for a tombstone.
pub fn retired_campaign_key(campaign_id: &str) -> Vec<u8> {
    tagged(RETIRED_CAMPAIGN_TAG, &[campaign_id])
}

/// Builds a carrier link's entry. `spelling` is the link's carrier id as the
/// join compares it, so that each key has one entry per spelling.
pub fn carrier_link_record(link: &CarrierLinkRecord, spelling: &str) -> (Vec<u8>, Vec<u8>) {
    (carrier_link_key(&link.join_key, spelling), link.encode())
}

/// Returns the key of a carrier link's entry, for a tombstone.
pub fn carrier_link_key(join_key: &str, spelling: &str) -> Vec<u8> {
    tagged(CARRIER_LINK_TAG, &[join_key, spelling])
}

/// Builds a pending receipt's entry.
pub fn pending_receipt_record(pending: &PendingReceiptRecord) -> (Vec<u8>, Vec<u8>) {
    (pending_receipt_key(&pending.join_key, &pending.receipt.event_id), pending.encode())
}

/// Returns the key of a pending receipt's entry, for a tombstone.
pub fn pending_receipt_key(join_key: &str, event_id: &str) -> Vec<u8> {
    tagged(PENDING_RECEIPT_TAG, &[join_key, event_id])
}

/// Reads which carrier link or pending receipt a carrier join changelog key
/// names. Keys of other entries are rejected.
pub fn decode_carrier_key(key: &[u8]) -> Result<CarrierEntryKey<'_>, DecodeError> {
    match key.first() {
        Some(&CARRIER_LINK_TAG) => {
            let (join_key, spelling) = untagged_pair(key)?;
            Ok(CarrierEntryKey::Link { join_key, spelling })
        }
        Some(&PENDING_RECEIPT_TAG) => {
            let (join_key, event_id) = untagged_pair(key)?;
            Ok(CarrierEntryKey::PendingReceipt { join_key, event_id })
        }
        _ => Err(DecodeError::invalid("key", "not a carrier link or pending receipt key")),
    }
}

/// Decodes a changelog record. Returns `Ok(None)` for a tombstone.
/// [`decode_carrier_key`] reads which entry a carrier join tombstone
/// removes.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<ChangelogEntry>, DecodeError> {
    let Some(value) = value else { return Ok(None) };
    let entry = match key.first() {
        Some(&MESSAGE_TAG) => {
            let mut state = internal::MessageState::decode(value)?;
            let receipts = receipt_history::read(&mut state)?;
            ChangelogEntry::Message(MessageProjection {
                message_id: state.message_id,
                status: message_status(state.status)?,
                status_at: Timestamp::from_millis(state.status_at_ms),
                error_code: state.error_code,
                campaign_id: Some(state.campaign_id).filter(|id| !id.is_empty()),
                segments: u16::try_from(state.segments).unwrap_or(u16::MAX),
                channel: if state.mms { Channel::Mms } else { Channel::Sms },
                receipts,
            })
        }
        Some(&CANCELLATION_TAG) => {
            let state = internal::CancellationState::decode(value)?;
            ChangelogEntry::Cancellation {
                campaign_id: state.campaign_id,
                cause_event_id: state.cause_event_id,
                occurred_at: Timestamp::from_millis(state.occurred_at_ms),
            }
        }
        Some(&CAMPAIGN_TAG) => {
            let state = internal::CampaignState::decode(value)?;
            let status = match state.status {
                0 => None,
                number => Some(
                    CampaignStatus::ALL
                        .into_iter()
                        .find(|status| *status as u32 == number)
                        .ok_or_else(|| DecodeError::invalid("status", format!("unknown campaign status {number}")))?,
                ),
            };
            let counts = state.counts.map(campaign_counts).transpose()?;
            ChangelogEntry::Campaign {
                projection: CampaignProjection {
                    campaign_id: state.campaign_id,
                    status,
                    status_at: status.map(|_| Timestamp::from_millis(state.status_at_ms)),
                    account_id: state.has_account_id.then_some(state.account_id),
                    name: state.has_name.then_some(state.name),
                    send_at: state.send_at_ms.map(Timestamp::from_millis),
                    recipients: state.recipients,
                    dispatched: state.dispatched,
                    counts: counts.unwrap_or_default(),
                },
                counts,
            }
        }
        Some(&CAMPAIGN_MESSAGE_TAG) => {
            let state = internal::CampaignMessageState::decode(value)?;
            let counted = match state.counted_status {
                Some(number) => Some((message_status(number)?, u16::try_from(state.counted_segments).unwrap_or(u16::MAX))),
                None => None,
            };
            ChangelogEntry::CampaignMessage {
                campaign_id: state.campaign_id,
                message_id: state.message_id,
                status: message_status(state.status)?,
                segments: u16::try_from(state.segments).unwrap_or(u16::MAX),
                counted,
            }
        }
        Some(&RETIRED_MESSAGE_TAG) => {
            let bytes: [u8; 16] = key
                .get(1..17)
                .and_then(|slice| slice.try_into().ok())
                .ok_or_else(|| DecodeError::invalid("key", "a retired message key has 16 bytes"))?;
            ChangelogEntry::RetiredMessage { key: MessageKey::from_bytes(bytes), retired_at: millis(value)? }
        }
        Some(&RETIRED_CAMPAIGN_TAG) => ChangelogEntry::RetiredCampaign {
            campaign_id: String::from_utf8_lossy(&key[1..]).into_owned(),
            retired_at: millis(value)?,
        },
        Some(&CARRIER_LINK_TAG) => ChangelogEntry::CarrierLink(CarrierLinkRecord::decode(value)?),
        Some(&PENDING_RECEIPT_TAG) => ChangelogEntry::PendingReceipt(PendingReceiptRecord::decode(value)?),
        _ => return Err(DecodeError::invalid("key", "unknown changelog key tag")),
    };
    Ok(Some(entry))
}

fn campaign_counts(state: internal::CampaignCountsState) -> Result<CampaignCounts, DecodeError> {
    let mut counts = CampaignCounts { segments: state.segments, billable_segments: state.billable_segments, ..Default::default() };
    if state.by_status.len() > counts.by_status.len() {
        let detail = format!("{} message statuses counted; smsfold knows {}", state.by_status.len(), counts.by_status.len());
        return Err(DecodeError::invalid("counts", detail));
    }
    counts.by_status[..state.by_status.len()].copy_from_slice(&state.by_status);
    Ok(counts)
}

fn millis(value: &[u8]) -> Result<Timestamp, DecodeError> {
    let bytes: [u8; 8] =
        value.try_into().map_err(|_| DecodeError::invalid("value", "a retirement time has 8 bytes"))?;
    Ok(Timestamp::from_millis(i64::from_be_bytes(bytes)))
}

fn message_status(number: u32) -> Result<MessageStatus, DecodeError> {
    u8::try_from(number)
        .ok()
        .and_then(MessageStatus::from_rank)
        .ok_or_else(|| DecodeError::invalid("status", format!("unknown message status {number}")))
}

/// Joins a tag and ids into a key; every id but the last is preceded by its
/// length as four big-endian bytes.
fn tagged(tag: u8, ids: &[&str]) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + ids.iter().map(|id| id.len() + 4).sum::<usize>());
    key.push(tag);
    for (index, id) in ids.iter().enumerate() {
        if index + 1 < ids.len() {
            key.extend_from_slice(&(id.len() as u32).to_be_bytes());
        }
        key.extend_from_slice(id.as_bytes());
    }
    key
}

/// Splits a key that [`tagged`] joined from a tag and two ids back into the
/// two ids.
fn untagged_pair(key: &[u8]) -> Result<(&str, &str), DecodeError> {
    let invalid = |detail: &str| DecodeError::invalid("key", format!("{detail} in a carrier join changelog key"));
    let length: [u8; 4] =
        key.get(1..5).and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| invalid("missing id length"))?;
    let ids = &key[5..];
    let first_len = u32::from_be_bytes(length) as usize;
    if first_len > ids.len() {
        return Err(invalid("id length past the end"));
    }
    let (first, second) = ids.split_at(first_len);
    let first = std::str::from_utf8(first).map_err(|_| invalid("invalid UTF-8"))?;
    let second = std::str::from_utf8(second).map_err(|_| invalid("invalid UTF-8"))?;
    Ok((first, second))
}

#[cfg(test)]
mod tests {
    use smsfold_domain::{CarrierReport, ProgressReport, ReceiptHistory, ReceiptOutcome, SegmentDelivery};

    use super::*;

    #[test]
    fn message_entry_round_trips() {
        let projection = MessageProjection {
            message_id: "m-1".into(),
            status: MessageStatus::Delivered,
            status_at: Timestamp::from_millis(1_700_000_000_123),
            error_code: 7,
            campaign_id: Some("c-1".into()),
            segments: 3,
            channel: Channel::Mms,
            receipts: ReceiptHistory {
                status_report: Some(CarrierReport::new(Some("DELIVRD"), Some("000"))),
                progress: Some(ProgressReport {
                    outcome: ReceiptOutcome::Intermediate,
                    at: Timestamp::from_millis(1_700_000_000_000),
                    report: CarrierReport::new(Some("ACCEPTD"), None),
                }),
                segment_counts: vec![3],
                delivered_segments: vec![SegmentDelivery {
                    index: 2,
                    at: Timestamp::from_millis(1_700_000_000_100),
                    error_code: 0,
                    report: None,
                }],
            },
        };
        let (key, value) = message_record(&projection);
        assert_eq!(decode(&key, Some(&value)).unwrap(), Some(ChangelogEntry::Message(projection)));
    }

    #[test]
    fn campaign_entry_round_trips() {
        let projection = CampaignProjection {
            campaign_id: "c-1".into(),
            status: Some(CampaignStatus::Sending),
            status_at: Some(Timestamp::from_millis(5)),
            account_id: Some(String::new()),
            name: None,
            send_at: Some(Timestamp::from_millis(9)),
            recipients: Some(0),
            dispatched: None,
            counts: CampaignCounts {
                by_status: [3, 0, 0, 0, 0, 0, 2, 0, 1, 0, 7],
                segments: 19,
                billable_segments: 4,
            },
        };
        let (key, value) = campaign_record(&projection);
        let counts = Some(projection.counts);
        assert_eq!(decode(&key, Some(&value)).unwrap(), Some(ChangelogEntry::Campaign { projection, counts }));
    }

    #[test]
    fn campaign_entry_without_counts_decodes_as_such() {
        // As smsfold wrote campaign entries before it kept counts in them.
        let state = internal::CampaignState { campaign_id: "c-1".into(), status: 1, ..Default::default() };
        let decoded = decode(&campaign_key("c-1"), Some(&state.encode_to_vec())).unwrap();
        let Some(ChangelogEntry::Campaign { projection, counts }) = decoded else { panic!("not a campaign entry: {decoded:?}") };
        assert_eq!(counts, None);
        assert_eq!(projection.counts, CampaignCounts::default());
    }

    #[test]
    fn campaign_entry_with_too_many_statuses_is_rejected() {
        let counts = internal::CampaignCountsState { by_status: vec![1; 12], ..Default::default() };
        let state = internal::CampaignState { campaign_id: "c-1".into(), counts: Some(counts), ..Default::default() };
        let error = decode(&campaign_key("c-1"), Some(&state.encode_to_vec())).unwrap_err();
        assert!(error.to_string().contains("12 message statuses"), "{error}");
    }

    #[test]
    fn campaign_message_keys_do_not_collide() {
        let (first, _) = campaign_message_record("ab", "c", MessageStatus::Sent, 1, None);
        let (second, _) = campaign_message_record("a", "bc", MessageStatus::Sent, 1, None);
        assert_ne!(first, second);
    }

    #[test]
    fn campaign_message_entry_keeps_what_was_counted() {
        for counted in [None, Some((MessageStatus::Queued, 1)), Some((MessageStatus::Sent, 3))] {
            let (key, value) = campaign_message_record("c-1", "m-1", MessageStatus::Delivered, 3, counted);
            let decoded = decode(&key, Some(&value)).unwrap();
            let expected = ChangelogEntry::CampaignMessage {
                campaign_id: "c-1".to_owned(),
                message_id: "m-1".to_owned(),
                status: MessageStatus::Delivered,
                segments: 3,
                counted,
            };
            assert_eq!(decoded, Some(expected));
        }
    }

    #[test]
    fn rewrite_keeps_first_counted() {
        let queued = Some((MessageStatus::Queued, 1));
        let (key, earlier) = campaign_message_record("c-1", "m-1", MessageStatus::Sending, 1, queued);
        let (_, later) = campaign_message_record("c-1", "m-1", MessageStatus::Sent, 2, Some((MessageStatus::Sending, 1)));

        let combined = combine_rewrite(&key, &earlier, &later).expect("a campaign message entry");

        let expected = ChangelogEntry::CampaignMessage {
            campaign_id: "c-1".to_owned(),
            message_id: "m-1".to_owned(),
            status: MessageStatus::Sent,
            segments: 2,
            counted: queued,
        };
        assert_eq!(decode(&key, Some(&combined)).unwrap(), Some(expected));
        let (cancellation, value) = cancellation_record("c-1", "e-1", Timestamp::from_millis(1));
        assert_eq!(combine_rewrite(&cancellation, &value, &value), None);
    }

    #[test]
    fn unknown_counted_status_is_rejected() {
        let state = internal::CampaignMessageState {
            campaign_id: "c-1".into(),
            message_id: "m-1".into(),
            status: 3,
            segments: 1,
            counted_status: Some(99),
            counted_segments: 1,
        };
        let (key, _) = campaign_message_record("c-1", "m-1", MessageStatus::Sent, 1, None);
        let error = decode(&key, Some(&state.encode_to_vec())).unwrap_err();
        assert!(error.to_string().contains("99"), "{error}");
    }

    #[test]
    fn carrier_link_key_decodes() {
        let key = carrier_link_key("t:carrier3-0a1b", "carrier3-0a1b");

        let decoded = decode_carrier_key(&key).unwrap();

        assert_eq!(decoded, CarrierEntryKey::Link { join_key: "t:carrier3-0a1b", spelling: "carrier3-0a1b" });
    }

    #[test]
    fn pending_receipt_key_decodes() {
        let key = pending_receipt_key("n:4f2a", "EV0001-7");

        let decoded = decode_carrier_key(&key).unwrap();

        assert_eq!(decoded, CarrierEntryKey::PendingReceipt { join_key: "n:4f2a", event_id: "EV0001-7" });
    }

    #[test]
    fn carrier_key_with_empty_ids_decodes() {
        let key = pending_receipt_key("", "");

        let decoded = decode_carrier_key(&key).unwrap();

        assert_eq!(decoded, CarrierEntryKey::PendingReceipt { join_key: "", event_id: "" });
    }

    #[test]
    fn invalid_carrier_keys_rejected() {
        let mut past_end = carrier_link_key("n:4f2a", "4f2a");
        past_end.truncate(8);
        let mut not_utf8 = pending_receipt_key("n:4f2a", "EV1");
        not_utf8.push(0xff);
        let cases: [(&str, Vec<u8>); 5] = [
            ("empty key", Vec::new()),
            ("message key", message_key("m-1")),
            ("no id length", vec![CARRIER_LINK_TAG, 0, 0]),
            ("length past the end", past_end),
            ("invalid UTF-8", not_utf8),
        ];

        for (case, key) in cases {
            let error = decode_carrier_key(&key).expect_err(case);
            assert_eq!(error.reason(), "invalid_value", "{case}");
        }
    }

    #[test]
    fn tombstone_decodes_to_none() {
        assert_eq!(decode(&message_key("m-1"), None).unwrap(), None);
    }
}
