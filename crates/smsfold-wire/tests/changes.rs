//! Round trips of the published status changes through both formats, and the
//! exact JSON shape that consumers read.

use std::borrow::Cow;

use serde_json::json;
use smsfold_domain::{CampaignStatus, MessageStatus, Timestamp};
use smsfold_wire::{CampaignStatusChange, Counts, Format, MessageStatusChange};

const FORMATS: [Format; 2] = [Format::Json, Format::Protobuf];

/// 2024-03-15T12:31:00Z.
const AT_MS: i64 = 1_710_505_860_000;

fn encode_message(change: &MessageStatusChange<'_>, format: Format) -> Vec<u8> {
    let mut buf = Vec::new();
    change.encode(format, &mut buf);
    buf
}

fn encode_campaign(change: &CampaignStatusChange<'_>, format: Format) -> Vec<u8> {
    let mut buf = Vec::new();
    change.encode(format, &mut buf);
    buf
}

fn assert_message_round_trips(change: &MessageStatusChange<'_>) {
    for format in FORMATS {
        let bytes = encode_message(change, format);
        let decoded = MessageStatusChange::decode(format, &bytes)
            .unwrap_or_else(|error| panic!("{format:?} decode failed: {error}"));
        assert_eq!(&decoded, change, "{format:?}");
    }
}

fn assert_campaign_round_trips(change: &CampaignStatusChange<'_>) {
    for format in FORMATS {
        let bytes = encode_campaign(change, format);
        let decoded = CampaignStatusChange::decode(format, &bytes)
            .unwrap_or_else(|error| panic!("{format:?} decode failed: {error}"));
        assert_eq!(&decoded, change, "{format:?}");
    }
}

fn delivered_change() -> MessageStatusChange<'static> {
    MessageStatusChange {
        message_id: Cow::Borrowed("m-1"),
        campaign_id: Some(Cow::Borrowed("c-1")),
        previous: Some(MessageStatus::Sent),
        status: MessageStatus::Delivered,
        occurred_at: Timestamp::from_millis(AT_MS),
        cause_event_id: Cow::Borrowed("e-9"),
        error_code: 0,
        receipt_stat: None,
        receipt_err: None,
    }
}

/// Counts before any message has an outcome: no delivery rate, and no
/// recipients or dispatched count yet.
fn counts_without_outcomes() -> Counts {
    Counts {
        accepted: 3,
        scheduled: 0,
        queued: 2,
        sending: 0,
        sent: 0,
        canceled: 0,
        failed: 0,
        undelivered: 0,
        delivered: 0,
        messages: 5,
        segments: 7,
        billable_segments: 0,
        recipients: None,
        dispatched: None,
        delivery_rate: None,
    }
}

/// Counts of a completed campaign: 900 delivered of 1000 with an outcome.
fn counts_completed() -> Counts {
    Counts {
        accepted: 0,
        scheduled: 0,
        queued: 0,
        sending: 0,
        sent: 0,
        canceled: 0,
        failed: 40,
        undelivered: 60,
        delivered: 900,
        messages: 1_000,
        segments: 1_150,
        billable_segments: 1_100,
        recipients: Some(1_000),
        dispatched: Some(1_000),
        delivery_rate: Some(0.9),
    }
}

fn completed_change() -> CampaignStatusChange<'static> {
    CampaignStatusChange {
        campaign_id: Cow::Borrowed("c-1"),
        previous: Some(CampaignStatus::Sending),
        status: CampaignStatus::Completed,
        occurred_at: Timestamp::from_millis(AT_MS),
        cause_event_id: Cow::Borrowed("e-9"),
        counts: counts_completed(),
    }
}

#[test]
fn message_change_round_trips() {
    assert_message_round_trips(&delivered_change());
}

#[test]
fn first_message_change_round_trips() {
    let change = MessageStatusChange {
        message_id: Cow::Borrowed("m-2"),
        campaign_id: None,
        previous: None,
        status: MessageStatus::Accepted,
        occurred_at: Timestamp::from_millis(AT_MS + 250),
        cause_event_id: Cow::Borrowed("e-1"),
        error_code: 0,
        receipt_stat: None,
        receipt_err: None,
    };
    assert_message_round_trips(&change);
}

