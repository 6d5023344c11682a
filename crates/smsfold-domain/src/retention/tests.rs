//! Given / when / then tests of retention in both folds.

use std::time::Duration;

use crate::event::{CampaignEvent, CampaignEventKind, MessageAttributes, MessageEvent, MessageEventKind, ReceiptOutcome};
use crate::key::MessageKey;
use crate::message_fold::MessageFold;
use crate::reject::Reject;
use crate::status::{CampaignStatus, MessageStatus};
use crate::time::Timestamp;
use crate::{CampaignFold, MessageUpdate};

const HOUR: i64 = 3_600_000;
const RETENTION: Duration = Duration::from_secs(24 * 3600);

fn event(message_id: &str, kind: MessageEventKind, at: i64) -> MessageEvent {
    MessageEvent {
        event_id: format!("{message_id}-{}-{at}", kind.name()),
        occurred_at: Timestamp::from_millis(at),
        message_id: message_id.to_owned(),
        kind,
    }
}

fn accepted(message_id: &str, at: i64) -> MessageEvent {
    let attributes = MessageAttributes { campaign_id: Some("c-1".into()), segments: 1, ..Default::default() };
    event(message_id, MessageEventKind::Accepted { attributes, send_at: None }, at)
}

fn delivered(message_id: &str, at: i64) -> MessageEvent {
    let kind = MessageEventKind::DeliveryReceipt {
        outcome: ReceiptOutcome::Delivered,
        error_code: 0,
        done_at: None,
        carrier: None,
        segment: None,
    };
    event(message_id, kind, at)
}

/// A fold with a delivered message at hour 0, a queued one at hour 0 and a
/// delivered one at hour 30; its watermark is hour 30.
fn fold_after_thirty_hours() -> MessageFold {
    let mut fold = MessageFold::new();
    fold.apply(&accepted("old-delivered", 0)).unwrap();
    fold.apply(&delivered("old-delivered", 10)).unwrap();
    fold.apply(&accepted("old-queued", 0)).unwrap();
    fold.apply(&event("old-queued", MessageEventKind::Queued, 20)).unwrap();
    fold.apply(&accepted("new-delivered", 30 * HOUR)).unwrap();
    fold.apply(&delivered("new-delivered", 30 * HOUR + 5)).unwrap();
    fold
}

#[test]
fn evict_removes_old_settled_only() {
    let mut fold = fold_after_thirty_hours();

    let eviction = fold.evict(RETENTION);

    assert_eq!(eviction.evicted, vec!["old-delivered".to_owned()]);
    assert_eq!(eviction.retired, vec![(MessageKey::of("old-delivered"), 30 * HOUR + 5)]);
    assert!(eviction.forgotten.is_empty());
    assert_eq!(fold.get("old-delivered"), None);
    assert_eq!(fold.get("old-queued").map(|p| p.status), Some(MessageStatus::Queued));
    assert_eq!(fold.get("new-delivered").map(|p| p.status), Some(MessageStatus::Delivered));
}

#[test]
fn late_event_for_retired_rejected() {
    let mut fold = fold_after_thirty_hours();
    fold.evict(RETENTION);

    let repeated = fold.apply(&delivered("old-delivered", 10));
    let newer = fold.apply(&event("old-delivered", MessageEventKind::Sent { carrier_message_ids: Vec::new() }, 31 * HOUR));

    assert_eq!(repeated.unwrap_err().reason(), "message_retired");
    assert_eq!(newer.unwrap_err().reason(), "message_retired");
    assert_eq!(fold.get("old-delivered"), None);
}

#[test]
fn retired_keys_forgotten_after_second_period() {
    let mut fold = fold_after_thirty_hours();
    fold.evict(RETENTION);
    fold.apply(&accepted("later", 60 * HOUR)).unwrap();

    let eviction = fold.evict(RETENTION);

    assert_eq!(eviction.forgotten, vec![(MessageKey::of("old-delivered"), 30 * HOUR + 5)]);
    assert_eq!(eviction.evicted, vec!["new-delivered".to_owned()]);
}

#[test]
fn event_beyond_horizon_rejected() {
    let mut fold = fold_after_thirty_hours();
    fold.apply(&accepted("later", 100 * HOUR)).unwrap();
    fold.evict(RETENTION);

    let result = fold.apply(&delivered("never-seen", 40 * HOUR));

    match result {
        Err(Reject::BeyondRetention { horizon_ms, .. }) => assert_eq!(horizon_ms, 100 * HOUR - 48 * HOUR),
        other => panic!("expected beyond_retention, got {other:?}"),
    }
    assert_eq!(fold.get("never-seen"), None);
}

