//! Tests of receipts in the per-message fold: outcomes that end nothing,
//! the carrier's raw reports, messages of several segments, and a property
//! test over random arrival orders that models these rules on its own.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::tests::{
    accepted, apply, arrival_order, at, attributes, event, projection, sent, status_of, CAMPAIGN, MESSAGE,
};
use super::*;
use crate::event::{CarrierReport, MessageEventKind, ReceiptOutcome, Segment, SmppReceipt};

fn report(stat: &str, err: &str) -> CarrierReport {
    CarrierReport::new(Some(stat), Some(err))
}

fn receipt(outcome: ReceiptOutcome, error_code: u32, carrier: Option<CarrierReport>, segment: Option<Segment>) -> MessageEventKind {
    MessageEventKind::DeliveryReceipt { outcome, error_code, done_at: None, carrier, segment }
}

fn segment_receipt(outcome: ReceiptOutcome, index: u16, count: u16, stat: &str, err: &str) -> MessageEventKind {
    let error_code = err.parse().unwrap_or(0);
    receipt(outcome, error_code, Some(report(stat, err)), Segment::new(index, count))
}

fn sent_with(carrier_ids: &[&str]) -> MessageEventKind {
    MessageEventKind::Sent { carrier_message_ids: carrier_ids.iter().map(|id| (*id).to_owned()).collect() }
}

/// A fold with a campaign message of three segments, sent at second 2.
fn fold_with_three_segments() -> MessageFold {
    let mut fold = MessageFold::new();
    let three = MessageEventKind::Accepted {
        attributes: MessageAttributes { segments: 3, ..attributes(Some(CAMPAIGN)) },
        send_at: None,
    };
    apply(&mut fold, &event(three, 1));
    apply(&mut fold, &event(sent_with(&["7a01", "7a02", "7a03"]), 2));
    fold
}

#[test]
fn intermediate_receipt_never_ends_message() {
    // Given a queued message
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(None), 1));
    apply(&mut fold, &event(MessageEventKind::Queued, 2));

    // When an ACCEPTD receipt and then one in an unknown state arrive
    let acceptd = apply(&mut fold, &event(receipt(ReceiptOutcome::Intermediate, 0, Some(report("ACCEPTD", "000")), None), 3));
    let unknown = apply(&mut fold, &event(receipt(ReceiptOutcome::Unknown, 0, Some(report("NOROUTE", "000")), None), 4));

    // Then the first shows that a carrier has the message, and neither ends it
    assert_eq!(acceptd.change.map(|c| (c.previous, c.status)), Some((Some(MessageStatus::Queued), MessageStatus::Sent)));
    assert_eq!(unknown.change, None);
    let receipts = projection(&fold, MESSAGE).receipts;
    assert_eq!(receipts.status_report, Some(report("ACCEPTD", "000")));
    assert_eq!(receipts.current_report(), Some(&report("ACCEPTD", "000")));
}

#[test]
fn progress_prefers_intermediate_over_unknown() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(sent(), 1));

    apply(&mut fold, &event(receipt(ReceiptOutcome::Unknown, 0, Some(report("UNKNOWN", "000")), None), 2));
    apply(&mut fold, &event(receipt(ReceiptOutcome::Intermediate, 0, Some(report("ENROUTE", "000")), None), 3));

    let receipts = projection(&fold, MESSAGE).receipts;
    assert_eq!(receipts.status_report, None, "the sent event reported the status");
    let progress = receipts.progress.clone().expect("a progress report");
    assert_eq!((progress.outcome, progress.at), (ReceiptOutcome::Intermediate, at(3)));
    assert_eq!(receipts.current_report(), Some(&report("ENROUTE", "000")));
}

#[test]
fn final_receipt_keeps_raw_report() {
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(sent(), 1));

    let applied = apply(&mut fold, &event(receipt(ReceiptOutcome::Undelivered, 1, Some(report("UNDELIV", "001")), None), 2));

    assert_eq!(applied.change.map(|c| (c.status, c.error_code)), Some((MessageStatus::Undelivered, 1)));
    assert_eq!(projection(&fold, MESSAGE).receipts.current_report(), Some(&report("UNDELIV", "001")));
}

