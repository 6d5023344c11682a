//! Tests of the per-campaign fold: the lifecycle, message counts, completion,
//! cancellation, and a property over random message updates.

use proptest::prelude::*;

use super::*;

const CAMPAIGN: &str = "CA-spring-sale";
const ACCOUNT: &str = "AC-acme";
const NAME: &str = "Spring sale";
/// 2026-01-01T00:00:00Z in milliseconds since the Unix epoch.
const START_MILLIS: i64 = 1_767_225_600_000;

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

fn at(second: i64) -> Timestamp {
    Timestamp::from_millis(START_MILLIS + second * 1000)
}

fn created() -> CampaignEventKind {
    CampaignEventKind::Created { account_id: ACCOUNT.to_owned(), name: NAME.to_owned() }
}

fn scheduled() -> CampaignEventKind {
    CampaignEventKind::Scheduled { send_at: at(3600) }
}

fn started_sending(recipients: u64) -> CampaignEventKind {
    CampaignEventKind::StartedSending { recipients }
}

fn dispatch_finished(dispatched: u64) -> CampaignEventKind {
    CampaignEventKind::DispatchFinished { dispatched }
}

fn event(kind: CampaignEventKind, second: i64) -> CampaignEvent {
    CampaignEvent {
        event_id: format!("EV-{}-{second}", kind.name()),
        occurred_at: at(second),
        campaign_id: CAMPAIGN.to_owned(),
        kind,
    }
}

/// Applies a lifecycle event that the test expects the fold to accept.
fn apply(fold: &mut CampaignFold, kind: CampaignEventKind, second: i64) -> Option<CampaignChange> {
    let event = event(kind, second);
    match fold.apply(&event) {
        Ok(change) => change,
        Err(reject) => panic!("event {} was rejected: {reject}", event.event_id),
    }
}

fn update(message_id: &str, status: MessageStatus, segments: u16, second: i64) -> MessageUpdate<'_> {
    MessageUpdate { campaign_id: CAMPAIGN, message_id, status, segments, at: at(second), previous: None }
}

/// Builds an update that follows one of `previous`, with `segments` segments.
fn next_update(
    message_id: &str,
    previous: MessageStatus,
    status: MessageStatus,
    segments: u16,
    second: i64,
) -> MessageUpdate<'_> {
    MessageUpdate { previous: Some((previous, segments)), ..update(message_id, status, segments, second) }
}

fn projection(fold: &CampaignFold) -> CampaignProjection {
    fold.get(CAMPAIGN).expect("the fold has seen the campaign")
}

fn status_of(fold: &CampaignFold) -> Option<CampaignStatus> {
    projection(fold).status
}

fn counts_of(fold: &CampaignFold) -> CampaignCounts {
    projection(fold).counts
}

/// Builds the counts a test expects from (status, messages) pairs.
fn counts(by_status: &[(MessageStatus, u64)], segments: u64, billable_segments: u64) -> CampaignCounts {
    let mut counts = CampaignCounts { segments, billable_segments, ..CampaignCounts::default() };
    for &(status, messages) in by_status {
        counts.by_status[status.index()] = messages;
    }
    counts
}

/// Builds a fold whose campaign was created, scheduled and started sending
/// to three recipients.
fn sending_fold() -> CampaignFold {
    let mut fold = CampaignFold::new();
    apply(&mut fold, created(), 0);
    apply(&mut fold, scheduled(), 1);
    apply(&mut fold, started_sending(3), 3600);
    fold
}

