//! Tests of the per-message fold: the max-rank rule, rejected events,
//! campaign cancellation, and properties over random arrival orders with
//! duplicates.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;
use crate::event::{MessageEventKind, ReceiptOutcome};

pub(super) const MESSAGE: &str = "SM5f3c0d2b9e41";
pub(super) const CAMPAIGN: &str = "CA-spring-sale";
const OTHER_CAMPAIGN: &str = "CA-winter-sale";
const ERROR_CODE: u32 = 30003;
const OTHER_ERROR_CODE: u32 = 30005;
const SEGMENTS: u16 = 2;
/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
pub(super) const START_MILLIS: i64 = 1_767_225_600_000;

static OUTBOUND: [MessageStatus; 9] = [
    MessageStatus::Accepted,
    MessageStatus::Scheduled,
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Canceled,
    MessageStatus::Failed,
    MessageStatus::Undelivered,
    MessageStatus::Delivered,
];
static INBOUND: [MessageStatus; 2] = [MessageStatus::Receiving, MessageStatus::Received];
static ERROR_CODES: [u32; 3] = [0, ERROR_CODE, OTHER_ERROR_CODE];

pub(super) fn at(second: i64) -> Timestamp {
    Timestamp::from_millis(START_MILLIS + second * 1000)
}

pub(super) fn attributes(campaign: Option<&str>) -> MessageAttributes {
    MessageAttributes {
        campaign_id: campaign.map(str::to_owned),
        account_id: "AC-acme".to_owned(),
        from: "+15005550006".to_owned(),
        to: "+15005550009".to_owned(),
        channel: Channel::Sms,
        segments: SEGMENTS,
    }
}

pub(super) fn accepted(campaign: Option<&str>) -> MessageEventKind {
    MessageEventKind::Accepted { attributes: attributes(campaign), send_at: None }
}

pub(super) fn sent() -> MessageEventKind {
    MessageEventKind::Sent { carrier_message_ids: vec!["0A1B2C3D".to_owned()] }
}

fn failed(error_code: u32) -> MessageEventKind {
    MessageEventKind::Failed { error_code }
}

fn receipt(outcome: ReceiptOutcome, error_code: u32) -> MessageEventKind {
    MessageEventKind::DeliveryReceipt { outcome, error_code, done_at: None, carrier: None, segment: None }
}

fn delivered() -> MessageEventKind {
    receipt(ReceiptOutcome::Delivered, 0)
}

fn undelivered(error_code: u32) -> MessageEventKind {
    receipt(ReceiptOutcome::Undelivered, error_code)
}

fn receiving() -> MessageEventKind {
    MessageEventKind::InboundReceiving { attributes: attributes(None) }
}

fn received() -> MessageEventKind {
    MessageEventKind::InboundReceived { attributes: attributes(None) }
}

/// Builds an event kind that reports `status`. Only failures and receipts
/// carry `error_code`, and only accepted and inbound kinds carry `attributes`.
fn kind_for(status: MessageStatus, error_code: u32, attributes: &MessageAttributes) -> MessageEventKind {
    match status {
        MessageStatus::Accepted => {
            MessageEventKind::Accepted { attributes: attributes.clone(), send_at: None }
        }
        MessageStatus::Scheduled => MessageEventKind::Scheduled { send_at: Some(at(3600)) },
        MessageStatus::Queued => MessageEventKind::Queued,
        MessageStatus::Sending => MessageEventKind::Sending,
        MessageStatus::Sent => sent(),
        MessageStatus::Canceled => MessageEventKind::Canceled,
        MessageStatus::Failed => failed(error_code),
        MessageStatus::Undelivered => receipt(ReceiptOutcome::Undelivered, error_code),
        MessageStatus::Delivered => receipt(ReceiptOutcome::Delivered, error_code),
        MessageStatus::Receiving => MessageEventKind::InboundReceiving { attributes: attributes.clone() },
        MessageStatus::Received => MessageEventKind::InboundReceived { attributes: attributes.clone() },
    }
}

pub(super) fn event_for(message_id: &str, kind: MessageEventKind, second: i64) -> MessageEvent {
    MessageEvent {
        event_id: format!("EV-{message_id}-{}-{second}", kind.name()),
        occurred_at: at(second),
        message_id: message_id.to_owned(),
        kind,
    }
}

pub(super) fn event(kind: MessageEventKind, second: i64) -> MessageEvent {
    event_for(MESSAGE, kind, second)
}

/// Applies an event that the test expects the fold to accept.
pub(super) fn apply(fold: &mut MessageFold, event: &MessageEvent) -> Applied {
    match fold.apply(event) {
        Ok(applied) => applied,
        Err(reject) => panic!("event {} was rejected: {reject}", event.event_id),
    }
}

