//! Reading the SMPP form of receipt events: the receipts carriers send,
//! through the default state table. Ids are made up.

use smsfold_domain::{NetworkErrorCode, ReceiptOutcome, SmppReceipt, Timestamp};
use smsfold_smpp::{read_smpp_receipt, ReceiptError, ReceiptReading, StateTable};

fn text(text: &str) -> SmppReceipt {
    SmppReceipt { text: Some(text.to_owned()), ..SmppReceipt::default() }
}

fn read(receipt: &SmppReceipt) -> ReceiptReading {
    read_smpp_receipt(receipt, 0, None, &StateTable::new()).unwrap_or_else(|error| panic!("{receipt:?}: {error}"))
}

#[test]
fn delivered_hex_receipt() {
    let reading = read(&text(
        "id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello",
    ));

    assert_eq!(reading.carrier_id, "0A1B2C3D");
    assert_eq!(reading.outcome, ReceiptOutcome::Delivered);
    assert_eq!(reading.done_at, Some(Timestamp::from_millis(1_710_505_860_000)));
    assert_eq!((reading.carrier.stat.as_deref(), reading.carrier.err.as_deref()), (Some("DELIVRD"), Some("000")));
}

#[test]
fn undelivered_receipt_with_spaces() {
    let reading = read(&text(
        "id: 7731 sub: 001 dlvrd: 000 submit date: 2403151230 done date: 2403151302 stat: UNDELIV err: 001 Text: Your code",
    ));

    assert_eq!(reading.carrier_id, "7731");
    assert_eq!((reading.outcome, reading.error_code), (ReceiptOutcome::Undelivered, 1));
}

#[test]
fn accepted_receipt_is_intermediate() {
    let reading = read(&text("id:55 sub:001 dlvrd:000 submit date:2403151230 done date:2403151230 stat:ACCEPTD err:000 text:"));

    assert_eq!(reading.outcome, ReceiptOutcome::Intermediate);
}

#[test]
fn tlv_id_wins_and_disagreement_is_noted() {
    let same = SmppReceipt { receipted_message_id: Some("4F2A".into()), ..text("id:0000004F2A stat:DELIVRD err:000") };
    let other = SmppReceipt { receipted_message_id: Some("4F2B".into()), ..text("id:0000004F2A stat:DELIVRD err:000") };

    assert_eq!(read(&same).carrier_id, "4F2A");
    assert!(!read(&same).ids_disagree, "leading zeros only");
    assert_eq!(read(&other).carrier_id, "4F2B");
    assert!(read(&other).ids_disagree);
}

#[test]
fn event_fields_fill_gaps() {
    let receipt = SmppReceipt { receipted_message_id: Some("55".into()), message_state: Some(2), ..SmppReceipt::default() };

    let reading = read_smpp_receipt(&receipt, 7, Some(Timestamp::from_millis(9)), &StateTable::new()).unwrap();

    assert_eq!(reading.outcome, ReceiptOutcome::Delivered);
    assert_eq!(reading.error_code, 7);
    assert_eq!(reading.done_at, Some(Timestamp::from_millis(9)));
    assert_eq!(reading.carrier.stat.as_deref(), Some("DELIVERED"));
}

#[test]
fn network_error_code_wins_over_event_error() {
    let receipt = SmppReceipt {
        receipted_message_id: Some("55".into()),
        message_state: Some(5),
        network_error_code: Some(NetworkErrorCode { network_type: 3, error_code: 11 }),
        ..SmppReceipt::default()
    };

    let reading = read_smpp_receipt(&receipt, 7, None, &StateTable::new()).unwrap();

    assert_eq!((reading.outcome, reading.error_code), (ReceiptOutcome::Undelivered, 11));
}

#[test]
fn long_text_id_rejected() {
    let receipt = text(&format!("id:{} stat:DELIVRD", "9".repeat(65)));

    let error = read_smpp_receipt(&receipt, 0, None, &StateTable::new()).unwrap_err();

    assert_eq!(error, ReceiptError::IdTooLong { len: 65, max: 64 });
    assert_eq!(error.reason(), "receipt_id_too_long");
}

#[test]
fn text_without_receipt_fields_rejected() {
    let error = read_smpp_receipt(&text("hello there"), 0, None, &StateTable::new()).unwrap_err();

    assert_eq!(error.reason(), "receipt_missing_id_and_stat");
}

#[test]
fn vendor_state_from_table() {
    let table = StateTable::with_overrides([("NOROUTE", "undelivered")]).unwrap();

    let reading = read_smpp_receipt(&text("id:55 stat:NOROUTE err:034"), 0, None, &table).unwrap();

    assert_eq!(reading.outcome, ReceiptOutcome::Undelivered);
}