#[test]
fn lifecycle_moves_forward() {
    let mut fold = CampaignFold::new();

    let draft = apply(&mut fold, created(), 0);
    let scheduled = apply(&mut fold, scheduled(), 1);
    let sending = apply(&mut fold, started_sending(3), 3600);
    let dispatched = apply(&mut fold, dispatch_finished(3), 3660);

    let empty = CampaignCounts::default();
    assert_eq!(
        draft,
        Some(CampaignChange { previous: None, status: CampaignStatus::Draft, at: at(0), counts: empty })
    );
    assert_eq!(
        scheduled,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Draft),
            status: CampaignStatus::Scheduled,
            at: at(1),
            counts: empty,
        })
    );
    assert_eq!(
        sending,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Scheduled),
            status: CampaignStatus::Sending,
            at: at(3600),
            counts: empty,
        })
    );
    assert_eq!(dispatched, None);
    assert_eq!(
        fold.get(CAMPAIGN),
        Some(CampaignProjection {
            campaign_id: CAMPAIGN.to_owned(),
            status: Some(CampaignStatus::Sending),
            status_at: Some(at(3600)),
            account_id: Some(ACCOUNT.to_owned()),
            name: Some(NAME.to_owned()),
            send_at: Some(at(3600)),
            recipients: Some(3),
            dispatched: Some(3),
            counts: empty,
        })
    );
}

#[test]
fn counts_follow_message_updates() {
    let mut fold = sending_fold();

    fold.record(&update("SM1", MessageStatus::Accepted, 1, 10));
    fold.record(&update("SM2", MessageStatus::Queued, 1, 11));
    fold.record(&update("SM3", MessageStatus::Queued, 2, 12));
    fold.record(&update("SM4", MessageStatus::Delivered, 3, 13));

    let counts = counts_of(&fold);
    assert_eq!(counts.count(MessageStatus::Accepted), 1);
    assert_eq!(counts.count(MessageStatus::Queued), 2);
    assert_eq!(counts.delivered(), 1);
    assert_eq!(counts.messages(), 4);
    assert_eq!(counts.settled(), 1);
    assert_eq!(counts.segments, 7);
    assert_eq!(counts.billable_segments, 3);
}

#[test]
fn messages_before_lifecycle_have_no_status() {
    let mut fold = CampaignFold::new();

    let change = fold.record(&update("SM1", MessageStatus::Sent, 1, 10));

    assert_eq!(change, None);
    assert_eq!(status_of(&fold), None);
    assert_eq!(projection(&fold).status_at, None);
    assert_eq!(counts_of(&fold).count(MessageStatus::Sent), 1);
}

#[test]
fn billable_segments_skip_failed_canceled() {
    let mut fold = sending_fold();

    fold.record(&update("SM-sent", MessageStatus::Sent, 2, 10));
    fold.record(&update("SM-delivered", MessageStatus::Delivered, 3, 11));
    fold.record(&update("SM-undelivered", MessageStatus::Undelivered, 1, 12));
    fold.record(&update("SM-failed", MessageStatus::Failed, 4, 13));
    fold.record(&update("SM-canceled", MessageStatus::Canceled, 5, 14));

    let counts = counts_of(&fold);
    assert_eq!(counts.segments, 15);
    assert_eq!(counts.billable_segments, 6);
}

#[test]
fn repeated_update_counts_once() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Sent, 2, 10));

    let change = fold.record(&update("SM1", MessageStatus::Sent, 2, 10));

    assert_eq!(change, None);
    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 1)], 2, 2));
}

#[test]
fn lower_update_counts_once() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Delivered, 2, 20));

    let change = fold.record(&update("SM1", MessageStatus::Sent, 2, 10));

    assert_eq!(change, None);
    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Delivered, 1)], 2, 2));
}

#[test]
fn higher_update_moves_one_count() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Queued, 2, 10));
    fold.record(&update("SM2", MessageStatus::Queued, 2, 10));

    fold.record(&update("SM1", MessageStatus::Sent, 2, 20));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Queued, 1), (MessageStatus::Sent, 1)], 4, 2));

    fold.record(&update("SM1", MessageStatus::Failed, 2, 30));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Queued, 1), (MessageStatus::Failed, 1)], 4, 0));
}

