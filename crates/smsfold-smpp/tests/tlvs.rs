//! Receipt TLVs: reading their wire form, and combining them with the text,
//! where the TLVs win for the id, the state and the error code.

use smsfold_smpp::{
    carrier_id_keys, NetworkErrorCode, Outcome, Receipt, ReceiptError, ReceiptTlvs, StateTable,
    TAG_MESSAGE_STATE, TAG_NETWORK_ERROR_CODE, TAG_RECEIPTED_MESSAGE_ID,
};

const TEXT_4F2A: &str = "id:0000004F2A sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hi";

fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut bytes = tag.to_be_bytes().to_vec();
    bytes.extend_from_slice(&(value.len() as u16).to_be_bytes());
    bytes.extend_from_slice(value);
    bytes
}

fn read<'a>(text: &'a str, tlvs: &ReceiptTlvs<'a>) -> Receipt<'a> {
    Receipt::read(text, tlvs, &StateTable::new()).unwrap_or_else(|error| panic!("{text:?} was rejected: {error}"))
}

#[test]
fn tlv_id_equal_to_text_id_after_normalizing() {
    // Given a TLV id and a text id that differ only in leading zeros
    let tlvs = ReceiptTlvs { receipted_message_id: Some("4F2A"), ..ReceiptTlvs::default() };

    // When the receipt is read
    let receipt = read(TEXT_4F2A, &tlvs);

    // Then the TLV id is used, and both ids share a key
    assert_eq!(receipt.carrier_id, "4F2A");
    assert_eq!(receipt.text_id, Some("0000004F2A"));
    assert!(carrier_id_keys("4F2A").matches(&carrier_id_keys("0000004F2A")));
    assert_eq!(receipt.outcome, Outcome::Delivered);
}

#[test]
fn tlv_id_wins_over_different_text_id() {
    // Given a TLV id that names another message than the text
    let tlvs = ReceiptTlvs { receipted_message_id: Some("4F2B"), ..ReceiptTlvs::default() };

    // When the receipt is read
    let receipt = read(TEXT_4F2A, &tlvs);

    // Then the TLV id is the carrier id and the text id does not match it
    assert_eq!(receipt.carrier_id, "4F2B");
    assert!(receipt.carrier_keys().matches(&carrier_id_keys("4f2b")));
    assert!(!receipt.carrier_keys().matches(&carrier_id_keys("0000004F2A")));
    assert_eq!(receipt.stat, Some("DELIVRD"));
    assert_eq!(receipt.done_at, Some(smsfold_domain::Timestamp::from_millis(1_710_505_860_000)));
}

#[test]
fn tlv_state_wins_over_text_stat() {
    // Given stat:DELIVRD in the text and a message_state of 5 (undeliverable)
    let tlvs = ReceiptTlvs { message_state: Some(5), ..ReceiptTlvs::default() };

    // When the receipt is read
    let receipt = read(TEXT_4F2A, &tlvs);

    // Then the TLV decides, and the raw stat is kept
    assert_eq!(receipt.outcome, Outcome::Undelivered);
    assert_eq!(receipt.message_state, Some(5));
    assert_eq!(receipt.stat, Some("DELIVRD"));
}

#[test]
fn tlv_error_code_wins_over_text_err() {
    // Given err:000 in the text and a GSM network error 34 in the TLV
    let code = NetworkErrorCode { network_type: 3, error_code: 34 };
    let tlvs = ReceiptTlvs { network_error_code: Some(code), ..ReceiptTlvs::default() };

    // When the receipt is read
    let receipt = read(TEXT_4F2A, &tlvs);

    // Then the error code is the TLV's and the raw err is kept
    assert_eq!(receipt.error_code, Some(34));
    assert_eq!(receipt.err, Some("000"));
    assert_eq!(receipt.network_error_code, Some(code));
}

#[test]
fn tlvs_alone_make_a_receipt() {
    // Given an empty text and TLVs with the id and state 2 (delivered)
    let tlvs = ReceiptTlvs { receipted_message_id: Some("4F2A"), message_state: Some(2), ..ReceiptTlvs::default() };

    // When the receipt is read
    let receipt = read("", &tlvs);

    // Then the TLVs are enough
    assert_eq!(receipt.carrier_id, "4F2A");
    assert_eq!(receipt.outcome, Outcome::Delivered);
    assert_eq!(receipt.stat, None);
    assert_eq!(receipt.done_at, None);
}

#[test]
fn tlv_state_above_9_is_unknown() {
    let tlvs = ReceiptTlvs { message_state: Some(42), ..ReceiptTlvs::default() };

    assert_eq!(read(TEXT_4F2A, &tlvs).outcome, Outcome::Unknown);
}

#[test]
fn invalid_text_rejected_despite_tlvs() {
    let tlvs = ReceiptTlvs { receipted_message_id: Some("4F2A"), message_state: Some(2), ..ReceiptTlvs::default() };

    let error = Receipt::read("id:4F2A stat:DELIVRD done date:2499999999", &tlvs, &StateTable::new()).unwrap_err();

    assert_eq!(error.reason(), "receipt_invalid_date");
}

