//! The checks the fuzz targets run on each input. Besides "does not panic",
//! each checks what the parser or decoder promises about its result, so a
//! wrong result fails the target like a crash does:
//!
//! - receipt text: a parsed receipt has an id or a stat, its values borrow
//!   from the input and hold no whitespace, and writing its fields back in
//!   the standard form parses to the same fields;
//! - receipt TLVs: what parses encodes back to the same TLVs;
//! - carrier ids: keys ignore case and surrounding whitespace;
//! - events: a decoded event has the non-empty ids and the field ranges
//!   the event contract states, JSON is accepted only as an object, and a
//!   failure's reason is one of the documented dead-letter reasons;
//! - receipts in SMPP form: reading one fails with a receipt reason, or
//!   gives a carrier id of at most 64 bytes. A sent event with that id is
//!   published under the receipt's join key.

use smsfold_domain::{MessageEvent, MessageEventKind, Timestamp, MAX_CARRIER_ID_LEN};
use smsfold_smpp::{
    carrier_id_keys, link_join_keys, parse_receipt_text, read_smpp_receipt, receipt_join_key, Receipt, ReceiptError,
    ReceiptText, ReceiptTlvs, StateTable,
};
use smsfold_wire::{decode_campaign_event, decode_message_event, DecodeError, Format};

/// The dead-letter reasons a decode failure may have.
const DECODE_REASONS: [&str; 6] =
    ["invalid_protobuf", "invalid_json", "unsupported_content_type", "missing_field", "unknown_kind", "invalid_value"];

/// Parses `data` as receipt text (lossily, when it is not UTF-8) and checks
/// the result.
pub fn check_receipt_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = parse_receipt_text(&text);
    let read = Receipt::read(&text, &ReceiptTlvs::default(), &StateTable::new());

    match parsed {
        Ok(receipt) => {
            check_parsed_receipt(&text, &receipt);
            match (receipt.id, read) {
                (Some(id), Ok(read)) => assert_eq!(read.carrier_id, id),
                (None, Err(error)) => assert_eq!(error, ReceiptError::MissingId),
                (id, read) => panic!("parse gave id {id:?} but read gave {read:?}"),
            }
            if let Some(id) = receipt.id {
                check_carrier_id(id);
            }
        }
        Err(error) => {
            assert!(ReceiptError::REASONS.contains(&error.reason()), "{error:?}");
            assert_eq!(read, Err(error));
        }
    }
}

fn check_parsed_receipt(text: &str, receipt: &ReceiptText<'_>) {
    assert!(receipt.id.is_some() || receipt.stat.is_some(), "{text:?} parsed without id and stat");

    let range = text.as_bytes().as_ptr_range();
    for value in [receipt.id, receipt.stat, receipt.err] {
        let Some(value) = value else { continue };
        assert!(!value.is_empty(), "{text:?} gave an empty value");
        assert!(!value.bytes().any(|byte| byte.is_ascii_whitespace()), "{value:?} holds whitespace");
        assert!(range.contains(&value.as_ptr()), "{value:?} is not borrowed from the input");
    }
    if let Some(free_text) = receipt.text {
        assert!(!free_text.starts_with(|c: char| c.is_ascii_whitespace()), "{free_text:?}");
        assert!(text.ends_with(free_text), "{free_text:?} does not run to the end of {text:?}");
    }
    assert_eq!(receipt.err.is_some(), receipt.error_code.is_some());

    let rewritten = write_standard(receipt);
    match parse_receipt_text(&rewritten) {
        Ok(again) => assert_eq!(&again, receipt, "{text:?} rewritten as {rewritten:?}"),
        Err(error) => panic!("{text:?} rewritten as {rewritten:?} failed: {error}"),
    }
}

/// Writes a parsed receipt back in the standard field order, with 12-digit
/// dates.
fn write_standard(receipt: &ReceiptText<'_>) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            out.push_str(name);
            out.push(':');
            out.push_str(&value);
            out.push(' ');
        }
    };
    field("id", receipt.id.map(str::to_owned));
    field("sub", receipt.submitted.map(|count| format!("{count:03}")));
    field("dlvrd", receipt.delivered.map(|count| format!("{count:03}")));
    field("submit date", receipt.submit_date.map(write_date));
    field("done date", receipt.done_date.map(write_date));
    field("stat", receipt.stat.map(str::to_owned));
    field("err", receipt.err.map(str::to_owned));
    if let Some(text) = receipt.text {
        out.push_str("text:");
        out.push_str(text);
    }
    out
}

fn write_date(at: Timestamp) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp(at.as_millis().div_euclid(1000))
        .unwrap_or_else(|error| panic!("{at} is not a receipt date: {error}"));
    assert!((2000..2100).contains(&time.year()), "{at} is outside 2000 to 2099");
    format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}",
        time.year() - 2000,
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// Checks that an id's keys ignore ASCII case and surrounding whitespace.
pub fn check_carrier_id(id: &str) {
    let keys = carrier_id_keys(id);
    assert!(keys.len() <= 2, "{id:?}");
    assert_eq!(keys.matches(&keys), !keys.is_empty(), "{id:?}");
    assert_eq!(carrier_id_keys(&id.to_ascii_uppercase()), carrier_id_keys(&id.to_ascii_lowercase()), "{id:?}");
    assert_eq!(carrier_id_keys(&format!(" {id}\t")), keys, "{id:?}");
}