#[test]
fn completes_when_last_message_settles() {
    let mut fold = sending_fold();
    apply(&mut fold, dispatch_finished(3), 3660);
    fold.record(&update("SM1", MessageStatus::Delivered, 1, 3700));
    fold.record(&update("SM2", MessageStatus::Undelivered, 2, 3701));

    let queued = fold.record(&update("SM3", MessageStatus::Queued, 1, 3702));

    assert_eq!(queued, None);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Sending));

    let last = fold.record(&update("SM3", MessageStatus::Sent, 1, 3710));

    let expected_counts = counts(
        &[(MessageStatus::Sent, 1), (MessageStatus::Undelivered, 1), (MessageStatus::Delivered, 1)],
        4,
        4,
    );
    assert_eq!(
        last,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Sending),
            status: CampaignStatus::Completed,
            at: at(3710),
            counts: expected_counts,
        })
    );
    assert_eq!(status_of(&fold), Some(CampaignStatus::Completed));
    assert_eq!(projection(&fold).status_at, Some(at(3710)));
}

#[test]
fn completed_campaign_keeps_counting() {
    let mut fold = sending_fold();
    apply(&mut fold, dispatch_finished(1), 3660);
    fold.record(&update("SM1", MessageStatus::Sent, 1, 3700));

    let receipt = fold.record(&update("SM1", MessageStatus::Delivered, 1, 3800));

    assert_eq!(receipt, None);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Completed));
    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Delivered, 1)], 1, 1));
}

#[test]
fn dispatch_after_settled_completes_at_once() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Delivered, 1, 3700));
    fold.record(&update("SM2", MessageStatus::Failed, 1, 3701));

    let change = apply(&mut fold, dispatch_finished(2), 3720);

    assert_eq!(
        change,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Sending),
            status: CampaignStatus::Completed,
            at: at(3720),
            counts: counts(&[(MessageStatus::Failed, 1), (MessageStatus::Delivered, 1)], 2, 1),
        })
    );
}

#[test]
fn dispatch_without_start_moves_to_sending() {
    let mut fold = CampaignFold::new();
    apply(&mut fold, created(), 0);

    let change = apply(&mut fold, dispatch_finished(2), 60);

    assert_eq!(
        change,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Draft),
            status: CampaignStatus::Sending,
            at: at(60),
            counts: CampaignCounts::default(),
        })
    );
    assert_eq!(projection(&fold).recipients, None);
}

#[test]
fn dispatch_without_start_can_complete() {
    let mut fold = CampaignFold::new();
    apply(&mut fold, created(), 0);
    fold.record(&update("SM1", MessageStatus::Delivered, 1, 30));
    fold.record(&update("SM2", MessageStatus::Sent, 1, 31));

    let change = apply(&mut fold, dispatch_finished(2), 60);

    assert_eq!(
        change,
        Some(CampaignChange {
            previous: Some(CampaignStatus::Draft),
            status: CampaignStatus::Completed,
            at: at(60),
            counts: counts(&[(MessageStatus::Sent, 1), (MessageStatus::Delivered, 1)], 2, 2),
        })
    );
}

#[test]
fn cancel_from_each_open_status() {
    let setups = [
        (vec![], CampaignStatus::Draft),
        (vec![scheduled()], CampaignStatus::Scheduled),
        (vec![scheduled(), started_sending(3)], CampaignStatus::Sending),
    ];

    for (setup, previous) in setups {
        let mut fold = CampaignFold::new();
        apply(&mut fold, created(), 0);
        for kind in setup {
            apply(&mut fold, kind, 1);
        }

        let change = apply(&mut fold, CampaignEventKind::Cancelled, 10);

        assert_eq!(
            change,
            Some(CampaignChange {
                previous: Some(previous),
                status: CampaignStatus::Cancelled,
                at: at(10),
                counts: CampaignCounts::default(),
            }),
            "cancel from {previous}"
        );
        assert_eq!(status_of(&fold), Some(CampaignStatus::Cancelled), "cancel from {previous}");
    }
}

