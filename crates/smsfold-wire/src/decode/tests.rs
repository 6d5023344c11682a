use proptest::prelude::*;
use prost::Message;
use smsfold_domain::{
    CampaignEvent, CampaignEventKind, Channel, MessageAttributes, MessageEvent, MessageEventKind,
    ReceiptOutcome, Timestamp,
};

use super::{decode_campaign_event, decode_message_event};
use crate::content_type::Format;
use crate::error::DecodeError;
use crate::proto;
use crate::proto::campaign_event::Kind as CampaignKind;
use crate::proto::message_event::Kind as MessageKind;

/// 2024-03-15T12:30:00.250Z, the `occurred_at` of every event below.
const OCCURRED_AT_MS: i64 = 1_710_505_800_250;
/// 2024-03-15T18:00:00Z, used as `send_at`.
const SEND_AT_MS: i64 = 1_710_525_600_000;
/// 2024-03-15T12:30:07Z, used as a receipt's `done_at`.
const DONE_AT_MS: i64 = 1_710_505_807_000;

fn proto_time(millis: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

fn proto_message(kind: MessageKind) -> proto::MessageEvent {
    proto::MessageEvent {
        event_id: "e-1".to_owned(),
        occurred_at: proto_time(OCCURRED_AT_MS),
        message_id: "m-1".to_owned(),
        kind: Some(kind),
    }
}

fn proto_campaign(kind: CampaignKind) -> proto::CampaignEvent {
    proto::CampaignEvent {
        event_id: "ce-1".to_owned(),
        occurred_at: proto_time(OCCURRED_AT_MS),
        campaign_id: "c-1".to_owned(),
        kind: Some(kind),
    }
}

fn expected_message(kind: MessageEventKind) -> MessageEvent {
    MessageEvent {
        event_id: "e-1".to_owned(),
        occurred_at: Timestamp::from_millis(OCCURRED_AT_MS),
        message_id: "m-1".to_owned(),
        kind,
    }
}

fn expected_campaign(kind: CampaignEventKind) -> CampaignEvent {
    CampaignEvent {
        event_id: "ce-1".to_owned(),
        occurred_at: Timestamp::from_millis(OCCURRED_AT_MS),
        campaign_id: "c-1".to_owned(),
        kind,
    }
}

/// Checks that the protobuf event, encoded, and the JSON text both decode to
/// `expected`.
fn assert_message_decodes(event: proto::MessageEvent, json: &str, expected: &MessageEvent) {
    let bytes = event.encode_to_vec();
    let from_proto = decode_message_event(Format::Protobuf, &bytes).expect("protobuf decodes");
    assert_eq!(&from_proto, expected, "protobuf");
    let from_json = decode_message_event(Format::Json, json.as_bytes()).expect("JSON decodes");
    assert_eq!(&from_json, expected, "JSON");
}

fn assert_campaign_decodes(event: proto::CampaignEvent, json: &str, expected: &CampaignEvent) {
    let bytes = event.encode_to_vec();
    let from_proto = decode_campaign_event(Format::Protobuf, &bytes).expect("protobuf decodes");
    assert_eq!(&from_proto, expected, "protobuf");
    let from_json = decode_campaign_event(Format::Json, json.as_bytes()).expect("JSON decodes");
    assert_eq!(&from_json, expected, "JSON");
}

fn message_error(format: Format, value: &[u8]) -> DecodeError {
    match decode_message_event(format, value) {
        Ok(event) => panic!("expected an error, decoded {event:?}"),
        Err(error) => error,
    }
}

fn campaign_error(format: Format, value: &[u8]) -> DecodeError {
    match decode_campaign_event(format, value) {
        Ok(event) => panic!("expected an error, decoded {event:?}"),
        Err(error) => error,
    }
}

/// Checks the error's dead-letter reason and that its message contains
/// `mentioned`, which is the field at fault or, for undecodable bytes, the
/// format's name.
fn assert_error(error: &DecodeError, reason: &str, mentioned: &str) {
    assert_eq!(error.reason(), reason, "reason of {error}");
    let message = error.to_string();
    assert!(message.contains(mentioned), "{message:?} does not mention {mentioned:?}");
}

fn accepted_proto() -> proto::MessageAccepted {
    proto::MessageAccepted {
        campaign_id: "c-1".to_owned(),
        account_id: "acct-1".to_owned(),
        from: "+15550100".to_owned(),
        to: "+15550199".to_owned(),
        channel: proto::Channel::Sms as i32,
        segments: 2,
        send_at: None,
    }
}

fn accepted_attributes() -> MessageAttributes {
    MessageAttributes {
        campaign_id: Some("c-1".to_owned()),
        account_id: "acct-1".to_owned(),
        from: "+15550100".to_owned(),
        to: "+15550199".to_owned(),
        channel: Channel::Sms,
        segments: 2,
    }
}

fn inbound_proto() -> proto::InboundMessage {
    proto::InboundMessage {
        account_id: "acct-1".to_owned(),
        from: "+15550199".to_owned(),
        to: "+15550100".to_owned(),
        channel: proto::Channel::Mms as i32,
        segments: 1,
    }
}

fn inbound_attributes() -> MessageAttributes {
    MessageAttributes {
        campaign_id: None,
        account_id: "acct-1".to_owned(),
        from: "+15550199".to_owned(),
        to: "+15550100".to_owned(),
        channel: Channel::Mms,
        segments: 1,
    }
}

// ---- Message kinds in both formats ----

#[test]
fn accepted_decodes() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"accepted","campaign_id":"c-1","account_id":"acct-1","from":"+15550100",
        "to":"+15550199","channel":"sms","segments":2}"#;
    let expected =
        expected_message(MessageEventKind::Accepted { attributes: accepted_attributes(), send_at: None });
    assert_message_decodes(proto_message(MessageKind::Accepted(accepted_proto())), json, &expected);
}