/// Parses `data` as receipt TLVs, checks that they encode back to
/// themselves, and combines them with a receipt text.
pub fn check_receipt_tlvs(data: &[u8]) {
    let tlvs = match ReceiptTlvs::parse(data) {
        Ok(tlvs) => tlvs,
        Err(error) => {
            assert_eq!(error.reason(), "receipt_invalid_tlv", "{error:?}");
            return;
        }
    };
    let mut encoded = Vec::new();
    tlvs.encode(&mut encoded);
    assert_eq!(ReceiptTlvs::parse(&encoded), Ok(tlvs), "{data:?} encoded as {encoded:?}");

    let text = "id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hi";
    let receipt = Receipt::read(text, &tlvs, &StateTable::new()).expect("a valid text with any TLVs is a receipt");
    assert_eq!(receipt.carrier_id, tlvs.receipted_message_id.unwrap_or("0A1B2C3D"));
    if let Some(id) = tlvs.receipted_message_id {
        check_carrier_id(id);
    }
}

fn check_decode_error(format: Format, error: &DecodeError) {
    let reason = error.reason();
    assert!(DECODE_REASONS.contains(&reason), "{error:?}");
    let wrong_format = match format {
        Format::Json => "invalid_protobuf",
        Format::Protobuf => "invalid_json",
    };
    assert_ne!(reason, wrong_format, "{error:?}");
}

/// In JSON an event is one object, so a decoded value starts with `{`
/// after any whitespace.
fn check_json_object(format: Format, value: &[u8]) {
    if format == Format::Json {
        let first = value.iter().find(|byte| !byte.is_ascii_whitespace());
        let text = String::from_utf8_lossy(value);
        assert_eq!(first, Some(&b'{'), "a JSON value that is not an object decoded: {text:?}");
    }
}

/// Decodes `value` as a message event in `format` and checks the result.
pub fn check_message_event(format: Format, value: &[u8]) {
    let event = match decode_message_event(format, value) {
        Ok(event) => event,
        Err(error) => {
            check_decode_error(format, &error);
            return;
        }
    };
    check_json_object(format, value);
    check_message_fields(&event);
    assert_eq!(decode_message_event(format, value).ok(), Some(event), "decoding twice differs");
}

fn check_message_fields(event: &MessageEvent) {
    assert!(!event.event_id.is_empty());
    let smpp_receipt = matches!(event.kind, MessageEventKind::SmppReceipt { .. });
    assert!(smpp_receipt || !event.message_id.is_empty(), "{event:?}");
    if let Some(attributes) = event.kind.attributes() {
        assert!(attributes.segments >= 1, "{event:?}");
        assert_ne!(attributes.campaign_id.as_deref(), Some(""), "{event:?}");
    }
    match &event.kind {
        MessageEventKind::InboundReceiving { attributes } | MessageEventKind::InboundReceived { attributes } => {
            assert_eq!(attributes.campaign_id, None, "{event:?}");
        }
        MessageEventKind::Sent { carrier_message_ids } => {
            for id in carrier_message_ids {
                assert!(!id.is_empty(), "{event:?}");
                assert!(id.len() <= MAX_CARRIER_ID_LEN, "{event:?}");
                check_carrier_id(id);
                let _ = link_join_keys(id);
            }
        }
        MessageEventKind::SmppReceipt { receipt, error_code, done_at } => {
            check_smpp_receipt(receipt, *error_code, *done_at);
        }
        _ => {}
    }
}

/// Reads a receipt's SMPP form and checks what the carrier join needs.
fn check_smpp_receipt(receipt: &smsfold_domain::SmppReceipt, error_code: u32, done_at: Option<Timestamp>) {
    let smpp_fields = [receipt.text.is_some(), receipt.receipted_message_id.is_some(), receipt.message_state.is_some()];
    assert!(smpp_fields.contains(&true) || receipt.network_error_code.is_some(), "{receipt:?}");
    let reading = match read_smpp_receipt(receipt, error_code, done_at, &StateTable::new()) {
        Ok(reading) => reading,
        Err(error) => {
            assert!(ReceiptError::REASONS.contains(&error.reason()), "{error:?}");
            return;
        }
    };
    assert!(reading.carrier_id.len() <= MAX_CARRIER_ID_LEN, "{reading:?}");
    assert!(reading.carrier.stat.as_ref().is_none_or(|stat| stat.len() <= 32), "{reading:?}");
    if let Some(key) = receipt_join_key(&reading.carrier_id) {
        assert!(link_join_keys(&reading.carrier_id).contains(&key), "{reading:?}");
    }
}

/// Decodes `value` as a campaign event in `format` and checks the result.
pub fn check_campaign_event(format: Format, value: &[u8]) {
    let event = match decode_campaign_event(format, value) {
        Ok(event) => event,
        Err(error) => {
            check_decode_error(format, &error);
            return;
        }
    };
    check_json_object(format, value);
    assert!(!event.event_id.is_empty());
    assert!(!event.campaign_id.is_empty());
    assert_eq!(decode_campaign_event(format, value).ok(), Some(event), "decoding twice differs");
}