#[test]
fn later_status_drops_raw_report() {
    // Given a message whose sent status came from an ACCEPTD receipt
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(receipt(ReceiptOutcome::Intermediate, 0, Some(report("ACCEPTD", "000")), None), 1));

    // When a platform-decided delivery arrives
    apply(&mut fold, &event(receipt(ReceiptOutcome::Delivered, 0, None, None), 2));

    // Then the delivered status has no raw report, and ACCEPTD remains shown
    // as the progress
    let receipts = projection(&fold, MESSAGE).receipts;
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Delivered);
    assert_eq!(receipts.status_report, None);
    assert_eq!(receipts.current_report(), Some(&report("ACCEPTD", "000")));
}

#[test]
fn multipart_delivered_after_last_segment() {
    let mut fold = fold_with_three_segments();

    let first = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 0, 3, "DELIVRD", "000"), 10));
    let third = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 2, 3, "DELIVRD", "000"), 12));
    let second = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 1, 3, "DELIVRD", "000"), 11));

    assert_eq!(first.change, None);
    assert_eq!(third.change, None);
    let change = second.change.expect("the last segment delivers the message");
    assert_eq!((change.previous, change.status), (Some(MessageStatus::Sent), MessageStatus::Delivered));
    assert_eq!(change.at, at(12), "delivered when the latest segment was");
    let link = second.campaign.expect("a campaign message");
    assert_eq!((link.status, link.segments), (MessageStatus::Delivered, 3));
}

#[test]
fn multipart_undelivered_on_one_failed_segment() {
    let mut fold = fold_with_three_segments();
    apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 0, 3, "DELIVRD", "000"), 10));

    let failed = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Undelivered, 1, 3, "EXPIRED", "034"), 11));

    let change = failed.change.expect("one failed segment ends the message");
    assert_eq!((change.status, change.error_code), (MessageStatus::Undelivered, 34));
    assert_eq!(projection(&fold, MESSAGE).receipts.current_report(), Some(&report("EXPIRED", "034")));
}

#[test]
fn multipart_intermediate_segment_ends_nothing() {
    let mut fold = fold_with_three_segments();
    for index in 0..2 {
        apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, index, 3, "DELIVRD", "000"), 10));
    }

    let enroute = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Intermediate, 2, 3, "ENROUTE", "000"), 11));

    assert_eq!(enroute.change, None);
    assert_eq!(status_of(&fold, MESSAGE), MessageStatus::Sent);
}

#[test]
fn segment_count_raises_segments() {
    // Given a campaign message accepted as one segment
    let mut fold = MessageFold::new();
    apply(&mut fold, &event(accepted(Some(CAMPAIGN)), 1));

    // When a receipt of one of its four segments arrives
    let applied = apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Intermediate, 3, 4, "ACCEPTD", "000"), 2));

    // Then its campaign counts four segments
    assert_eq!(applied.campaign.map(|link| link.segments), Some(4));
    assert_eq!(projection(&fold, MESSAGE).segments, 4);
}

#[test]
fn sent_carrier_ids_raise_segments() {
    let mut fold = MessageFold::new();

    apply(&mut fold, &event(sent_with(&["1", "2"]), 1));

    assert_eq!(projection(&fold, MESSAGE).segments, 2);
}

#[test]
fn unread_smpp_receipt_rejected() {
    let mut fold = MessageFold::new();
    let raw = SmppReceipt { text: Some("id:1 stat:DELIVRD".into()), ..SmppReceipt::default() };
    let kind = MessageEventKind::SmppReceipt { receipt: raw, error_code: 0, done_at: None };

    let result = fold.apply(&event(kind, 1));

    assert_eq!(result.map_err(|reject| reject.reason()), Err("receipt_not_read"));
    assert!(fold.is_empty());
}

#[test]
fn restore_keeps_receipt_history() {
    // Given a message with two of three segments delivered and a progress report
    let mut fold = fold_with_three_segments();
    apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 0, 3, "DELIVRD", "000"), 10));
    apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Delivered, 1, 3, "DELIVRD", "000"), 11));
    apply(&mut fold, &event(segment_receipt(ReceiptOutcome::Intermediate, 2, 3, "ACCEPTD", "000"), 11));
    let saved = projection(&fold, MESSAGE);

    // When a new fold restores it and the last segment is delivered there
    let mut restored = MessageFold::new();
    restored.restore(&saved).unwrap();
    let restored_projection = projection(&restored, MESSAGE);
    let last = event(segment_receipt(ReceiptOutcome::Delivered, 2, 3, "DELIVRD", "000"), 12);
    let applied = apply(&mut restored, &last);

    // Then it held the same history and completes as the original would
    assert_eq!(restored_projection, saved);
    assert_eq!(saved.receipts.delivered_segments.len(), 2);
    assert_eq!(saved.receipts.segment_counts, vec![3]);
    assert_eq!(applied.change.map(|c| (c.status, c.at)), Some((MessageStatus::Delivered, at(12))));
    assert_eq!(apply(&mut fold, &last).change, applied.change);
}