#[test]
fn accepted_with_send_at_and_mms_decodes() {
    let accepted = proto::MessageAccepted {
        campaign_id: String::new(),
        channel: proto::Channel::Mms as i32,
        segments: 1,
        send_at: proto_time(SEND_AT_MS),
        ..accepted_proto()
    };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"accepted","account_id":"acct-1","from":"+15550100","to":"+15550199",
        "channel":"mms","segments":1,"send_at":"2024-03-15T18:00:00Z"}"#;
    let attributes =
        MessageAttributes { campaign_id: None, channel: Channel::Mms, segments: 1, ..accepted_attributes() };
    let expected = expected_message(MessageEventKind::Accepted {
        attributes,
        send_at: Some(Timestamp::from_millis(SEND_AT_MS)),
    });
    assert_message_decodes(proto_message(MessageKind::Accepted(accepted)), json, &expected);
}

#[test]
fn accepted_defaults_apply() {
    // Channel unset reads as SMS, segments unset as 1, campaign_id empty or
    // missing as no campaign.
    let accepted = proto::MessageAccepted {
        campaign_id: String::new(),
        account_id: String::new(),
        from: String::new(),
        to: String::new(),
        channel: proto::Channel::Unspecified as i32,
        segments: 0,
        send_at: None,
    };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"accepted","campaign_id":""}"#;
    let attributes = MessageAttributes {
        campaign_id: None,
        account_id: String::new(),
        from: String::new(),
        to: String::new(),
        channel: Channel::Sms,
        segments: 1,
    };
    let expected = expected_message(MessageEventKind::Accepted { attributes, send_at: None });
    assert_message_decodes(proto_message(MessageKind::Accepted(accepted)), json, &expected);
}

#[test]
fn scheduled_decodes() {
    let scheduled = proto::MessageScheduled { send_at: proto_time(SEND_AT_MS) };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"scheduled","send_at":"2024-03-15T18:00:00Z"}"#;
    let expected =
        expected_message(MessageEventKind::Scheduled { send_at: Some(Timestamp::from_millis(SEND_AT_MS)) });
    assert_message_decodes(proto_message(MessageKind::Scheduled(scheduled)), json, &expected);
}