#[test]
fn cancel_after_completed_rejected() {
    let mut fold = sending_fold();
    apply(&mut fold, dispatch_finished(0), 3660);
    let before = projection(&fold);

    let result = fold.apply(&event(CampaignEventKind::Cancelled, 3700));

    assert_eq!(
        result,
        Err(Reject::CampaignFinal {
            campaign_id: CAMPAIGN.to_owned(),
            status: "completed",
            event: "campaign_cancelled",
        })
    );
    assert_eq!(projection(&fold), before);
}

#[test]
fn repeated_cancel_emits_nothing() {
    let mut fold = sending_fold();
    apply(&mut fold, CampaignEventKind::Cancelled, 3700);

    let repeated = apply(&mut fold, CampaignEventKind::Cancelled, 3700);

    assert_eq!(repeated, None);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Cancelled));
    assert_eq!(projection(&fold).status_at, Some(at(3700)));
}

#[test]
fn cancelled_campaign_never_completes() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Delivered, 1, 3650));
    apply(&mut fold, CampaignEventKind::Cancelled, 3700);

    let dispatched = apply(&mut fold, dispatch_finished(2), 3710);
    let last = fold.record(&update("SM2", MessageStatus::Canceled, 1, 3700));

    assert_eq!(dispatched, None);
    assert_eq!(last, None);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Cancelled));
    assert_eq!(
        counts_of(&fold),
        counts(&[(MessageStatus::Canceled, 1), (MessageStatus::Delivered, 1)], 2, 1)
    );
}

#[test]
fn late_lifecycle_events_record_details() {
    let mut fold = CampaignFold::new();
    let started = apply(&mut fold, started_sending(3), 3600);

    let late_created = apply(&mut fold, created(), 0);
    let late_scheduled = apply(&mut fold, scheduled(), 1);

    assert_eq!(started.map(|change| change.previous), Some(None));
    assert_eq!(late_created, None);
    assert_eq!(late_scheduled, None);
    let campaign = projection(&fold);
    assert_eq!(campaign.status, Some(CampaignStatus::Sending));
    assert_eq!(campaign.status_at, Some(at(3600)));
    assert_eq!(campaign.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(campaign.name.as_deref(), Some(NAME));
    assert_eq!(campaign.send_at, Some(at(3600)));
}

#[test]
fn late_start_after_completion_records_recipients() {
    let mut fold = CampaignFold::new();
    apply(&mut fold, created(), 0);
    fold.record(&update("SM1", MessageStatus::Sent, 1, 30));
    apply(&mut fold, dispatch_finished(1), 60);

    let late_start = apply(&mut fold, started_sending(1), 20);

    assert_eq!(late_start, None);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Completed));
    assert_eq!(projection(&fold).recipients, Some(1));
}

#[test]
fn delivery_rate_counts_outcomes() {
    let mut fold = sending_fold();
    let statuses = [
        MessageStatus::Delivered,
        MessageStatus::Delivered,
        MessageStatus::Delivered,
        MessageStatus::Undelivered,
        MessageStatus::Failed,
        MessageStatus::Sent,
        MessageStatus::Canceled,
        MessageStatus::Canceled,
    ];
    for (index, status) in statuses.into_iter().enumerate() {
        fold.record(&update(&format!("SM{index}"), status, 1, 10));
    }

    let counts = counts_of(&fold);

    assert_eq!(counts.failed(), 2);
    assert_eq!(counts.delivery_rate(), Some(0.6));
}

#[test]
fn delivery_rate_none_without_outcomes() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Sent, 1, 10));
    fold.record(&update("SM2", MessageStatus::Canceled, 1, 11));

    assert_eq!(counts_of(&fold).delivery_rate(), None);
    assert_eq!(CampaignCounts::default().delivery_rate(), None);
}

#[test]
fn delivery_rate_excludes_canceled() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Delivered, 1, 10));
    fold.record(&update("SM2", MessageStatus::Canceled, 1, 11));
    fold.record(&update("SM3", MessageStatus::Canceled, 1, 12));

    assert_eq!(counts_of(&fold).delivery_rate(), Some(1.0));
}