#[test]
fn parse_reads_three_tags_and_skips_others() {
    // Given the receipt TLVs between two unrelated ones
    let mut bytes = tlv(0x0204, &[0, 1]);
    bytes.extend(tlv(TAG_RECEIPTED_MESSAGE_ID, b"0A1B2C3D\0"));
    bytes.extend(tlv(TAG_MESSAGE_STATE, &[2]));
    bytes.extend(tlv(TAG_NETWORK_ERROR_CODE, &[3, 0x01, 0x02]));
    bytes.extend(tlv(0x1400, b"vendor"));

    // When they are parsed
    let tlvs = ReceiptTlvs::parse(&bytes).unwrap();

    // Then each receipt TLV is read
    assert_eq!(tlvs.receipted_message_id, Some("0A1B2C3D"));
    assert_eq!(tlvs.message_state, Some(2));
    assert_eq!(tlvs.network_error_code, Some(NetworkErrorCode { network_type: 3, error_code: 0x0102 }));
}

#[test]
fn parse_empty_input_gives_no_tlvs() {
    assert_eq!(ReceiptTlvs::parse(&[]), Ok(ReceiptTlvs::default()));
}

#[test]
fn parse_accepts_id_without_nul() {
    let bytes = tlv(TAG_RECEIPTED_MESSAGE_ID, b"4F2A");

    let tlvs = ReceiptTlvs::parse(&bytes).unwrap();

    assert_eq!(tlvs.receipted_message_id, Some("4F2A"));
}

#[test]
fn parse_treats_empty_id_as_absent() {
    let bytes = tlv(TAG_RECEIPTED_MESSAGE_ID, b"\0");

    let tlvs = ReceiptTlvs::parse(&bytes).unwrap();

    assert_eq!(tlvs.receipted_message_id, None);
}

#[test]
fn parse_rejects_truncated_input() {
    let whole = tlv(TAG_MESSAGE_STATE, &[2]);

    for cut in 1..whole.len() {
        let error = ReceiptTlvs::parse(&whole[..cut]).unwrap_err();
        assert_eq!(error, ReceiptError::TruncatedTlvs { offset: 0, remaining: cut }, "cut at {cut}");
    }
}

#[test]
fn parse_rejects_wrong_lengths() {
    for bytes in [
        tlv(TAG_MESSAGE_STATE, &[]),
        tlv(TAG_MESSAGE_STATE, &[2, 0]),
        tlv(TAG_NETWORK_ERROR_CODE, &[3, 0]),
        tlv(TAG_NETWORK_ERROR_CODE, &[3, 0, 1, 0]),
    ] {
        let error = ReceiptTlvs::parse(&bytes).unwrap_err();
        assert_eq!(error.reason(), "receipt_invalid_tlv", "{bytes:?}");
    }
}

#[test]
fn parse_rejects_repeated_tag() {
    let mut bytes = tlv(TAG_MESSAGE_STATE, &[2]);
    bytes.extend(tlv(TAG_MESSAGE_STATE, &[5]));

    let error = ReceiptTlvs::parse(&bytes).unwrap_err();

    assert!(matches!(error, ReceiptError::InvalidTlv { tag: TAG_MESSAGE_STATE, .. }), "{error}");
}

#[test]
fn parse_rejects_non_utf8_id() {
    let error = ReceiptTlvs::parse(&tlv(TAG_RECEIPTED_MESSAGE_ID, &[0xff, 0xfe, 0])).unwrap_err();

    assert!(matches!(error, ReceiptError::InvalidTlv { tag: TAG_RECEIPTED_MESSAGE_ID, .. }), "{error}");
}

#[test]
fn encode_round_trips() {
    // Given TLVs with every field set
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("0A1B2C3D"),
        message_state: Some(8),
        network_error_code: Some(NetworkErrorCode { network_type: 3, error_code: 0xBEEF }),
    };

    // When they are encoded and parsed back
    let mut bytes = Vec::new();
    tlvs.encode(&mut bytes);

    // Then nothing changed
    assert_eq!(ReceiptTlvs::parse(&bytes), Ok(tlvs));
}

#[test]
fn encode_round_trips_longest_id() {
    // Given ids that fill the 2-byte length with and without the NUL
    for length in [65_534, 65_535] {
        let id = "7".repeat(length);
        let tlvs = ReceiptTlvs { receipted_message_id: Some(&id), ..ReceiptTlvs::default() };

        // When they are encoded and parsed back
        let mut bytes = Vec::new();
        tlvs.encode(&mut bytes);

        // Then the whole id survives
        assert_eq!(ReceiptTlvs::parse(&bytes), Ok(tlvs), "id of {length} bytes");
    }
}

#[test]
fn carrier_report_prefers_text_values() {
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("4F2A"),
        message_state: Some(5),
        network_error_code: Some(NetworkErrorCode { network_type: 3, error_code: 11 }),
    };

    let report = read(TEXT_4F2A, &tlvs).carrier_report();

    assert_eq!(report.stat.as_deref(), Some("DELIVRD"), "the raw stat even though the TLV state wins");
    assert_eq!(report.err.as_deref(), Some("000"));
}

#[test]
fn carrier_report_from_tlvs_alone() {
    let tlvs = ReceiptTlvs {
        receipted_message_id: Some("4F2A"),
        message_state: Some(5),
        network_error_code: Some(NetworkErrorCode { network_type: 3, error_code: 11 }),
    };

    let report = read("", &tlvs).carrier_report();

    assert_eq!(report.stat.as_deref(), Some("UNDELIVERABLE"));
    assert_eq!(report.err.as_deref(), Some("11"));
}

#[test]
fn carrier_report_names_unknown_state_by_number() {
    let tlvs = ReceiptTlvs { receipted_message_id: Some("4F2A"), message_state: Some(42), ..ReceiptTlvs::default() };

    assert_eq!(read("", &tlvs).carrier_report().stat.as_deref(), Some("42"));
}