pub(super) fn projection(fold: &MessageFold, message_id: &str) -> MessageProjection {
    fold.get(message_id).unwrap_or_else(|| panic!("message {message_id} is not in the fold"))
}

pub(super) fn status_of(fold: &MessageFold, message_id: &str) -> MessageStatus {
    projection(fold, message_id).status
}

fn change(
    previous: Option<MessageStatus>,
    status: MessageStatus,
    second: i64,
    error_code: u32,
) -> MessageChange {
    MessageChange { previous, status, at: at(second), error_code }
}

#[test]
fn each_kind_maps_to_status() {
    let table = [
        (accepted(None), MessageStatus::Accepted, 0),
        (MessageEventKind::Scheduled { send_at: Some(at(3600)) }, MessageStatus::Scheduled, 0),
        (MessageEventKind::Queued, MessageStatus::Queued, 0),
        (MessageEventKind::Sending, MessageStatus::Sending, 0),
        (sent(), MessageStatus::Sent, 0),
        (MessageEventKind::Canceled, MessageStatus::Canceled, 0),
        (failed(ERROR_CODE), MessageStatus::Failed, ERROR_CODE),
        (undelivered(ERROR_CODE), MessageStatus::Undelivered, ERROR_CODE),
        (delivered(), MessageStatus::Delivered, 0),
        (receiving(), MessageStatus::Receiving, 0),
        (received(), MessageStatus::Received, 0),
    ];

    for (kind, status, error_code) in table {
        let name = kind.name();
        let mut fold = MessageFold::new();

        let applied = apply(&mut fold, &event(kind, 10));

        assert_eq!(applied.change, Some(change(None, status, 10, error_code)), "{name}");
        assert_eq!(status_of(&fold, MESSAGE), status, "{name}");
        assert_eq!(projection(&fold, MESSAGE).error_code, error_code, "{name}");
    }
}

#[test]
fn first_event_creates_message() {
    let mut fold = MessageFold::new();
    let kind = MessageEventKind::Accepted {
        attributes: MessageAttributes { channel: Channel::Mms, ..attributes(Some(CAMPAIGN)) },
        send_at: None,
    };

    let applied = apply(&mut fold, &event(kind, 5));

    assert_eq!(applied.change, Some(change(None, MessageStatus::Accepted, 5, 0)));
    assert_eq!(applied.canceled, None);
    let link = applied.campaign.expect("a campaign message returns a campaign link");
    assert_eq!(fold.campaign_id(link.campaign), CAMPAIGN);
    assert_eq!(link.status, MessageStatus::Accepted);
    assert_eq!(link.segments, SEGMENTS);
    assert_eq!(link.at, at(5));
    assert_eq!(link.previous, None);
    assert_eq!(fold.len(), 1);
    assert_eq!(
        fold.get(MESSAGE),
        Some(MessageProjection {
            message_id: MESSAGE.to_owned(),
            status: MessageStatus::Accepted,
            status_at: at(5),
            error_code: 0,
            campaign_id: Some(CAMPAIGN.to_owned()),
            segments: SEGMENTS,
            channel: Channel::Mms,
            receipts: ReceiptHistory::default(),
        })
    );
}

#[test]
fn one_off_message_has_no_link() {
    let mut fold = MessageFold::new();

    let applied = apply(&mut fold, &event(accepted(None), 0));

    assert_eq!(applied.campaign, None);
    assert_eq!(projection(&fold, MESSAGE).campaign_id, None);
}

#[test]
fn forward_moves_emit_changes() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(None), 0));

    let queued = apply(&mut fold, &event(MessageEventKind::Queued, 1));
    let sent = apply(&mut fold, &event(sent(), 2));
    let delivered = apply(&mut fold, &event(delivered(), 3));

    assert_eq!(queued.change, Some(change(Some(MessageStatus::Accepted), MessageStatus::Queued, 1, 0)));
    assert_eq!(sent.change, Some(change(Some(MessageStatus::Queued), MessageStatus::Sent, 2, 0)));
    assert_eq!(delivered.change, Some(change(Some(MessageStatus::Sent), MessageStatus::Delivered, 3, 0)));
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Delivered);
    assert_eq!(projection(&fold, MESSAGE).status_at, at(3));
}

#[test]
fn late_lower_event_changes_nothing() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 0));
    apply(&mut fold, &event(delivered(), 20));
    let before = projection(&fold, MESSAGE);

    let applied = apply(&mut fold, &event(sent(), 10));

    assert_eq!(applied, Applied::default());
    assert_eq!(projection(&fold, MESSAGE), before);
}