#[test]
fn scheduled_without_send_at_decodes() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"scheduled"}"#;
    let expected = expected_message(MessageEventKind::Scheduled { send_at: None });
    let scheduled = proto::MessageScheduled { send_at: None };
    assert_message_decodes(proto_message(MessageKind::Scheduled(scheduled)), json, &expected);
}

#[test]
fn queued_decodes() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"queued"}"#;
    let expected = expected_message(MessageEventKind::Queued);
    assert_message_decodes(proto_message(MessageKind::Queued(proto::MessageQueued {})), json, &expected);
}

#[test]
fn sending_decodes() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"sending"}"#;
    let expected = expected_message(MessageEventKind::Sending);
    assert_message_decodes(proto_message(MessageKind::Sending(proto::MessageSending {})), json, &expected);
}

#[test]
fn sent_decodes() {
    let sent = proto::MessageSent { carrier_message_id: "carrier-77".to_owned(), ..Default::default() };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"sent","carrier_message_id":"carrier-77"}"#;
    let expected =
        expected_message(MessageEventKind::Sent { carrier_message_ids: vec!["carrier-77".to_owned()] });
    assert_message_decodes(proto_message(MessageKind::Sent(sent)), json, &expected);
}

#[test]
fn sent_without_carrier_id_decodes() {
    let sent = proto::MessageSent::default();
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"sent"}"#;
    let expected = expected_message(MessageEventKind::Sent { carrier_message_ids: Vec::new() });
    assert_message_decodes(proto_message(MessageKind::Sent(sent)), json, &expected);
}

#[test]
fn sent_with_empty_carrier_id_decodes() {
    let sent = proto::MessageSent::default();
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"sent","carrier_message_id":""}"#;
    let expected = expected_message(MessageEventKind::Sent { carrier_message_ids: Vec::new() });
    assert_message_decodes(proto_message(MessageKind::Sent(sent)), json, &expected);
}

#[test]
fn failed_decodes() {
    let failed = proto::MessageFailed { error_code: 30_007 };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"failed","error_code":30007}"#;
    let expected = expected_message(MessageEventKind::Failed { error_code: 30_007 });
    assert_message_decodes(proto_message(MessageKind::Failed(failed)), json, &expected);
}

#[test]
fn delivery_receipt_decodes() {
    let receipt = proto::DeliveryReceipt {
        outcome: proto::ReceiptOutcome::Delivered as i32,
        error_code: 0,
        done_at: proto_time(DONE_AT_MS),
        ..Default::default()
    };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"delivered","done_at":"2024-03-15T12:30:07Z"}"#;
    let expected = expected_message(MessageEventKind::DeliveryReceipt {
        outcome: ReceiptOutcome::Delivered,
        error_code: 0,
        done_at: Some(Timestamp::from_millis(DONE_AT_MS)),
        carrier: None,
        segment: None,
    });
    assert_message_decodes(proto_message(MessageKind::DeliveryReceipt(receipt)), json, &expected);
}

#[test]
fn undelivered_receipt_decodes() {
    let receipt = proto::DeliveryReceipt {
        outcome: proto::ReceiptOutcome::Undelivered as i32,
        error_code: 30_003,
        done_at: None,
        ..Default::default()
    };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"undelivered","error_code":30003}"#;
    let expected = expected_message(MessageEventKind::DeliveryReceipt {
        outcome: ReceiptOutcome::Undelivered,
        error_code: 30_003,
        done_at: None,
        carrier: None,
        segment: None,
    });
    assert_message_decodes(proto_message(MessageKind::DeliveryReceipt(receipt)), json, &expected);
}

#[test]
fn canceled_decodes() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"canceled"}"#;
    let expected = expected_message(MessageEventKind::Canceled);
    assert_message_decodes(proto_message(MessageKind::Canceled(proto::MessageCanceled {})), json, &expected);
}