#[test]
fn carrier_report_is_cut() {
    let long = "X".repeat(100);

    let report = CarrierReport::new(Some(&long), Some("é".repeat(20).as_str()));

    assert_eq!(report.stat.as_deref().map(str::len), Some(CarrierReport::MAX_LEN));
    assert_eq!(report.err.as_deref().map(str::len), Some(CarrierReport::MAX_LEN), "16 two-byte characters");
}

// Property test.

const REPORTS: [(&str, &str); 4] = [("DELIVRD", "000"), ("UNDELIV", "001"), ("ACCEPTD", "000"), ("NOROUTE", "0034")];
const OUTCOMES: [ReceiptOutcome; 4] =
    [ReceiptOutcome::Unknown, ReceiptOutcome::Intermediate, ReceiptOutcome::Undelivered, ReceiptOutcome::Delivered];

/// Generates one outbound event kind: accepted, sent with one to three
/// carrier ids, failed, or a receipt of any outcome, with or without a raw
/// report, for the whole message or for one of its two or three segments.
fn kind_strategy() -> impl Strategy<Value = MessageEventKind> {
    let receipt = (
        proptest::sample::select(&OUTCOMES[..]),
        0u32..3,
        proptest::option::of(proptest::sample::select(&REPORTS[..])),
        proptest::option::of((2u16..=3).prop_flat_map(|count| (0..count, Just(count)))),
    )
        .prop_map(|(outcome, error_code, raw, segment)| {
            let carrier = raw.map(|(stat, err)| report(stat, err));
            receipt(outcome, error_code, carrier, segment.and_then(|(index, count)| Segment::new(index, count)))
        });
    prop_oneof![
        (1u16..=3).prop_map(|segments| MessageEventKind::Accepted {
            attributes: MessageAttributes { segments, ..attributes(Some(CAMPAIGN)) },
            send_at: None,
        }),
        (1usize..=3).prop_map(|ids| MessageEventKind::Sent {
            carrier_message_ids: (0..ids).map(|index| format!("c{index}")).collect(),
        }),
        Just(MessageEventKind::Failed { error_code: 2 }),
        receipt.clone(),
        receipt,
    ]
}

/// One status report in the model: status, then the tie-break key.
type ModelReport = (MessageStatus, (i64, u32, Option<CarrierReport>));