#[test]
fn repeated_event_emits_nothing() {
    let mut fold = MessageFold::new();
    let accepted = event(accepted(Some(CAMPAIGN)), 0);
    let sent = event(sent(), 1);
    apply(&mut fold, &accepted);
    apply(&mut fold, &sent);
    let before = projection(&fold, MESSAGE);

    let sent_again = apply(&mut fold, &sent);
    let accepted_again = apply(&mut fold, &accepted);

    assert_eq!(sent_again, Applied::default());
    assert_eq!(accepted_again, Applied::default());
    assert_eq!(projection(&fold, MESSAGE), before);
}

#[test]
fn statuses_can_be_skipped() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(None), 0));

    let applied = apply(&mut fold, &event(delivered(), 9));

    assert_eq!(applied.change, Some(change(Some(MessageStatus::Accepted), MessageStatus::Delivered, 9, 0)));
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Delivered);
}

#[test]
fn receipt_before_accepted_links_later() {
    let mut fold = MessageFold::new();

    let first = apply(&mut fold, &event(delivered(), 50));

    assert_eq!(first.change, Some(change(None, MessageStatus::Delivered, 50, 0)));
    assert_eq!(first.campaign, None);
    let early = projection(&fold, MESSAGE);
    assert_eq!(early.status, MessageStatus::Delivered);
    assert_eq!(early.campaign_id, None);
    assert_eq!(early.segments, 0);

    let accepted = apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 10));

    assert_eq!(accepted.change, None);
    assert_eq!(accepted.canceled, None);
    let link = accepted.campaign.expect("accepted names the campaign, so it returns a campaign link");
    assert_eq!(fold.campaign_id(link.campaign), CAMPAIGN);
    assert_eq!(link.status, MessageStatus::Delivered);
    assert_eq!(link.segments, SEGMENTS);
    assert_eq!(link.at, at(50));
    let late = projection(&fold, MESSAGE);
    assert_eq!(late.status, MessageStatus::Delivered);
    assert_eq!(late.status_at, at(50));
    assert_eq!(late.campaign_id.as_deref(), Some(CAMPAIGN));
    assert_eq!(late.segments, SEGMENTS);
}

#[test]
fn segments_keep_the_maximum() {
    let with_segments = |segments| MessageAttributes { segments, ..attributes(None) };
    let receiving = event(MessageEventKind::InboundReceiving { attributes: with_segments(1) }, 1);
    let received = event(MessageEventKind::InboundReceived { attributes: with_segments(3) }, 2);
    let mut receiving_first = MessageFold::new();
    apply(&mut receiving_first, &receiving);
    apply(&mut receiving_first, &received);
    let mut received_first = MessageFold::new();
    apply(&mut received_first, &received);

    let late_receiving = apply(&mut received_first, &receiving);

    assert_eq!(late_receiving, Applied::default());
    assert_eq!(projection(&receiving_first, MESSAGE).segments, 3);
    assert_eq!(projection(&received_first, MESSAGE).segments, 3);
}

#[test]
fn delivered_beats_undelivered_either_order() {
    let mut delivered_first = MessageFold::new();
    apply(&mut delivered_first, &event(delivered(), 10));
    let late_undelivered = apply(&mut delivered_first, &event(undelivered(ERROR_CODE), 20));

    let mut undelivered_first = MessageFold::new();
    apply(&mut undelivered_first, &event(undelivered(ERROR_CODE), 20));
    let late_delivered = apply(&mut undelivered_first, &event(delivered(), 10));

    assert_eq!(late_undelivered.change, None);
    assert_eq!(
        late_delivered.change,
        Some(change(Some(MessageStatus::Undelivered), MessageStatus::Delivered, 10, 0))
    );
    assert_eq!(status_of(&delivered_first, MESSAGE), MessageStatus::Delivered);
    assert_eq!(status_of(&undelivered_first, MESSAGE), MessageStatus::Delivered);
    assert_eq!(delivered_first.get(MESSAGE), undelivered_first.get(MESSAGE));
}

#[test]
fn failed_beats_canceled_either_order() {
    let mut failed_first = MessageFold::new();
    apply(&mut failed_first, &event(failed(ERROR_CODE), 10));
    let late_canceled = apply(&mut failed_first, &event(MessageEventKind::Canceled, 20));

    let mut canceled_first = MessageFold::new();
    apply(&mut canceled_first, &event(MessageEventKind::Canceled, 20));
    let late_failed = apply(&mut canceled_first, &event(failed(ERROR_CODE), 10));

    assert_eq!(late_canceled.change, None);
    assert_eq!(
        late_failed.change,
        Some(change(Some(MessageStatus::Canceled), MessageStatus::Failed, 10, ERROR_CODE))
    );
    assert_eq!(status_of(&failed_first, MESSAGE), MessageStatus::Failed);
    assert_eq!(status_of(&canceled_first, MESSAGE), MessageStatus::Failed);
    assert_eq!(failed_first.get(MESSAGE), canceled_first.get(MESSAGE));
}