#[test]
fn inbound_receiving_decodes() {
    let receiving = proto::InboundReceiving { message: Some(inbound_proto()) };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"inbound_receiving","account_id":"acct-1","from":"+15550199","to":"+15550100",
        "channel":"mms","segments":1}"#;
    let expected = expected_message(MessageEventKind::InboundReceiving { attributes: inbound_attributes() });
    assert_message_decodes(proto_message(MessageKind::InboundReceiving(receiving)), json, &expected);
}

#[test]
fn inbound_received_decodes() {
    let received = proto::InboundReceived { message: Some(inbound_proto()) };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"inbound_received","account_id":"acct-1","from":"+15550199","to":"+15550100",
        "channel":"mms","segments":1}"#;
    let expected = expected_message(MessageEventKind::InboundReceived { attributes: inbound_attributes() });
    assert_message_decodes(proto_message(MessageKind::InboundReceived(received)), json, &expected);
}

#[test]
fn inbound_ignores_campaign_id() {
    // Inbound messages never belong to a campaign, so a JSON campaign_id is
    // dropped like any unknown field.
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"inbound_received","campaign_id":"c-1","account_id":"acct-1","from":"+15550199",
        "to":"+15550100","channel":"mms"}"#;
    let event = decode_message_event(Format::Json, json.as_bytes()).unwrap();
    let expected = expected_message(MessageEventKind::InboundReceived { attributes: inbound_attributes() });
    assert_eq!(event, expected);
}

#[test]
fn inbound_without_message_decodes() {
    let received = proto::InboundReceived { message: None };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"inbound_received"}"#;
    let attributes = MessageAttributes { segments: 1, ..MessageAttributes::default() };
    let expected = expected_message(MessageEventKind::InboundReceived { attributes });
    assert_message_decodes(proto_message(MessageKind::InboundReceived(received)), json, &expected);
}

// ---- Campaign kinds in both formats ----

#[test]
fn campaign_created_decodes() {
    let created = proto::CampaignCreated { account_id: "acct-1".to_owned(), name: "Spring sale".to_owned() };
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"created","account_id":"acct-1","name":"Spring sale"}"#;
    let expected = expected_campaign(CampaignEventKind::Created {
        account_id: "acct-1".to_owned(),
        name: "Spring sale".to_owned(),
    });
    assert_campaign_decodes(proto_campaign(CampaignKind::Created(created)), json, &expected);
}

#[test]
fn campaign_scheduled_decodes() {
    let scheduled = proto::CampaignScheduled { send_at: proto_time(SEND_AT_MS) };
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"scheduled","send_at":"2024-03-15T18:00:00Z"}"#;
    let expected = expected_campaign(CampaignEventKind::Scheduled { send_at: Timestamp::from_millis(SEND_AT_MS) });
    assert_campaign_decodes(proto_campaign(CampaignKind::Scheduled(scheduled)), json, &expected);
}

#[test]
fn campaign_started_sending_decodes() {
    let started = proto::CampaignStartedSending { recipients: 1_000 };
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"started_sending","recipients":1000}"#;
    let expected = expected_campaign(CampaignEventKind::StartedSending { recipients: 1_000 });
    assert_campaign_decodes(proto_campaign(CampaignKind::StartedSending(started)), json, &expected);
}

#[test]
fn campaign_cancelled_decodes() {
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"cancelled"}"#;
    let expected = expected_campaign(CampaignEventKind::Cancelled);
    let cancelled = proto::CampaignCancelled {};
    assert_campaign_decodes(proto_campaign(CampaignKind::Cancelled(cancelled)), json, &expected);
}

#[test]
fn campaign_dispatch_finished_decodes() {
    let finished = proto::CampaignDispatchFinished { dispatched: 998 };
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"dispatch_finished","dispatched":998}"#;
    let expected = expected_campaign(CampaignEventKind::DispatchFinished { dispatched: 998 });
    assert_campaign_decodes(proto_campaign(CampaignKind::DispatchFinished(finished)), json, &expected);
}

// ---- Errors ----

