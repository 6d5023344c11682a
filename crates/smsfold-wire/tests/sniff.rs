//! Format detection for records without a `content-type` header, run on
//! real encoded events.

use prost::Message;
use smsfold_wire::proto;
use smsfold_wire::proto::message_event::Kind;
use smsfold_wire::{decode_message_event, Format};

fn queued_event(event_id: &str) -> Vec<u8> {
    proto::MessageEvent {
        event_id: event_id.to_owned(),
        occurred_at: Some(prost_types::Timestamp { seconds: 1_710_505_800, nanos: 0 }),
        message_id: "m-1".to_owned(),
        kind: Some(Kind::Queued(proto::MessageQueued {})),
    }
    .encode_to_vec()
}

#[test]
fn protobuf_without_header_detected() {
    for length in [1, 8, 40, 122, 124, 200] {
        let value = queued_event(&"e".repeat(length));
        let format = Format::detect(None, &value).unwrap();
        assert_eq!(format, Format::Protobuf, "event_id of {length} bytes");
        assert!(decode_message_event(format, &value).is_ok(), "event_id of {length} bytes");
    }
}

#[test]
fn json_without_header_detected() {
    let value = b"{\"event_id\":\"e-1\",\"occurred_at\":0,\"message_id\":\"m-1\",\"kind\":\"queued\"}";
    let format = Format::detect(None, value).unwrap();
    assert_eq!(format, Format::Json);
    assert!(decode_message_event(format, value).is_ok());
}

#[test]
fn json_with_leading_whitespace_read_as_protobuf() {
    // Without a header only a value that starts with `{` is JSON.
    let value = b" {\"event_id\":\"e-1\",\"occurred_at\":0,\"message_id\":\"m-1\",\"kind\":\"queued\"}";
    assert_eq!(Format::detect(None, value).unwrap(), Format::Protobuf);
}

#[test]
fn protobuf_with_123_byte_event_id_detected() {
    // The value starts with 0x0A (event_id's tag, also ASCII newline) and
    // 0x7B (its length 123, also `{`).
    let value = queued_event(&"e".repeat(123));
    assert_eq!(&value[..2], b"\n{");
    assert_eq!(Format::detect(None, &value).unwrap(), Format::Protobuf);
}