#[test]
fn final_outcomes_follow_documented_ranks() {
    // Canceled < Failed < Undelivered < Delivered, and all of them above Sent.
    let ranked = [
        MessageStatus::Sent,
        MessageStatus::Canceled,
        MessageStatus::Failed,
        MessageStatus::Undelivered,
        MessageStatus::Delivered,
    ];

    for (position, &lower) in ranked.iter().enumerate() {
        for &higher in &ranked[position + 1..] {
            let lower_event = event(kind_for(lower, ERROR_CODE, &attributes(None)), 1);
            let higher_event = event(kind_for(higher, ERROR_CODE, &attributes(None)), 2);
            let mut lower_first = MessageFold::new();
            apply(&mut lower_first, &lower_event);
            apply(&mut lower_first, &higher_event);
            let mut higher_first = MessageFold::new();
            apply(&mut higher_first, &higher_event);
            apply(&mut higher_first, &lower_event);

            assert_eq!(status_of(&lower_first, MESSAGE), higher, "{lower} then {higher}");
            assert_eq!(status_of(&higher_first, MESSAGE), higher, "{higher} then {lower}");
        }
    }
}

#[test]
fn equal_rank_keeps_earliest_report() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(failed(OTHER_ERROR_CODE), 20));

    let earlier = apply(&mut fold, &event(failed(OTHER_ERROR_CODE), 10));

    assert_eq!(earlier, Applied::default());
    assert_eq!(projection(&fold, MESSAGE).status_at, at(10));
    assert_eq!(projection(&fold, MESSAGE).error_code, OTHER_ERROR_CODE);

    let later = apply(&mut fold, &event(failed(ERROR_CODE), 30));

    assert_eq!(later, Applied::default());
    assert_eq!(projection(&fold, MESSAGE).status_at, at(10));
    assert_eq!(projection(&fold, MESSAGE).error_code, OTHER_ERROR_CODE);

    // Of two reports at the same time, the one with the lower error code wins.
    let same_time = apply(&mut fold, &event(failed(ERROR_CODE), 10));

    assert_eq!(same_time, Applied::default());
    assert_eq!(projection(&fold, MESSAGE).status_at, at(10));
    assert_eq!(projection(&fold, MESSAGE).error_code, ERROR_CODE);
}

#[test]
fn inbound_on_outbound_rejected() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 0));
    let before = projection(&fold, MESSAGE);

    let result = fold.apply(&event(received(), 5));

    assert_eq!(
        result,
        Err(Reject::DirectionConflict {
            message_id: MESSAGE.to_owned(),
            status: "received",
            event: "inbound",
            state: "outbound",
        })
    );
    assert_eq!(projection(&fold, MESSAGE), before);
}

#[test]
fn outbound_on_inbound_rejected() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(receiving(), 0));
    let before = projection(&fold, MESSAGE);

    let result = fold.apply(&event(delivered(), 5));

    assert_eq!(
        result,
        Err(Reject::DirectionConflict {
            message_id: MESSAGE.to_owned(),
            status: "delivered",
            event: "outbound",
            state: "inbound",
        })
    );
    assert_eq!(projection(&fold, MESSAGE), before);
}

#[test]
fn other_campaign_id_rejected() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 0));
    let before = projection(&fold, MESSAGE);

    let result = fold.apply(&event(accepted(Some(OTHER_CAMPAIGN)), 1));

    assert_eq!(
        result,
        Err(Reject::CampaignConflict {
            message_id: MESSAGE.to_owned(),
            known: CAMPAIGN.to_owned(),
            claimed: OTHER_CAMPAIGN.to_owned(),
        })
    );
    assert_eq!(projection(&fold, MESSAGE), before);
}

#[test]
fn message_id_over_255_bytes_rejected() {
    let mut fold = MessageFold::new();
    let longest = "S".repeat(MAX_MESSAGE_ID_LEN);
    let too_long = "S".repeat(MAX_MESSAGE_ID_LEN + 1);

    let result = fold.apply(&event_for(&too_long, accepted(None), 0));

    assert_eq!(result, Err(Reject::MessageIdTooLong { len: 256, max: 255 }));
    assert!(fold.is_empty());
    assert_eq!(fold.get(&too_long), None);

    apply(&mut fold, &event_for(&longest, accepted(None), 0));

    assert_eq!(projection(&fold, &longest).message_id, longest);
}

