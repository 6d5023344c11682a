//! Decoding delivery receipts in SMPP form and the carrier ids of sent
//! events, in both formats.

use prost::Message;
use smsfold_domain::{MessageEvent, MessageEventKind, NetworkErrorCode, SmppReceipt};
use smsfold_wire::proto::message_event::Kind;
use smsfold_wire::{decode_message_event, proto, Format};

const TEXT: &str = "id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello";

fn proto_event(message_id: &str, kind: Kind) -> Vec<u8> {
    proto::MessageEvent {
        event_id: "e-1".into(),
        occurred_at: Some(prost_types::Timestamp { seconds: 1_710_505_800, nanos: 0 }),
        message_id: message_id.into(),
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn decode_json(json: &str) -> Result<MessageEvent, String> {
    decode_message_event(Format::Json, json.as_bytes()).map_err(|error| error.reason().to_owned())
}

fn decode_proto(value: &[u8]) -> Result<MessageEvent, String> {
    decode_message_event(Format::Protobuf, value).map_err(|error| error.reason().to_owned())
}

fn smpp(event: &MessageEvent) -> &SmppReceipt {
    match &event.kind {
        MessageEventKind::SmppReceipt { receipt, .. } => receipt,
        other => panic!("not an SMPP receipt: {other:?}"),
    }
}

#[test]
fn json_receipt_text_without_message_id() {
    let json = format!(
        r#"{{"event_id":"e-1","occurred_at":"2024-03-15T12:31:00Z","kind":"delivery_receipt","receipt_text":"{TEXT}"}}"#
    );

    let event = decode_json(&json).unwrap();

    assert_eq!(event.message_id, "");
    assert_eq!(smpp(&event).text.as_deref(), Some(TEXT));
}

#[test]
fn json_receipt_tlvs_decode() {
    let json = r#"{"event_id":"e-1","occurred_at":1710505800000,"message_id":"m-1","kind":"delivery_receipt",
        "receipted_message_id":"4F2A","message_state":2,"network_error_code":{"network_type":3,"error_code":1},
        "error_code":9}"#;

    let event = decode_json(json).unwrap();

    let receipt = smpp(&event);
    assert_eq!(receipt.receipted_message_id.as_deref(), Some("4F2A"));
    assert_eq!(receipt.message_state, Some(2));
    assert_eq!(receipt.network_error_code, Some(NetworkErrorCode { network_type: 3, error_code: 1 }));
    assert!(matches!(event.kind, MessageEventKind::SmppReceipt { error_code: 9, .. }));
}

#[test]
fn proto_receipt_tlvs_decode() {
    let receipt = proto::DeliveryReceipt {
        receipt_text: TEXT.into(),
        receipted_message_id: "4F2A".into(),
        message_state: Some(0),
        network_error_code: Some(proto::NetworkErrorCode { network_type: 3, error_code: 65_535 }),
        ..Default::default()
    };

    let event = decode_proto(&proto_event("", Kind::DeliveryReceipt(receipt))).unwrap();

    let receipt = smpp(&event);
    assert_eq!(receipt.text.as_deref(), Some(TEXT));
    assert_eq!(receipt.message_state, Some(0), "state 0 (SCHEDULED) is kept");
    assert_eq!(receipt.network_error_code.map(|code| code.error_code), Some(65_535));
}

#[test]
fn outcome_and_smpp_form_together_rejected() {
    let json = format!(
        r#"{{"event_id":"e-1","occurred_at":1,"message_id":"m-1","kind":"delivery_receipt","outcome":"delivered","receipt_text":"{TEXT}"}}"#
    );
    assert_eq!(decode_json(&json).unwrap_err(), "invalid_value");

    let receipt = proto::DeliveryReceipt {
        outcome: proto::ReceiptOutcome::Delivered as i32,
        receipted_message_id: "55".into(),
        ..Default::default()
    };
    assert_eq!(decode_proto(&proto_event("m-1", Kind::DeliveryReceipt(receipt))).unwrap_err(), "invalid_value");
}

#[test]
fn tlv_values_out_of_range_rejected() {
    let state = proto::DeliveryReceipt { receipted_message_id: "55".into(), message_state: Some(256), ..Default::default() };
    assert_eq!(decode_proto(&proto_event("", Kind::DeliveryReceipt(state))).unwrap_err(), "invalid_value");

    let code = proto::DeliveryReceipt {
        receipted_message_id: "55".into(),
        network_error_code: Some(proto::NetworkErrorCode { network_type: 3, error_code: 65_536 }),
        ..Default::default()
    };
    assert_eq!(decode_proto(&proto_event("", Kind::DeliveryReceipt(code))).unwrap_err(), "invalid_value");

    let json = r#"{"event_id":"e-1","occurred_at":1,"kind":"delivery_receipt","receipted_message_id":"55","message_state":256}"#;
    assert_eq!(decode_json(json).unwrap_err(), "invalid_json");
}

#[test]
fn decided_receipt_still_needs_message_id() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"kind":"delivery_receipt","outcome":"delivered"}"#;
    assert_eq!(decode_json(json).unwrap_err(), "missing_field");

    let receipt = proto::DeliveryReceipt { outcome: proto::ReceiptOutcome::Delivered as i32, ..Default::default() };
    assert_eq!(decode_proto(&proto_event("", Kind::DeliveryReceipt(receipt))).unwrap_err(), "missing_field");
}

#[test]
fn other_kinds_still_need_message_id() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"kind":"sent","receipt_text":"id:1 stat:DELIVRD"}"#;

    assert_eq!(decode_json(json).unwrap_err(), "missing_field");
}

#[test]
fn empty_smpp_fields_are_not_a_receipt() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"message_id":"m-1","kind":"delivery_receipt","receipt_text":""}"#;

    assert_eq!(decode_json(json).unwrap_err(), "missing_field", "no outcome and no receipt text");
}

#[test]
fn long_receipted_id_rejected() {
    let id = "7".repeat(65);
    let json = format!(r#"{{"event_id":"e-1","occurred_at":1,"kind":"delivery_receipt","receipted_message_id":"{id}"}}"#);

    assert_eq!(decode_json(&json).unwrap_err(), "invalid_value");
}

#[test]
fn sent_lists_segment_carrier_ids() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"message_id":"m-1","kind":"sent",
        "carrier_message_id":"7A01","segment_carrier_message_ids":["7A01","7A02","7A03"]}"#;
    let sent = proto::MessageSent {
        carrier_message_id: String::new(),
        segment_carrier_message_ids: vec!["7A01".into(), "7A02".into(), "7A03".into()],
    };

    for event in [decode_json(json).unwrap(), decode_proto(&proto_event("m-1", Kind::Sent(sent))).unwrap()] {
        let MessageEventKind::Sent { carrier_message_ids } = &event.kind else { panic!("{event:?}") };
        assert_eq!(carrier_message_ids, &["7A01", "7A02", "7A03"]);
        assert_eq!(event.kind.segments_hint(), 3);
    }
}

#[test]
fn sent_first_id_must_match_segments() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"message_id":"m-1","kind":"sent",
        "carrier_message_id":"7A09","segment_carrier_message_ids":["7A01","7A02"]}"#;

    assert_eq!(decode_json(json).unwrap_err(), "invalid_value");
}

#[test]
fn sent_empty_segment_id_rejected() {
    let json = r#"{"event_id":"e-1","occurred_at":1,"message_id":"m-1","kind":"sent","segment_carrier_message_ids":["7A01"," "]}"#;

    assert_eq!(decode_json(json).unwrap_err(), "invalid_value");
}