/// Computes the projection's status, status report and receipt history
/// from the events alone, by the rules in `receipts.rs`.
fn model(events: &[MessageEvent]) -> (ModelReport, ReceiptHistory, Vec<ModelReport>) {
    let mut reports: Vec<ModelReport> = Vec::new();
    let mut delivered: BTreeMap<u16, (i64, u32, Option<CarrierReport>)> = BTreeMap::new();
    let mut counts = BTreeSet::new();
    let mut progress: Option<(Reverse<ReceiptOutcome>, i64, Option<CarrierReport>)> = None;
    for event in events {
        let at = event.occurred_at.as_millis();
        let MessageEventKind::DeliveryReceipt { outcome, error_code, carrier, segment, .. } = &event.kind else {
            reports.push((event.kind.status(), (at, event.kind.error_code(), None)));
            continue;
        };
        let key = (at, *error_code, carrier.clone());
        let several = segment.filter(|segment| segment.count > 1);
        match (outcome, several) {
            (ReceiptOutcome::Delivered, Some(segment)) => {
                counts.insert(segment.count);
                let earliest = delivered.entry(segment.index).or_insert_with(|| key.clone());
                *earliest = (*earliest).clone().min(key.clone());
                reports.push((MessageStatus::Sent, key));
            }
            (ReceiptOutcome::Delivered, None) => reports.push((MessageStatus::Delivered, key)),
            (ReceiptOutcome::Undelivered, _) => reports.push((MessageStatus::Undelivered, key)),
            (ReceiptOutcome::Intermediate | ReceiptOutcome::Unknown, _) => {
                let candidate = (Reverse(*outcome), at, carrier.clone());
                progress = Some(progress.map_or(candidate.clone(), |current| current.min(candidate)));
                reports.push((MessageStatus::Sent, key));
            }
        }
    }
    let completion = counts
        .iter()
        .filter(|&&count| (0..count).all(|index| delivered.contains_key(&index)))
        .filter_map(|&count| (0..count).map(|index| delivered[&index].clone()).max())
        .min();
    if let Some(completion) = completion {
        reports.push((MessageStatus::Delivered, completion));
    }

    let status = reports.iter().map(|(status, _)| *status).max().expect("at least one event");
    let winner = reports.iter().filter(|(s, _)| *s == status).map(|(_, key)| key.clone()).min().expect("a report");
    let history = ReceiptHistory {
        status_report: winner.2.clone(),
        progress: progress.map(|(Reverse(outcome), at, report)| ProgressReport {
            outcome,
            at: Timestamp::from_millis(at),
            report: report.unwrap_or_default(),
        }),
        segment_counts: counts.into_iter().collect(),
        delivered_segments: delivered
            .into_iter()
            .map(|(index, (at, error_code, report))| SegmentDelivery {
                index,
                at: Timestamp::from_millis(at),
                error_code,
                report,
            })
            .collect(),
    };
    ((status, winner), history, reports)
}

/// Applies the events in `order`, returning the fold and each change with
/// the number of events applied when it was published.
fn fold_all(events: &[MessageEvent], order: &[usize]) -> Result<(MessageFold, Vec<(usize, MessageChange)>), TestCaseError> {
    let mut fold = MessageFold::new();
    let mut changes = Vec::new();
    for (applied_count, &index) in order.iter().enumerate() {
        let applied = fold.apply(&events[index]).map_err(|reject| TestCaseError::fail(reject.to_string()))?;
        changes.extend(applied.change.map(|change| (applied_count + 1, change)));
    }
    Ok((fold, changes))
}

proptest! {
    #[test]
    fn receipts_order_independent(
        (events, first_order, second_order) in proptest::collection::vec((kind_strategy(), 0i64..4), 1..10)
            .prop_flat_map(|kinds| {
                let events: Vec<MessageEvent> = kinds.into_iter().map(|(kind, second)| event(kind, second)).collect();
                let len = events.len();
                (Just(events), arrival_order(len), arrival_order(len))
            })
    ) {
        let ((status, (status_at, error_code, _)), history, _) = model(&events);

        let (first, first_changes) = fold_all(&events, &first_order)?;
        let (second, _) = fold_all(&events, &second_order)?;

        let projected = first.get(MESSAGE).expect("the message");
        prop_assert_eq!(Some(projected.clone()), second.get(MESSAGE));
        prop_assert_eq!(projected.status, status);
        prop_assert_eq!(projected.status_at, Timestamp::from_millis(status_at));
        prop_assert_eq!(projected.error_code, error_code);
        prop_assert_eq!(&projected.receipts, &history);
        let segments = events.iter().map(|e| e.kind.segments_hint()).max().unwrap_or(0);
        prop_assert_eq!(projected.segments, segments);

        prop_assert_eq!(first_changes.first().map(|(_, c)| c.previous), Some(None));
        prop_assert_eq!(first_changes.last().map(|(_, c)| c.status), Some(status));
        for pair in first_changes.windows(2) {
            prop_assert!(pair[1].1.status > pair[0].1.status, "{:?} follows {:?}", pair[1], pair[0]);
        }
        // A change reports what the events applied so far show: a segment's
        // earlier receipt that arrives later moves the projection's time,
        // not a change already published.
        for (applied_count, change) in &first_changes {
            let arrived: Vec<MessageEvent> = first_order[..*applied_count].iter().map(|&index| events[index].clone()).collect();
            let (_, _, reports) = model(&arrived);
            let reported = reports.iter().any(|(s, (at, code, _))| {
                *s == change.status && *at == change.at.as_millis() && *code == change.error_code
            });
            prop_assert!(reported, "no report matches {:?}", change);
        }
    }
}