/// Builds a fold with one message of `CAMPAIGN` at each stage of the send
/// path, and one accepted message of `OTHER_CAMPAIGN`.
fn fold_with_campaign_messages() -> MessageFold {
    let mut fold = MessageFold::new();
    let stages = [
        ("SM-accepted", None),
        ("SM-scheduled", Some(MessageEventKind::Scheduled { send_at: Some(at(3600)) })),
        ("SM-queued", Some(MessageEventKind::Queued)),
        ("SM-sending", Some(MessageEventKind::Sending)),
        ("SM-sent", Some(sent())),
        ("SM-delivered", Some(delivered())),
    ];
    for (message_id, stage) in stages {
        apply(&mut fold, &event_for(message_id, accepted(Some(CAMPAIGN)), 0));
        if let Some(kind) = stage {
            apply(&mut fold, &event_for(message_id, kind, 1));
        }
    }
    apply(&mut fold, &event_for("SM-other-campaign", accepted(Some(OTHER_CAMPAIGN)), 0));
    fold
}

#[test]
fn cancel_campaign_cancels_waiting_messages() {
    let mut fold = fold_with_campaign_messages();

    let mut canceled = fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));
    canceled.sort_by(|a, b| a.message_id.cmp(&b.message_id));

    let ids: Vec<&str> = canceled.iter().map(|c| c.message_id.as_str()).collect();
    assert_eq!(ids, ["SM-accepted", "SM-queued", "SM-scheduled"]);
    let previous = [MessageStatus::Accepted, MessageStatus::Queued, MessageStatus::Scheduled];
    for (message, previous) in canceled.iter().zip(previous) {
        assert_eq!(
            message.change,
            change(Some(previous), MessageStatus::Canceled, 100, 0),
            "{}",
            message.message_id
        );
        assert_eq!(fold.campaign_id(message.campaign.campaign), CAMPAIGN, "{}", message.message_id);
        assert_eq!(message.campaign.status, MessageStatus::Canceled, "{}", message.message_id);
        assert_eq!(message.campaign.segments, SEGMENTS, "{}", message.message_id);
        assert_eq!(message.campaign.at, at(100), "{}", message.message_id);
        assert_eq!(status_of(&fold, &message.message_id), MessageStatus::Canceled, "{}", message.message_id);
        assert_eq!(projection(&fold, &message.message_id).status_at, at(100), "{}", message.message_id);
    }
    let campaign = canceled[0].campaign.campaign;
    assert_eq!(fold.cancellation_event_id(campaign), Some("EV-cancel-1"));
}

#[test]
fn cancel_campaign_spares_later_stages() {
    let mut fold = fold_with_campaign_messages();

    fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    assert_eq!(status_of(&fold, "SM-sending"), MessageStatus::Sending);
    assert_eq!(status_of(&fold, "SM-sent"), MessageStatus::Sent);
    assert_eq!(status_of(&fold, "SM-delivered"), MessageStatus::Delivered);
}

#[test]
fn cancel_campaign_spares_other_campaigns() {
    let mut fold = fold_with_campaign_messages();

    let canceled = fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    assert!(canceled.iter().all(|c| c.message_id != "SM-other-campaign"));
    assert_eq!(status_of(&fold, "SM-other-campaign"), MessageStatus::Accepted);
}

#[test]
fn cancel_campaign_is_idempotent() {
    let mut fold = fold_with_campaign_messages();
    let first = fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));
    let campaign = first[0].campaign.campaign;
    let before: BTreeSet<_> = fold.projections().map(|p| format!("{p:?}")).collect();

    let repeated = fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));
    let redelivered = fold.cancel_campaign(CAMPAIGN, "EV-cancel-2", at(200));

    assert!(repeated.is_empty());
    assert!(redelivered.is_empty());
    assert_eq!(fold.cancellation_event_id(campaign), Some("EV-cancel-1"));
    let after: BTreeSet<_> = fold.projections().map(|p| format!("{p:?}")).collect();
    assert_eq!(after, before);
}

#[test]
fn accepted_after_cancel_is_canceled() {
    let mut fold = MessageFold::new();
    fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    let applied = apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 120));

    assert_eq!(applied.change, Some(change(None, MessageStatus::Accepted, 120, 0)));
    assert_eq!(
        applied.canceled,
        Some(change(Some(MessageStatus::Accepted), MessageStatus::Canceled, 100, 0))
    );
    let link = applied.campaign.expect("a canceled campaign message returns a campaign link");
    assert_eq!(fold.campaign_id(link.campaign), CAMPAIGN);
    assert_eq!(link.status, MessageStatus::Canceled);
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Canceled);
}