#[test]
fn missing_event_id_is_rejected() {
    let mut event = proto_message(MessageKind::Queued(proto::MessageQueued {}));
    event.event_id = String::new();
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "event_id");

    let json = r#"{"occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1","kind":"queued"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "event_id");
    let json = r#"{"event_id":"","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1","kind":"queued"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "event_id");
}

#[test]
fn campaign_missing_event_id_is_rejected() {
    let mut event = proto_campaign(CampaignKind::Cancelled(proto::CampaignCancelled {}));
    event.event_id = String::new();
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "event_id");

    let json = r#"{"occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1","kind":"cancelled"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "event_id");
}

#[test]
fn empty_message_id_is_rejected() {
    let mut event = proto_message(MessageKind::Queued(proto::MessageQueued {}));
    event.message_id = String::new();
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "message_id");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"","kind":"queued"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "message_id");
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","kind":"queued"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "message_id");
}

#[test]
fn empty_campaign_id_is_rejected() {
    let mut event = proto_campaign(CampaignKind::Cancelled(proto::CampaignCancelled {}));
    event.campaign_id = String::new();
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "campaign_id");

    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"","kind":"cancelled"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "campaign_id");
}

#[test]
fn missing_occurred_at_is_rejected() {
    let mut event = proto_message(MessageKind::Queued(proto::MessageQueued {}));
    event.occurred_at = None;
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "occurred_at");

    let json = r#"{"event_id":"e-1","message_id":"m-1","kind":"queued"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "occurred_at");
}

#[test]
fn campaign_missing_occurred_at_is_rejected() {
    let mut event = proto_campaign(CampaignKind::Cancelled(proto::CampaignCancelled {}));
    event.occurred_at = None;
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "occurred_at");

    let json = r#"{"event_id":"ce-1","campaign_id":"c-1","kind":"cancelled"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "occurred_at");
}

#[test]
fn unknown_json_kind_is_rejected() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1","kind":"read"}"#;
    let error = message_error(Format::Json, json.as_bytes());
    assert_error(&error, "unknown_kind", "kind");
    assert!(error.to_string().contains("\"read\""), "{error}");

    // The campaign spelling "cancelled" is not a message kind.
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1","kind":"cancelled"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "unknown_kind", "kind");
}

#[test]
fn campaign_unknown_json_kind_is_rejected() {
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1","kind":"paused"}"#;
    let error = campaign_error(Format::Json, json.as_bytes());
    assert_error(&error, "unknown_kind", "kind");
    assert!(error.to_string().contains("\"paused\""), "{error}");

    // The message spelling "canceled" is not a campaign kind.
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1","kind":"canceled"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "unknown_kind", "kind");
}

#[test]
fn missing_json_kind_is_rejected() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "kind");
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "kind");
}

#[test]
fn protobuf_without_kind_is_rejected() {
    let mut event = proto_message(MessageKind::Queued(proto::MessageQueued {}));
    event.kind = None;
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "unknown_kind", "kind");

    let mut event = proto_campaign(CampaignKind::Cancelled(proto::CampaignCancelled {}));
    event.kind = None;
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "unknown_kind", "kind");
}

#[test]
fn protobuf_unknown_kind_number_is_rejected() {
    // A kind from a newer schema (field 30, an empty message) is skipped as
    // an unknown field, so the event has no kind that this version decodes.
    let mut bytes = proto_message(MessageKind::Queued(proto::MessageQueued {})).encode_to_vec();
    let queued_len = proto::MessageQueued {}.encoded_len() + 2;
    bytes.truncate(bytes.len() - queued_len);
    // Tag (30 << 3) | 2 = 242 as a varint, then length 0.
    bytes.extend_from_slice(&[0xF2, 0x01, 0x00]);
    let error = message_error(Format::Protobuf, &bytes);
    assert_error(&error, "unknown_kind", "kind");
}