#[test]
fn many_messages_counted_and_evicted() {
    let mut fold = sending_fold();
    apply(&mut fold, dispatch_finished(1000), 3660);
    let ids: Vec<String> = (0..1000).map(|n| format!("SM{n:04}")).collect();
    for id in &ids {
        fold.record(&update(id, MessageStatus::Sending, 1, 3700));
    }
    // Every third message is delivered with two segments, and a repeated
    // lower update changes nothing.
    for id in ids.iter().step_by(3) {
        fold.record(&update(id, MessageStatus::Delivered, 2, 3800));
        fold.record(&update(id, MessageStatus::Queued, 1, 3801));
    }

    assert_eq!(fold.message(CAMPAIGN, "SM0000"), Some((MessageStatus::Delivered, 2)));
    assert_eq!(fold.message(CAMPAIGN, "SM0001"), Some((MessageStatus::Sending, 1)));
    assert_eq!(fold.message(CAMPAIGN, "SM0999"), Some((MessageStatus::Delivered, 2)));
    assert_eq!(fold.message(CAMPAIGN, "SM1000"), None);
    let expected = counts(&[(MessageStatus::Sending, 666), (MessageStatus::Delivered, 334)], 1334, 668);
    assert_eq!(counts_of(&fold), expected);
    assert_eq!(status_of(&fold), Some(CampaignStatus::Sending));

    for id in &ids {
        fold.record(&update(id, MessageStatus::Sent, 1, 3900));
    }
    assert_eq!(status_of(&fold), Some(CampaignStatus::Completed));
    // A message of another campaign moves the watermark past the retention.
    let other = MessageUpdate {
        campaign_id: "CA-other",
        message_id: "SM-other",
        status: MessageStatus::Sent,
        segments: 1,
        at: at(7600),
        previous: None,
    };
    fold.record(&other);

    let (evicted, forgotten) = fold.evict(std::time::Duration::from_secs(3600));

    assert!(forgotten.is_empty());
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].campaign_id, CAMPAIGN);
    let mut keys = evicted[0].messages.clone();
    keys.sort_unstable();
    let mut expected_keys: Vec<MessageKey> = ids.iter().map(|id| MessageKey::of(id)).collect();
    expected_keys.sort_unstable();
    assert_eq!(keys, expected_keys);
    assert!(fold.get(CAMPAIGN).is_none());
    assert_eq!(fold.message(CAMPAIGN, "SM0000"), None);
}

#[test]
fn restore_message_replaces_entry() {
    let mut fold = CampaignFold::new();
    fold.restore_message(CAMPAIGN, "SM1", MessageStatus::Queued, 1, None);
    fold.restore_message(CAMPAIGN, "SM2", MessageStatus::Sent, 2, None);

    fold.restore_message(CAMPAIGN, "SM1", MessageStatus::Delivered, 3, None);

    assert_eq!(fold.message(CAMPAIGN, "SM1"), Some((MessageStatus::Delivered, 3)));
    assert_eq!(fold.message(CAMPAIGN, "SM2"), Some((MessageStatus::Sent, 2)));
    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 1), (MessageStatus::Delivered, 1)], 5, 5));
}

#[test]
fn restore_message_moves_what_was_counted() {
    let mut fold = CampaignFold::new();
    // SM2 has an entry; SM1 was counted as queued without one.
    fold.restore_message(CAMPAIGN, "SM2", MessageStatus::Queued, 1, None);
    fold.restore_counts(CAMPAIGN, counts(&[(MessageStatus::Queued, 2)], 2, 0));

    fold.restore_message(CAMPAIGN, "SM1", MessageStatus::Sent, 1, Some((MessageStatus::Queued, 1)));
    // SM2 moves from its entry, whatever the record lists as counted.
    fold.restore_message(CAMPAIGN, "SM2", MessageStatus::Sent, 1, Some((MessageStatus::Accepted, 1)));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 2)], 2, 2));
}