#[test]
fn queued_linked_after_cancel_is_canceled() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(MessageEventKind::Queued, 90));
    fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Queued);

    let applied = apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 80));

    assert_eq!(applied.change, None);
    assert_eq!(applied.canceled, Some(change(Some(MessageStatus::Queued), MessageStatus::Canceled, 100, 0)));
    assert_eq!(applied.campaign.map(|link| link.status), Some(MessageStatus::Canceled));
    // The campaign had never counted the message.
    assert_eq!(applied.campaign.map(|link| link.previous), Some(None));
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Canceled);
}

#[test]
fn sending_linked_after_cancel_stays() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(MessageEventKind::Sending, 90));
    fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    let applied = apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 80));

    assert_eq!(applied.canceled, None);
    assert_eq!(applied.campaign.map(|link| link.status), Some(MessageStatus::Sending));
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Sending);
}

#[test]
fn delivered_after_cancel_wins() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 0));
    fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(100));

    let applied = apply(&mut fold, &event(delivered(), 150));

    assert_eq!(applied.change, Some(change(Some(MessageStatus::Canceled), MessageStatus::Delivered, 150, 0)));
    assert_eq!(applied.canceled, None);
    assert_eq!(applied.campaign.map(|link| link.status), Some(MessageStatus::Delivered));
    assert_eq!(applied.campaign.map(|link| link.previous), Some(Some((MessageStatus::Canceled, SEGMENTS))));
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Delivered);
}

#[test]
fn links_name_the_link_before_them() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 0));

    let queued = apply(&mut fold, &event(MessageEventKind::Queued, 10));
    assert_eq!(queued.campaign.map(|link| link.previous), Some(Some((MessageStatus::Accepted, SEGMENTS))));

    let canceled = fold.cancel_campaign(CAMPAIGN, "EV-cancel-1", at(20));
    assert_eq!(canceled.len(), 1);
    assert_eq!(canceled[0].campaign.status, MessageStatus::Canceled);
    assert_eq!(canceled[0].campaign.previous, Some((MessageStatus::Queued, SEGMENTS)));
}

#[test]
fn heap_bytes_grow_with_messages() {
    let mut fold = MessageFold::new();
    let empty = fold.heap_bytes();
    for index in 0..10 {
        apply(&mut fold, &event_for(&format!("SM{index:08}"), accepted(Some(CAMPAIGN)), 0));
    }
    let ten = fold.heap_bytes();
    for index in 10..1000 {
        apply(&mut fold, &event_for(&format!("SM{index:08}"), accepted(Some(CAMPAIGN)), 0));
    }
    let thousand = fold.heap_bytes();

    assert!(ten > empty, "{ten} bytes for 10 messages, {empty} for none");
    assert!(thousand > ten, "{thousand} bytes for 1000 messages, {ten} for 10");
    // Each message costs at least its 40-byte table entry and its 10-byte id
    // with a length byte.
    assert!(thousand >= 1000 * (40 + 11), "{thousand} bytes for 1000 messages");
}

#[test]
fn eviction_frees_table_and_arena() {
    let mut fold = MessageFold::new();
    for index in 0..5000 {
        apply(&mut fold, &event_for(&format!("SM{index:08}"), sent(), 0));
    }
    apply(&mut fold, &event_for("recent", accepted(None), 48 * 3600));
    let table_before = fold.messages.allocation_size();
    let arena_before = fold.ids.allocation_size();

    let eviction = fold.evict(std::time::Duration::from_secs(24 * 3600));

    assert_eq!(eviction.evicted.len(), 5000);
    assert_eq!(fold.len(), 1);
    assert_eq!(fold.get("recent").map(|p| p.message_id), Some("recent".to_owned()));
    // 5,001 entries filled two chunks of 2,048 40-byte entries and part of
    // a third. The one left stays in the first chunk, and the other two
    // are freed.
    assert_eq!(table_before - fold.messages.allocation_size(), 2 * 2048 * 40);
    // 55,007 bytes of ids took one 64 KiB chunk. The compacted arena stores
    // "recent" in a first chunk of 256 bytes.
    assert_eq!(fold.ids.len(), 7);
    assert!(arena_before >= 64 * 1024, "{arena_before} arena bytes before eviction");
    assert!(fold.ids.allocation_size() < 1024, "{} arena bytes after eviction", fold.ids.allocation_size());
}