#[test]
fn receipt_without_outcome_is_rejected() {
    let receipt = proto::DeliveryReceipt {
        outcome: proto::ReceiptOutcome::Unspecified as i32,
        ..Default::default()
    };
    let event = proto_message(MessageKind::DeliveryReceipt(receipt));
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    // Protobuf cannot tell an unset enum from UNSPECIFIED, so both formats
    // reject the receipt, under different reasons.
    assert_error(&error, "invalid_value", "outcome");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"delivery_receipt"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "missing_field", "outcome");
}

#[test]
fn receipt_with_unknown_outcome_is_rejected() {
    let receipt = proto::DeliveryReceipt { outcome: 7, ..Default::default() };
    let event = proto_message(MessageKind::DeliveryReceipt(receipt));
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "outcome");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"expired"}"#;
    let error = message_error(Format::Json, json.as_bytes());
    assert_error(&error, "invalid_value", "outcome");
    assert!(error.to_string().contains("\"expired\""), "{error}");

    // Outcome names are lowercase in JSON.
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"DELIVERED"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "invalid_value", "outcome");
}

#[test]
fn invalid_channel_is_rejected() {
    let accepted = proto::MessageAccepted { channel: 9, ..accepted_proto() };
    let event = proto_message(MessageKind::Accepted(accepted));
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "channel");

    let inbound = proto::InboundMessage { channel: 3, ..inbound_proto() };
    let event = proto_message(MessageKind::InboundReceived(proto::InboundReceived { message: Some(inbound) }));
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "channel");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"accepted","channel":"rcs"}"#;
    let error = message_error(Format::Json, json.as_bytes());
    assert_error(&error, "invalid_value", "channel");
    assert!(error.to_string().contains("\"rcs\""), "{error}");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"inbound_receiving","channel":"SMS"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "invalid_value", "channel");
}

#[test]
fn segments_above_u16_are_rejected() {
    let accepted = proto::MessageAccepted { segments: 70_000, ..accepted_proto() };
    let event = proto_message(MessageKind::Accepted(accepted));
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "segments");

    // JSON reads segments as a 16-bit number, so serde rejects the value
    // before the decoder can check it.
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"accepted","segments":70000}"#;
    let error = message_error(Format::Json, json.as_bytes());
    assert_eq!(error.reason(), "invalid_json", "{error}");
}

#[test]
fn garbage_protobuf_is_rejected() {
    // 0xFF starts a varint tag whose continuation bits never end.
    let garbage = [0xFF_u8; 12];
    let error = message_error(Format::Protobuf, &garbage);
    assert_error(&error, "invalid_protobuf", "invalid protobuf");
    let error = campaign_error(Format::Protobuf, &garbage);
    assert_error(&error, "invalid_protobuf", "invalid protobuf");

    // Valid JSON is not valid protobuf, because `{` (0x7B) is field 15 with
    // the group wire type, which the schemas never use.
    let json = br#"{"event_id":"e-1"}"#;
    assert_error(&message_error(Format::Protobuf, json), "invalid_protobuf", "invalid protobuf");
}

#[test]
fn truncated_protobuf_is_rejected() {
    let bytes = proto_message(MessageKind::Accepted(accepted_proto())).encode_to_vec();
    // The kind is the last field and length-delimited, so dropping its last
    // byte leaves a length that runs past the end of the value.
    let error = message_error(Format::Protobuf, &bytes[..bytes.len() - 1]);
    assert_error(&error, "invalid_protobuf", "invalid protobuf");

    // Cut inside event_id: tag, length 3, then only one of its 3 bytes.
    let error = message_error(Format::Protobuf, &bytes[..3]);
    assert_error(&error, "invalid_protobuf", "invalid protobuf");

    let created = proto::CampaignCreated { account_id: "acct-1".to_owned(), name: "Spring sale".to_owned() };
    let bytes = proto_campaign(CampaignKind::Created(created)).encode_to_vec();
    let error = campaign_error(Format::Protobuf, &bytes[..bytes.len() - 1]);
    assert_error(&error, "invalid_protobuf", "invalid protobuf");
}