#[test]
fn heap_bytes_per_message_under_thirty() {
    let mut fold = sending_fold();
    let ids: Vec<String> = (0..5000).map(|n| format!("SM{n:04}")).collect();
    for id in &ids {
        fold.record(&update(id, MessageStatus::Sent, 1, 3700));
    }

    // 5,000 entries of 20 bytes in 256-entry chunks, and an index of 8,192
    // buckets of 5 bytes: about 29 bytes per message.
    let heap_bytes = fold.heap_bytes();
    assert!(heap_bytes > 20 * 5000, "{heap_bytes} bytes");
    assert!(heap_bytes < 30 * 5000, "{heap_bytes} bytes");
}

// Property tests.

/// Generates the updates of 1 to 12 messages, each with 1 to 4 updates of a
/// random outbound status and segment count.
fn updates_strategy() -> impl Strategy<Value = Vec<Vec<(MessageStatus, u16)>>> {
    let one_update = (proptest::sample::select(&OUTBOUND[..]), 1u16..=4);
    proptest::collection::vec(proptest::collection::vec(one_update, 1..=4), 1..=12)
}

/// Generates an arrival order of `len` updates: every index once, up to
/// `len` indices again as duplicates, all shuffled.
/// Generates updates, an arrival order for them, and a position in that
/// order, from 0 to its length.
#[allow(clippy::type_complexity)]
fn updates_in_order_with_position() -> impl Strategy<Value = (Vec<Vec<(MessageStatus, u16)>>, Vec<usize>, usize)> {
    updates_strategy()
        .prop_flat_map(|messages| {
            let total = messages.iter().map(Vec::len).sum();
            (Just(messages), arrival_order(total))
        })
        .prop_flat_map(|(messages, order)| {
            let len = order.len();
            (Just(messages), Just(order), 0..=len)
        })
}

fn arrival_order(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..len, 0..=len).prop_flat_map(move |duplicates| {
        let mut order: Vec<usize> = (0..len).collect();
        order.extend(duplicates);
        Just(order).prop_shuffle()
    })
}

/// Counts each message once, at its highest status and its highest segment
/// count, without the fold.
fn expected_counts(messages: &[Vec<(MessageStatus, u16)>]) -> CampaignCounts {
    let mut expected = CampaignCounts::default();
    for updates in messages {
        let status = updates.iter().map(|&(status, _)| status).max().expect("a message has an update");
        let segments = u64::from(updates.iter().map(|&(_, segments)| segments).max().unwrap_or(0));
        expected.by_status[status.index()] += 1;
        expected.segments += segments;
        let billable =
            matches!(status, MessageStatus::Sent | MessageStatus::Undelivered | MessageStatus::Delivered);
        if billable {
            expected.billable_segments += segments;
        }
    }
    expected
}

/// Returns true when every message's highest status is sent or final.
fn all_settled(messages: &[Vec<(MessageStatus, u16)>]) -> bool {
    messages.iter().all(|updates| {
        let status = updates.iter().map(|&(status, _)| status).max();
        matches!(
            status,
            Some(
                MessageStatus::Sent
                    | MessageStatus::Canceled
                    | MessageStatus::Failed
                    | MessageStatus::Undelivered
                    | MessageStatus::Delivered
            )
        )
    })
}

/// Flattens per-message updates into (message id, status, segments) rows.
fn flatten(messages: &[Vec<(MessageStatus, u16)>]) -> Vec<(String, MessageStatus, u16)> {
    messages
        .iter()
        .enumerate()
        .flat_map(|(index, updates)| {
            updates.iter().map(move |&(status, segments)| (format!("SM{index:02}"), status, segments))
        })
        .collect()
}

