//! Inputs on which the event decoders break the event contract, kept as
//! regression tests. A JSON array that decodes fails the check the JSON fuzz
//! targets under `fuzz/` run on every input (an event is one JSON object).
//! The time case is outside what those targets check.
//!

use smsfold_wire::{decode_campaign_event, decode_message_event, Format};

#[test]
fn json_array_campaign_event_rejected() {
    // Given a JSON array instead of an object, one element per field of the
    // decoder's JSON struct (serde's derived Deserialize accepts a sequence)
    let value = br#"["cevt-1", 0, "cmp-1842", "cancelled", null, null, null, null, null]"#;

    // When it is decoded
    let result = decode_campaign_event(Format::Json, value);

    // Then it is invalid JSON for an event, which must be one object
    assert_eq!(result.map_err(|error| error.reason()).err(), Some("invalid_json"));
}

#[test]
fn json_array_message_event_rejected() {
    let value = br#"["evt-1", 0, "msg-7f3a", "queued", null, null, null, null, null, null, null, null, null, null, null]"#;

    let result = decode_message_event(Format::Json, value);

    assert_eq!(result.map_err(|error| error.reason()).err(), Some("invalid_json"));
}

#[test]
fn time_before_1970_drops_finer_digits() {
    // Given a time half a millisecond before the Unix epoch
    let value = br#"{"event_id":"evt-1","occurred_at":"1969-12-31T23:59:59.9995Z","message_id":"msg-7f3a","kind":"queued"}"#;

    // When it is decoded
    let event = decode_message_event(Format::Json, value).unwrap();

    // Then dropping the finer digits gives 23:59:59.999, one millisecond
    // before the epoch, and not the epoch itself
    assert_eq!(event.occurred_at.as_millis(), -1);
}