#[test]
fn invalid_json_is_rejected() {
    let cases: [&[u8]; 5] = [
        br#"{"event_id":"e-1","#,
        b"not json",
        b"[1,2,3]",
        br#"{"event_id":17,"occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1","kind":"queued"}"#,
        b"\xFF\xFE",
    ];
    for value in cases {
        let error = message_error(Format::Json, value);
        assert_error(&error, "invalid_json", "invalid JSON");
        let error = campaign_error(Format::Json, value);
        assert_error(&error, "invalid_json", "invalid JSON");
    }
}

#[test]
fn occurred_at_not_rfc3339_is_rejected() {
    for text in ["15/03/2024 12:30", "2024-03-15 12:30:00", "2024-03-15T12:30:00", ""] {
        let json = format!(
            r#"{{"event_id":"e-1","occurred_at":"{text}","message_id":"m-1","kind":"queued"}}"#
        );
        let error = message_error(Format::Json, json.as_bytes());
        assert_error(&error, "invalid_value", "occurred_at");

        let json = format!(
            r#"{{"event_id":"ce-1","occurred_at":"{text}","campaign_id":"c-1","kind":"cancelled"}}"#
        );
        let error = campaign_error(Format::Json, json.as_bytes());
        assert_error(&error, "invalid_value", "occurred_at");
    }
}

#[test]
fn send_at_not_rfc3339_is_rejected() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"scheduled","send_at":"tomorrow"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "invalid_value", "send_at");

    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"delivered","done_at":"yesterday"}"#;
    assert_error(&message_error(Format::Json, json.as_bytes()), "invalid_value", "done_at");
}

#[test]
fn protobuf_invalid_nanos_are_rejected() {
    let mut event = proto_message(MessageKind::Queued(proto::MessageQueued {}));
    event.occurred_at = Some(prost_types::Timestamp { seconds: 1_710_505_800, nanos: 1_000_000_000 });
    let error = message_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "occurred_at");

    let mut event = proto_campaign(CampaignKind::Cancelled(proto::CampaignCancelled {}));
    event.occurred_at = Some(prost_types::Timestamp { seconds: 1_710_505_800, nanos: -1 });
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "invalid_value", "occurred_at");
}

#[test]
fn campaign_scheduled_without_send_at_is_rejected() {
    let scheduled = proto::CampaignScheduled { send_at: None };
    let event = proto_campaign(CampaignKind::Scheduled(scheduled));
    let error = campaign_error(Format::Protobuf, &event.encode_to_vec());
    assert_error(&error, "missing_field", "send_at");

    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1","kind":"scheduled"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "send_at");
}

#[test]
fn json_campaign_counts_are_required() {
    // Protobuf reads a missing count as 0, but JSON requires it.
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1",
        "kind":"started_sending"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "recipients");
    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00Z","campaign_id":"c-1",
        "kind":"dispatch_finished"}"#;
    assert_error(&campaign_error(Format::Json, json.as_bytes()), "missing_field", "dispatched");
}

// ---- Defaults and lenient reading ----

#[test]
fn zero_segments_read_as_one() {
    let accepted = proto::MessageAccepted { segments: 0, ..accepted_proto() };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"accepted","campaign_id":"c-1","account_id":"acct-1","from":"+15550100",
        "to":"+15550199","segments":0}"#;
    let attributes = MessageAttributes { segments: 1, ..accepted_attributes() };
    let expected = expected_message(MessageEventKind::Accepted { attributes, send_at: None });
    assert_message_decodes(proto_message(MessageKind::Accepted(accepted)), json, &expected);

    let inbound = proto::InboundMessage { segments: 0, ..inbound_proto() };
    let receiving = proto::InboundReceiving { message: Some(inbound) };
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"inbound_receiving","account_id":"acct-1","from":"+15550199","to":"+15550100",
        "channel":"mms","segments":0}"#;
    let expected = expected_message(MessageEventKind::InboundReceiving { attributes: inbound_attributes() });
    assert_message_decodes(proto_message(MessageKind::InboundReceiving(receiving)), json, &expected);
}