#[test]
fn longest_ids_survive_compaction() {
    let mut fold = MessageFold::new();
    let id_of = |index: usize| format!("{index:0>width$}", width = MAX_MESSAGE_ID_LEN);
    // 600 ids of 256 bytes with their length bytes span three arena chunks.
    // Two in three are sent and get evicted, the rest stay accepted.
    for index in 0..600 {
        let kind = if index % 3 == 0 { accepted(Some(CAMPAIGN)) } else { sent() };
        apply(&mut fold, &event_for(&id_of(index), kind, 0));
    }
    apply(&mut fold, &event_for("recent", accepted(None), 48 * 3600));
    for index in 0..600 {
        assert_eq!(fold.get(&id_of(index)).map(|p| p.message_id), Some(id_of(index)), "message {index}");
    }

    let eviction = fold.evict(std::time::Duration::from_secs(24 * 3600));

    assert_eq!(eviction.evicted.len(), 400);
    assert_eq!(fold.len(), 201);
    // The evicted ids took 102,400 of 153,607 bytes, so the arena was
    // rewritten with the live ids only.
    assert_eq!(fold.ids.len(), 200 * 256 + 7);
    for index in 0..600 {
        let expected = (index % 3 == 0).then(|| id_of(index));
        assert_eq!(fold.get(&id_of(index)).map(|p| p.message_id), expected, "message {index}");
    }
    assert_eq!(fold.get("recent").map(|p| p.message_id), Some("recent".to_owned()));
    let too_long = format!("{}x", id_of(0));
    let rejected = fold.apply(&event_for(&too_long, accepted(None), 48 * 3600));
    assert_eq!(rejected.unwrap_err(), Reject::MessageIdTooLong { len: MAX_MESSAGE_ID_LEN + 1, max: MAX_MESSAGE_ID_LEN });
}

// Property tests.

/// The events of one message as a property test generates them: one
/// direction, fixed attributes, and one or more reports per status.
#[derive(Debug, Clone)]
struct MessageScript {
    attributes: MessageAttributes,
    /// Status, second and error code of each event.
    reports: Vec<(MessageStatus, i64, u32)>,
}

impl MessageScript {
    fn events(&self, message_id: &str) -> Vec<MessageEvent> {
        self.reports
            .iter()
            .enumerate()
            .map(|(index, &(status, second, error_code))| MessageEvent {
                event_id: format!("EV-{message_id}-{index}"),
                occurred_at: at(second),
                message_id: message_id.to_owned(),
                kind: kind_for(status, error_code, &self.attributes),
            })
            .collect()
    }
}

/// Generates a random subset of the outbound or of the inbound statuses,
/// with one to three events per status. Times span only four seconds, so
/// that equal times and the error-code tie-break come up often.
fn script_strategy() -> impl Strategy<Value = MessageScript> {
    let statuses = prop_oneof![
        proptest::sample::subsequence(&OUTBOUND[..], 1..=OUTBOUND.len()),
        proptest::sample::subsequence(&INBOUND[..], 1..=INBOUND.len()),
    ];
    let campaign = proptest::option::of(Just(CAMPAIGN));
    let channel = prop_oneof![Just(Channel::Sms), Just(Channel::Mms)];

    (statuses, campaign, channel, 1u16..=6).prop_flat_map(|(statuses, campaign, channel, segments)| {
        let fixed = MessageAttributes { channel, segments, ..attributes(campaign) };
        let reports: Vec<_> = statuses
            .into_iter()
            .map(|status| {
                let report = (Just(status), 0i64..4, proptest::sample::select(&ERROR_CODES[..]));
                proptest::collection::vec(report, 1..=3)
            })
            .collect();
        (Just(fixed), reports).prop_map(|(attributes, reports)| MessageScript {
            attributes,
            reports: reports.into_iter().flatten().collect(),
        })
    })
}

/// Generates an arrival order of `len` events: every index once, up to `len`
/// indices again as duplicates, all shuffled.
pub(super) fn arrival_order(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..len, 0..=len).prop_flat_map(move |duplicates| {
        let mut order: Vec<usize> = (0..len).collect();
        order.extend(duplicates);
        Just(order).prop_shuffle()
    })
}