proptest! {
    #[test]
    fn counts_match_max_status_per_message(
        (messages, order) in updates_strategy().prop_flat_map(|messages| {
            let total = messages.iter().map(Vec::len).sum();
            (Just(messages), arrival_order(total))
        })
    ) {
        let rows = flatten(&messages);
        let mut fold = sending_fold();

        for (second, &index) in order.iter().enumerate() {
            let (message_id, status, segments) = &rows[index];
            fold.record(&update(message_id, *status, *segments, second as i64));
        }

        prop_assert_eq!(counts_of(&fold), expected_counts(&messages));
    }

    #[test]
    fn completion_ignores_arrival_order(
        (messages, order, dispatch_position) in updates_in_order_with_position()
    ) {
        let rows = flatten(&messages);
        let dispatched = messages.len() as u64;
        let mut fold = sending_fold();
        let mut changes = Vec::new();

        // Dispatch finished arrives just before the update at
        // `dispatch_position`, or after every update.
        for position in 0..=order.len() {
            let second = 4000 + position as i64;
            if position == dispatch_position {
                changes.extend(apply(&mut fold, dispatch_finished(dispatched), second));
            }
            if let Some(&index) = order.get(position) {
                let (message_id, status, segments) = &rows[index];
                changes.extend(fold.record(&update(message_id, *status, *segments, second)));
            }
        }

        let completions = changes.iter().filter(|c| c.status == CampaignStatus::Completed).count();
        let settled = all_settled(&messages);
        let expected_status = if settled { CampaignStatus::Completed } else { CampaignStatus::Sending };
        prop_assert_eq!(status_of(&fold), Some(expected_status));
        prop_assert_eq!(completions, usize::from(settled));
        prop_assert_eq!(counts_of(&fold), expected_counts(&messages));
    }
}

#[test]
fn count_moves_a_message_from_its_previous_status() {
    let mut fold = sending_fold();
    fold.count(&update("SM1", MessageStatus::Queued, 1, 3700));
    fold.count(&next_update("SM1", MessageStatus::Queued, MessageStatus::Sent, 1, 3701));
    fold.count(&update("SM2", MessageStatus::Queued, 2, 3702));
    fold.count(&next_update("SM1", MessageStatus::Sent, MessageStatus::Delivered, 1, 3703));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Queued, 1), (MessageStatus::Delivered, 1)], 3, 1));
    assert_eq!(fold.message(CAMPAIGN, "SM1"), None, "count keeps no entry");
}

#[test]
fn count_moves_grown_segments() {
    let mut fold = sending_fold();
    fold.count(&update("SM1", MessageStatus::Sent, 1, 3700));
    let grown = MessageUpdate { previous: Some((MessageStatus::Sent, 1)), ..update("SM1", MessageStatus::Sent, 3, 3701) };
    fold.count(&grown);

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 1)], 3, 3));
}

#[test]
fn count_completes_the_campaign() {
    let mut fold = sending_fold();
    apply(&mut fold, dispatch_finished(2), 3660);
    fold.count(&update("SM1", MessageStatus::Sent, 1, 3700));
    let queued = fold.count(&update("SM2", MessageStatus::Queued, 1, 3701));
    assert_eq!(queued, None);

    let last = fold.count(&next_update("SM2", MessageStatus::Queued, MessageStatus::Failed, 1, 3710));

    assert_eq!(last.as_ref().map(|change| change.status), Some(CampaignStatus::Completed));
    assert_eq!(last.map(|change| change.counts), Some(counts(&[(MessageStatus::Sent, 1), (MessageStatus::Failed, 1)], 2, 1)));
}

#[test]
fn entry_counts_a_message_that_count_updates() {
    let mut fold = sending_fold();
    fold.record(&update("SM1", MessageStatus::Queued, 1, 3700));
    let sent = next_update("SM1", MessageStatus::Queued, MessageStatus::Sent, 1, 3701);
    fold.count(&sent);
    // Delivered twice, as at-least-once delivery may: the entry holds the
    // message, so the second changes nothing.
    fold.count(&sent);

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 1)], 1, 1));
    assert_eq!(fold.message(CAMPAIGN, "SM1"), Some((MessageStatus::Sent, 1)));
}