#[test]
fn receipt_change_round_trips_raw_report() {
    let change = MessageStatusChange {
        status: MessageStatus::Undelivered,
        error_code: 1,
        receipt_stat: Some(Cow::Borrowed("UNDELIV")),
        receipt_err: Some(Cow::Borrowed("001")),
        ..delivered_change()
    };

    assert_message_round_trips(&change);
    let json = String::from_utf8(encode_message(&change, Format::Json)).unwrap();
    assert!(json.ends_with(r#""receipt_stat":"UNDELIV","receipt_err":"001"}"#), "{json}");
}

#[test]
fn change_without_receipt_omits_raw_keys() {
    let json = String::from_utf8(encode_message(&delivered_change(), Format::Json)).unwrap();

    assert!(!json.contains("receipt_stat"), "{json}");
}

#[test]
fn failed_message_change_round_trips() {
    let change = MessageStatusChange {
        previous: Some(MessageStatus::Sending),
        status: MessageStatus::Failed,
        error_code: 30_007,
        ..delivered_change()
    };
    assert_message_round_trips(&change);
}

#[test]
fn every_message_status_round_trips() {
    for status in MessageStatus::ALL {
        let change = MessageStatusChange { previous: Some(status), status, ..delivered_change() };
        assert_message_round_trips(&change);
    }
}

#[test]
fn first_campaign_change_round_trips() {
    let change = CampaignStatusChange {
        campaign_id: Cow::Borrowed("c-2"),
        previous: None,
        status: CampaignStatus::Draft,
        occurred_at: Timestamp::from_millis(AT_MS),
        cause_event_id: Cow::Borrowed("ce-1"),
        counts: counts_without_outcomes(),
    };
    assert_campaign_round_trips(&change);
}

#[test]
fn campaign_change_with_rate_round_trips() {
    assert_campaign_round_trips(&completed_change());
}

#[test]
fn campaign_rate_without_short_decimal_round_trips() {
    // 2/3 has no short decimal form, so JSON must write and parse every
    // significant digit to get the same f64 back.
    let counts = Counts {
        delivered: 2,
        undelivered: 1,
        failed: 0,
        messages: 3,
        segments: 3,
        billable_segments: 3,
        delivery_rate: Some(2.0 / 3.0),
        ..counts_completed()
    };
    assert_campaign_round_trips(&CampaignStatusChange { counts, ..completed_change() });
}

#[test]
fn every_campaign_status_round_trips() {
    for status in CampaignStatus::ALL {
        let change = CampaignStatusChange { previous: Some(status), status, ..completed_change() };
        assert_campaign_round_trips(&change);
    }
}

#[test]
fn message_change_json_shape() {
    let bytes = encode_message(&delivered_change(), Format::Json);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let expected = json!({
        "message_id": "m-1",
        "campaign_id": "c-1",
        "previous_status": "sent",
        "status": "delivered",
        "occurred_at": "2024-03-15T12:31:00Z",
        "cause_event_id": "e-9",
        "error_code": 0
    });
    assert_eq!(value, expected);
}

#[test]
fn first_message_change_json_has_nulls() {
    let change = MessageStatusChange { campaign_id: None, previous: None, ..delivered_change() };
    let bytes = encode_message(&change, Format::Json);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["campaign_id"], serde_json::Value::Null);
    assert_eq!(value["previous_status"], serde_json::Value::Null);
}

#[test]
fn campaign_change_json_shape() {
    let bytes = encode_campaign(&completed_change(), Format::Json);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let expected = json!({
        "campaign_id": "c-1",
        "previous_status": "sending",
        "status": "completed",
        "occurred_at": "2024-03-15T12:31:00Z",
        "cause_event_id": "e-9",
        "counts": {
            "accepted": 0,
            "scheduled": 0,
            "queued": 0,
            "sending": 0,
            "sent": 0,
            "canceled": 0,
            "failed": 40,
            "undelivered": 60,
            "delivered": 900,
            "messages": 1000,
            "segments": 1150,
            "billable_segments": 1100,
            "recipients": 1000,
            "dispatched": 1000,
            "delivery_rate": 0.9
        }
    });
    assert_eq!(value, expected);
}

#[test]
fn campaign_counts_json_has_nulls() {
    let change = CampaignStatusChange { counts: counts_without_outcomes(), ..completed_change() };
    let bytes = encode_campaign(&change, Format::Json);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["counts"]["recipients"], serde_json::Value::Null);
    assert_eq!(value["counts"]["dispatched"], serde_json::Value::Null);
    assert_eq!(value["counts"]["delivery_rate"], serde_json::Value::Null);
}

#[test]
fn json_time_keeps_milliseconds() {
    let change = MessageStatusChange { occurred_at: Timestamp::from_millis(AT_MS + 250), ..delivered_change() };
    let bytes = encode_message(&change, Format::Json);
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(value["occurred_at"], "2024-03-15T12:31:00.25Z");
}

#[test]
fn encode_appends_to_buffer() {
    for format in FORMATS {
        let mut buf = b"prefix".to_vec();
        delivered_change().encode(format, &mut buf);
        assert!(buf.starts_with(b"prefix"), "{format:?}");
        let decoded = MessageStatusChange::decode(format, &buf[6..]).unwrap();
        assert_eq!(decoded, delivered_change(), "{format:?}");
    }
}

#[test]
fn unknown_status_is_rejected() {
    let json = br#"{"message_id":"m-1","campaign_id":null,"previous_status":null,"status":"lost",
        "occurred_at":"2024-03-15T12:31:00Z","cause_event_id":"e-9","error_code":0}"#;
    let error = MessageStatusChange::decode(Format::Json, json).unwrap_err();
    assert_eq!(error.reason(), "invalid_value", "{error}");
    assert!(error.to_string().contains("status"), "{error}");
}