/// Computes a message's projection from its events without the fold: the
/// status of highest rank, and among the events of that status the earliest
/// time, with the lowest error code among the earliest.
fn expected_projection(message_id: &str, events: &[MessageEvent]) -> MessageProjection {
    let status = events.iter().map(|e| e.kind.status()).max().expect("a message has at least one event");
    let (status_at, error_code) = events
        .iter()
        .filter(|e| e.kind.status() == status)
        .map(|e| (e.occurred_at, e.kind.error_code()))
        .min()
        .expect("the highest status comes from an event");
    let attributes: Vec<&MessageAttributes> = events.iter().filter_map(|e| e.kind.attributes()).collect();
    MessageProjection {
        message_id: message_id.to_owned(),
        status,
        status_at,
        error_code,
        campaign_id: attributes.iter().find_map(|a| a.campaign_id.clone()),
        // Besides the attributes, a sent event shows one segment per carrier id.
        segments: events.iter().map(|e| e.kind.segments_hint()).max().unwrap_or(0),
        channel: if attributes.iter().any(|a| a.channel == Channel::Mms) {
            Channel::Mms
        } else {
            Channel::Sms
        },
        receipts: ReceiptHistory::default(),
    }
}

/// Applies `events` in `order` to a new fold and returns it with every
/// change the events caused, in order.
fn fold_in_order(
    events: &[MessageEvent],
    order: &[usize],
) -> Result<(MessageFold, Vec<MessageChange>), TestCaseError> {
    let mut fold = MessageFold::new();
    let mut changes = Vec::new();
    for &index in order {
        let applied = match fold.apply(&events[index]) {
            Ok(applied) => applied,
            Err(reject) => {
                return Err(TestCaseError::fail(format!("event {:?} was rejected: {reject}", events[index])))
            }
        };
        prop_assert_eq!(applied.canceled, None);
        changes.extend(applied.change);
    }
    Ok((fold, changes))
}

/// Checks that `changes` start from no status, rise strictly in rank, each
/// start where the one before ended, and end at `expected.status`. Checks too
/// that each change carries the time and error code of one of `events`.
fn check_changes(
    changes: &[MessageChange],
    expected: &MessageProjection,
    events: &[MessageEvent],
) -> Result<(), TestCaseError> {
    let distinct: BTreeSet<MessageStatus> = events.iter().map(|e| e.kind.status()).collect();
    prop_assert!(
        changes.len() <= distinct.len(),
        "{} changes for {} statuses",
        changes.len(),
        distinct.len()
    );

    let first = changes.first();
    prop_assert_eq!(first.map(|c| c.previous), Some(None));
    prop_assert_eq!(changes.last().map(|c| c.status), Some(expected.status));
    for pair in changes.windows(2) {
        prop_assert!(pair[1].status > pair[0].status, "{:?} follows {:?}", pair[1], pair[0]);
        prop_assert_eq!(pair[1].previous, Some(pair[0].status));
    }
    for change in changes {
        let caused_by_event = events.iter().any(|e| {
            e.kind.status() == change.status
                && e.occurred_at == change.at
                && e.kind.error_code() == change.error_code
        });
        prop_assert!(caused_by_event, "no event matches {:?}", change);
    }
    Ok(())
}

proptest! {
    #[test]
    fn one_message_order_independent(
        (script, first_order, second_order) in script_strategy().prop_flat_map(|script| {
            let len = script.reports.len();
            (Just(script), arrival_order(len), arrival_order(len))
        })
    ) {
        let events = script.events(MESSAGE);
        let expected = expected_projection(MESSAGE, &events);

        let (first, first_changes) = fold_in_order(&events, &first_order)?;
        let (second, second_changes) = fold_in_order(&events, &second_order)?;

        prop_assert_eq!(first.get(MESSAGE), second.get(MESSAGE));
        prop_assert_eq!(first.get(MESSAGE), Some(expected.clone()));
        check_changes(&first_changes, &expected, &events)?;
        check_changes(&second_changes, &expected, &events)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn interleaved_messages_fold_alone(
        (scripts, order) in proptest::collection::vec(script_strategy(), 20).prop_flat_map(|scripts| {
            let total = scripts.iter().map(|s| s.reports.len()).sum();
            (Just(scripts), arrival_order(total))
        })
    ) {
        let message_ids: Vec<String> = (0..scripts.len()).map(|index| format!("SM{index:02}")).collect();
        let per_message: Vec<Vec<MessageEvent>> =
            scripts.iter().zip(&message_ids).map(|(script, id)| script.events(id)).collect();
        let all: Vec<MessageEvent> = per_message.iter().flatten().cloned().collect();

        let (together, _) = fold_in_order(&all, &order)?;

        prop_assert_eq!(together.len(), scripts.len());
        for (message_id, events) in message_ids.iter().zip(&per_message) {
            let in_generated_order: Vec<usize> = (0..events.len()).collect();
            let (alone, _) = fold_in_order(events, &in_generated_order)?;
            prop_assert_eq!(together.get(message_id), alone.get(message_id));
            prop_assert_eq!(together.get(message_id), Some(expected_projection(message_id, events)));
        }
    }
}