#[test]
fn arena_compaction_keeps_remaining_ids() {
    let mut fold = MessageFold::new();
    for n in 0..100 {
        let id = format!("message-{n:03}");
        fold.apply(&accepted(&id, 0)).unwrap();
        if n % 10 != 0 {
            fold.apply(&delivered(&id, 1)).unwrap();
        }
    }
    fold.apply(&accepted("recent", 48 * HOUR)).unwrap();
    let before = fold.heap_bytes();

    let eviction = fold.evict(RETENTION);

    assert_eq!(eviction.evicted.len(), 90);
    assert_eq!(fold.len(), 11);
    for n in (0..100).step_by(10) {
        let id = format!("message-{n:03}");
        assert_eq!(fold.get(&id).map(|p| p.message_id), Some(id.clone()), "{id}");
    }
    assert_eq!(fold.get("recent").map(|p| p.message_id), Some("recent".to_owned()));
    assert!(fold.projections().all(|p| p.message_id.starts_with("message-") || p.message_id == "recent"));
    assert!(fold.heap_bytes() <= before);
}

#[test]
fn restored_retired_key_rejects_events() {
    let mut fold = MessageFold::new();
    fold.restore_retired(MessageKey::of("gone"), Timestamp::from_millis(5 * HOUR));

    let result = fold.apply(&delivered("gone", 6 * HOUR));

    assert_eq!(result.unwrap_err().reason(), "message_retired");
    assert_eq!(fold.watermark(), Timestamp::from_millis(5 * HOUR));
}

#[test]
fn restored_retirement_drops_earlier_restored_state() {
    let mut live = MessageFold::new();
    live.apply(&accepted("gone", 0)).unwrap();
    live.apply(&delivered("gone", HOUR)).unwrap();
    live.apply(&accepted("kept", 2 * HOUR)).unwrap();
    let gone = live.get("gone").unwrap();
    let kept = live.get("kept").unwrap();

    // The changelog before compaction: the message's last state, then its
    // tombstone (skipped by a restore) and its retirement.
    let mut fold = MessageFold::new();
    fold.restore(&gone).unwrap();
    fold.restore(&kept).unwrap();
    fold.restore_retired(MessageKey::of("gone"), Timestamp::from_millis(30 * HOUR));

    assert!(fold.get("gone").is_none());
    assert_eq!(fold.get("kept"), Some(kept));
    assert_eq!(fold.len(), 1);
    assert_eq!(fold.apply(&delivered("gone", 31 * HOUR)).unwrap_err().reason(), "message_retired");
}

fn campaign_event(kind: CampaignEventKind, at: i64) -> CampaignEvent {
    CampaignEvent {
        event_id: format!("{}-{at}", kind.name()),
        occurred_at: Timestamp::from_millis(at),
        campaign_id: "c-1".into(),
        kind,
    }
}

#[test]
fn ended_campaign_evicted_then_ignored() {
    let mut fold = CampaignFold::new();
    fold.apply(&campaign_event(CampaignEventKind::StartedSending { recipients: 1 }, 0)).unwrap();
    let update = MessageUpdate { campaign_id: "c-1", message_id: "m-1", status: MessageStatus::Sent, segments: 1, at: Timestamp::from_millis(1), previous: None };
    fold.record(&update);
    let completed = fold.apply(&campaign_event(CampaignEventKind::DispatchFinished { dispatched: 1 }, 2)).unwrap();
    assert_eq!(completed.map(|c| c.status), Some(CampaignStatus::Completed));
    let later = MessageUpdate { campaign_id: "c-2", message_id: "m-9", status: MessageStatus::Queued, segments: 1, at: Timestamp::from_millis(30 * HOUR), previous: None };
    fold.record(&later);

    let (evicted, forgotten) = fold.evict(RETENTION);

    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].campaign_id, "c-1");
    assert_eq!(evicted[0].messages, vec![MessageKey::of("m-1")]);
    assert!(forgotten.is_empty());
    assert_eq!(fold.get("c-1"), None);
    let receipt = MessageUpdate { status: MessageStatus::Delivered, at: Timestamp::from_millis(31 * HOUR), ..update };
    assert_eq!(fold.record(&receipt), None);
    assert_eq!(fold.get("c-1"), None);
    let cancel = fold.apply(&campaign_event(CampaignEventKind::Cancelled, 31 * HOUR));
    assert_eq!(cancel.unwrap_err().reason(), "campaign_retired");
    assert!(fold.get("c-2").is_some());
}

#[test]
fn restored_campaign_retirement_drops_earlier_restored_state() {
    let mut live = CampaignFold::new();
    live.apply(&campaign_event(CampaignEventKind::StartedSending { recipients: 1 }, 0)).unwrap();
    let projection = live.get("c-1").unwrap();

    let mut fold = CampaignFold::new();
    fold.restore_campaign(&projection);
    fold.restore_message("c-1", "m-1", MessageStatus::Delivered, 1, None);
    fold.restore_retired("c-1", Timestamp::from_millis(30 * HOUR));

    assert_eq!(fold.get("c-1"), None);
    assert_eq!(fold.projections().count(), 0);
    let cancel = fold.apply(&campaign_event(CampaignEventKind::Cancelled, 31 * HOUR));
    assert_eq!(cancel.unwrap_err().reason(), "campaign_retired");
}