#[test]
fn record_after_count_moves_the_counted_message() {
    let mut fold = sending_fold();
    fold.count(&update("SM1", MessageStatus::Queued, 1, 3700));
    let sent = next_update("SM1", MessageStatus::Queued, MessageStatus::Sent, 1, 3701);
    fold.record(&sent);
    fold.record(&sent);

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 1)], 1, 1));
}

#[test]
fn restored_counts_take_later_updates() {
    let mut fold = CampaignFold::new();
    fold.restore_campaign(&projection(&sending_fold()));
    fold.restore_counts(CAMPAIGN, counts(&[(MessageStatus::Queued, 2)], 2, 0));

    fold.count(&next_update("SM1", MessageStatus::Queued, MessageStatus::Delivered, 1, 3700));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Queued, 1), (MessageStatus::Delivered, 1)], 2, 1));
}

#[test]
fn restored_counts_keep_restored_entries() {
    let mut fold = CampaignFold::new();
    fold.restore_message(CAMPAIGN, "SM1", MessageStatus::Queued, 1, None);
    fold.restore_counts(CAMPAIGN, counts(&[(MessageStatus::Queued, 2)], 2, 0));

    // SM1 is counted by its entry; SM2 by its previous status.
    fold.count(&next_update("SM1", MessageStatus::Queued, MessageStatus::Sent, 1, 3700));
    fold.count(&next_update("SM2", MessageStatus::Queued, MessageStatus::Sent, 1, 3701));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Sent, 2)], 2, 2));
}

#[test]
fn counts_never_go_below_zero() {
    let mut fold = sending_fold();
    // A previous status the fold never counted.
    fold.count(&next_update("SM1", MessageStatus::Sent, MessageStatus::Delivered, 2, 3700));

    assert_eq!(counts_of(&fold), counts(&[(MessageStatus::Delivered, 1)], 2, 2));
}

/// One message's updates as (status, segments, previous update).
type Chain = Vec<(MessageStatus, u16, Option<(MessageStatus, u16)>)>;

/// Turns each message's updates into the updates its message fold would
/// send: only those that raise its status or segments, each with the one
/// before it as its previous.
fn forward_chains(messages: &[Vec<(MessageStatus, u16)>]) -> Vec<Chain> {
    messages
        .iter()
        .map(|updates| {
            let mut chain = Vec::new();
            let mut current: Option<(MessageStatus, u16)> = None;
            for &(status, segments) in updates {
                let next = match current {
                    Some((s, g)) => (s.max(status), g.max(segments)),
                    None => (status, segments),
                };
                if current != Some(next) {
                    chain.push((next.0, next.1, current));
                    current = Some(next);
                }
            }
            chain
        })
        .collect()
}

proptest! {
    #[test]
    fn count_matches_record_on_updates_in_order(
        (messages, order, recorded) in updates_in_order_with_position()
    ) {
        // Interleave the messages' chains in `order`, keeping each message's
        // own order, and give the first `recorded` updates to `record`.
        let chains = forward_chains(&messages);
        let owners: Vec<usize> = flatten(&messages)
            .iter()
            .map(|(message_id, _, _)| message_id[2..].parse().expect("ids are SM and a number"))
            .collect();
        let mut next = vec![0; chains.len()];
        let mut fold = sending_fold();
        for (position, &index) in order.iter().enumerate() {
            let message = owners[index];
            let Some(&(status, segments, previous)) = chains[message].get(next[message]) else { continue };
            next[message] += 1;
            let id = format!("SM{message:02}");
            let update = MessageUpdate { previous, ..update(&id, status, segments, position as i64) };
            if position < recorded {
                fold.record(&update);
            } else {
                fold.count(&update);
            }
        }

        prop_assert_eq!(counts_of(&fold), expected_counts(&messages));
    }
}