#[test]
fn integer_millis_occurred_at_accepted() {
    let json = r#"{"event_id":"e-1","occurred_at":1710505800250,"message_id":"m-1","kind":"queued"}"#;
    let event = decode_message_event(Format::Json, json.as_bytes()).unwrap();
    assert_eq!(event, expected_message(MessageEventKind::Queued));

    let json = r#"{"event_id":"ce-1","occurred_at":1710505800250,"campaign_id":"c-1",
        "kind":"scheduled","send_at":1710525600000}"#;
    let event = decode_campaign_event(Format::Json, json.as_bytes()).unwrap();
    let expected = expected_campaign(CampaignEventKind::Scheduled { send_at: Timestamp::from_millis(SEND_AT_MS) });
    assert_eq!(event, expected);
}

#[test]
fn rfc3339_offset_converts_to_utc() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T14:30:00.250+02:00","message_id":"m-1",
        "kind":"queued"}"#;
    let event = decode_message_event(Format::Json, json.as_bytes()).unwrap();
    assert_eq!(event.occurred_at, Timestamp::from_millis(OCCURRED_AT_MS));
}

#[test]
fn unknown_json_fields_are_ignored() {
    let json = r#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"queued","priority":"high","tags":["a","b"],"nested":{"x":1}}"#;
    let event = decode_message_event(Format::Json, json.as_bytes()).unwrap();
    assert_eq!(event, expected_message(MessageEventKind::Queued));

    let json = r#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"cancelled","reason":"customer request"}"#;
    let event = decode_campaign_event(Format::Json, json.as_bytes()).unwrap();
    assert_eq!(event, expected_campaign(CampaignEventKind::Cancelled));
}

// ---- Arbitrary input ----

fn valid_message_records() -> Vec<(Format, Vec<u8>)> {
    let proto_event = proto_message(MessageKind::Accepted(proto::MessageAccepted {
        send_at: proto_time(SEND_AT_MS),
        ..accepted_proto()
    }));
    let json = br#"{"event_id":"e-1","occurred_at":"2024-03-15T12:30:00.250Z","message_id":"m-1",
        "kind":"delivery_receipt","outcome":"delivered","done_at":1710505807000}"#;
    vec![(Format::Protobuf, proto_event.encode_to_vec()), (Format::Json, json.to_vec())]
}

fn valid_campaign_records() -> Vec<(Format, Vec<u8>)> {
    let proto_event =
        proto_campaign(CampaignKind::Scheduled(proto::CampaignScheduled { send_at: proto_time(SEND_AT_MS) }));
    let json = br#"{"event_id":"ce-1","occurred_at":"2024-03-15T12:30:00.250Z","campaign_id":"c-1",
        "kind":"started_sending","recipients":1000}"#;
    vec![(Format::Protobuf, proto_event.encode_to_vec()), (Format::Json, json.to_vec())]
}

/// Overwrites bytes of `value` at the given positions, taken modulo its
/// length, so that the decoders see records that are almost valid.
fn mutate(mut value: Vec<u8>, edits: &[(usize, u8)]) -> Vec<u8> {
    for &(position, byte) in edits {
        let index = position % value.len();
        value[index] = byte;
    }
    value
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(value in proptest::collection::vec(any::<u8>(), 0..512)) {
        for format in [Format::Protobuf, Format::Json] {
            let _ = decode_message_event(format, &value);
            let _ = decode_campaign_event(format, &value);
        }
    }

    #[test]
    fn mutated_records_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        for (format, value) in valid_message_records() {
            let value = mutate(value, &edits);
            let _ = decode_message_event(format, &value);
            let _ = decode_message_event(format, &value[..cut % (value.len() + 1)]);
        }
        for (format, value) in valid_campaign_records() {
            let value = mutate(value, &edits);
            let _ = decode_campaign_event(format, &value);
            let _ = decode_campaign_event(format, &value[..cut % (value.len() + 1)]);
        }
    }
}
