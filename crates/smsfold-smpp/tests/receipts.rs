//! Receipt texts as carriers send them, parsed and mapped to an outcome:
//! the common form, the variations real receipts show, and input that is
//! not a receipt. Ids are made up.

use smsfold_domain::Timestamp;
use smsfold_smpp::{
    carrier_id_keys, parse_receipt_text, Outcome, Receipt, ReceiptError, ReceiptText, ReceiptTlvs, StateTable,
};
use time::macros::datetime;
use time::OffsetDateTime;

fn at(time: OffsetDateTime) -> Option<Timestamp> {
    Some(Timestamp::from_millis(time.unix_timestamp() * 1000))
}

/// Parses a text that the test expects to be a valid receipt.
fn parse(text: &str) -> ReceiptText<'_> {
    parse_receipt_text(text).unwrap_or_else(|error| panic!("{text:?} was rejected: {error}"))
}

/// Reads a receipt without TLVs through the default table.
fn read(text: &str) -> Receipt<'_> {
    Receipt::read(text, &ReceiptTlvs::default(), &StateTable::new())
        .unwrap_or_else(|error| panic!("{text:?} was rejected: {error}"))
}

#[test]
fn delivered_hex_id_receipt() {
    // Given a receipt naming the carrier id in hexadecimal
    let text = "id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello";

    // When it is read
    let receipt = read(text);

    // Then every field is kept and the message ends delivered
    assert_eq!(receipt.carrier_id, "0A1B2C3D");
    assert_eq!(receipt.stat, Some("DELIVRD"));
    assert_eq!(receipt.err, Some("000"));
    assert_eq!(receipt.error_code, Some(0));
    assert_eq!(receipt.outcome, Outcome::Delivered);
    assert_eq!(receipt.done_at, at(datetime!(2024-03-15 12:31 UTC)));
    assert_eq!(receipt.submitted_at, at(datetime!(2024-03-15 12:30 UTC)));
    assert_eq!(receipt.submitted, Some(1));
    assert_eq!(receipt.delivered, Some(1));
}

#[test]
fn hex_receipt_id_matches_decimal_sent_id() {
    // Given the sent event's carrier id, written in decimal
    let sent_carrier_id = "169552957";

    // When the hexadecimal receipt id is turned into keys
    let receipt = read("id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello");

    // Then the keys match the sent event's
    assert!(receipt.carrier_keys().matches(&carrier_id_keys(sent_carrier_id)));
}

#[test]
fn undelivered_with_spaces_after_colons() {
    // Given a receipt with a space after every colon and `Text:` capitalized
    let text = "id: 7731 sub: 001 dlvrd: 000 submit date: 2403151230 done date: 2403151302 stat: UNDELIV err: 001 Text: Your code";

    // When it is read
    let receipt = read(text);

    // Then the spaces are not part of any value
    assert_eq!(receipt.carrier_id, "7731");
    assert_eq!(receipt.stat, Some("UNDELIV"));
    assert_eq!(receipt.err, Some("001"));
    assert_eq!(receipt.error_code, Some(1));
    assert_eq!(receipt.outcome, Outcome::Undelivered);
    assert_eq!(receipt.done_at, at(datetime!(2024-03-15 13:02 UTC)));
    assert_eq!(receipt.delivered, Some(0));
    assert_eq!(parse(text).text, Some("Your code"));
}

#[test]
fn accepted_then_delivered() {
    // Given an intermediate receipt and the final one that follows it
    let accepted = "id:55 sub:001 dlvrd:000 submit date:2403151230 done date:2403151230 stat:ACCEPTD err:000 text:";
    let delivered = "id:55 sub:001 dlvrd:000 submit date:2403151230 done date:2403151230 stat:DELIVRD err:000 text:";

    // When both are read
    let first = read(accepted);
    let second = read(delivered);

    // Then only the second ends the message
    assert_eq!(first.carrier_id, "55");
    assert_eq!(first.stat, Some("ACCEPTD"));
    assert_eq!(first.err, Some("000"));
    assert_eq!(first.outcome, Outcome::Intermediate);
    assert_eq!(first.receipt_outcome(), None);
    assert_eq!(first.done_at, at(datetime!(2024-03-15 12:30 UTC)));
    assert_eq!(second.carrier_id, "55");
    assert_eq!(second.stat, Some("DELIVRD"));
    assert_eq!(second.err, Some("000"));
    assert_eq!(second.outcome, Outcome::Delivered);
    assert_eq!(second.done_at, at(datetime!(2024-03-15 12:30 UTC)));
    assert!(first.carrier_keys().matches(&second.carrier_keys()));
}

#[test]
fn empty_free_text_kept_as_empty() {
    let receipt = parse("id:55 stat:ACCEPTD text:");

    assert_eq!(receipt.text, Some(""));
}

#[test]
fn twelve_digit_dates_keep_seconds() {
    let receipt = parse("id:1 submit date:240315123005 done date:240315123159 stat:DELIVRD err:000");

    assert_eq!(receipt.submit_date, at(datetime!(2024-03-15 12:30:05 UTC)));
    assert_eq!(receipt.done_date, at(datetime!(2024-03-15 12:31:59 UTC)));
}

#[test]
fn reordered_fields_parse_alike() {
    // Given the same fields in the usual order and reversed
    let usual = "id:9F sub:002 dlvrd:002 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hi";
    let reordered = "err:000 stat:DELIVRD done date:2403151231 submit date:2403151230 dlvrd:002 sub:002 id:9F text:Hi";

    // When both are parsed
    let expected = parse(usual);
    let parsed = parse(reordered);

    // Then they give the same receipt
    assert_eq!(parsed, expected);
}

#[test]
fn missing_fields_are_none() {
    // Given a receipt with only an id and a stat
    let receipt = read("id:abc123 stat:EXPIRED");

    // Then everything else is missing and the state still maps
    assert_eq!(receipt.outcome, Outcome::Undelivered);
    assert_eq!(receipt.err, None);
    assert_eq!(receipt.error_code, None);
    assert_eq!(receipt.done_at, None);
    assert_eq!(receipt.submitted, None);
}

#[test]
fn stat_alone_parses_without_id() {
    let text = parse("stat:DELIVRD err:000");

    assert_eq!(text.id, None);
    assert_eq!(text.stat, Some("DELIVRD"));
}

#[test]
fn stat_alone_has_no_carrier_id() {
    let error = Receipt::read("stat:DELIVRD err:000", &ReceiptTlvs::default(), &StateTable::new()).unwrap_err();

    assert_eq!(error, ReceiptError::MissingId);
    assert_eq!(error.reason(), "receipt_missing_id");
}

#[test]
fn id_alone_has_unknown_outcome() {
    let receipt = read("id:0A1B2C3D");

    assert_eq!(receipt.stat, None);
    assert_eq!(receipt.outcome, Outcome::Unknown);
}

#[test]
fn four_digit_err_read() {
    let receipt = read("id:1 stat:UNDELIV err:0034");

    assert_eq!(receipt.err, Some("0034"));
    assert_eq!(receipt.error_code, Some(34));
}

#[test]
fn long_err_with_leading_zeros_read() {
    let receipt = read("id:1 stat:UNDELIV err:00000000000000004101");

    assert_eq!(receipt.error_code, Some(4101));
}

#[test]
fn eight_letter_stat_mapped() {
    let receipt = read("id:1 stat:BUFFERED err:000");

    assert_eq!(receipt.stat, Some("BUFFERED"));
    assert_eq!(receipt.outcome, Outcome::Intermediate);
}

#[test]
fn vendor_stat_spellings_mapped() {
    let cases = [
        ("DELIVERED", Outcome::Delivered),
        ("UNDELIVERABLE", Outcome::Undelivered),
        ("REJECTED", Outcome::Undelivered),
        ("BUFFRED", Outcome::Intermediate),
        ("SCHEDULED", Outcome::Intermediate),
        ("ENROUTE", Outcome::Intermediate),
        ("UNKNOWN", Outcome::Unknown),
        ("SKIPPED", Outcome::Unknown),
        ("NOROUTE", Outcome::Unknown),
    ];

    for (stat, outcome) in cases {
        let text = format!("id:1 stat:{stat} err:000");
        assert_eq!(read(&text).outcome, outcome, "{stat}");
    }
}

#[test]
fn lowercase_field_names_and_stat() {
    // Given a receipt written in lower case throughout
    let text = "ID:4f2a SUB:001 DLVRD:001 SUBMIT DATE:2403151230 Done Date:2403151231 stat:delivrd ERR:000 TEXT:ok";

    // When it is read
    let receipt = read(text);

    // Then the names are recognized and the stat is kept as written
    assert_eq!(receipt.carrier_id, "4f2a");
    assert_eq!(receipt.stat, Some("delivrd"));
    assert_eq!(receipt.outcome, Outcome::Delivered);
    assert_eq!(receipt.done_at, at(datetime!(2024-03-15 12:31 UTC)));
}

#[test]
fn stat_inside_free_text_ignored() {
    // Given free text that itself looks like receipt fields
    let text = "id:77 stat:UNDELIV err:001 text:stat:DELIVRD id:99 err:000";

    // When it is parsed
    let receipt = parse(text);

    // Then the real fields stand and the rest is text
    assert_eq!(receipt.stat, Some("UNDELIV"));
    assert_eq!(receipt.id, Some("77"));
    assert_eq!(receipt.err, Some("001"));
    assert_eq!(receipt.text, Some("stat:DELIVRD id:99 err:000"));
}

#[test]
fn free_text_keeps_colons_and_spaces() {
    let receipt = parse("id:1 stat:DELIVRD text:Code: 12 34  ok ");

    assert_eq!(receipt.text, Some("Code: 12 34  ok "));
}

#[test]
fn empty_value_counts_as_missing() {
    let receipt = parse("id: stat:DELIVRD err:");

    assert_eq!(receipt.id, None);
    assert_eq!(receipt.stat, Some("DELIVRD"));
    assert_eq!(receipt.err, None);
}

#[test]
fn unknown_tokens_skipped() {
    let receipt = parse("id:1 smsc:vendor-7 stat:DELIVRD lang:en err:000");

    assert_eq!(receipt.stat, Some("DELIVRD"));
    assert_eq!(receipt.error_code, Some(0));
}

#[test]
fn tabs_and_newlines_separate_fields() {
    let receipt = parse("id:1\tstat:DELIVRD\r\nerr:000\n");

    assert_eq!(receipt.stat, Some("DELIVRD"));
    assert_eq!(receipt.err, Some("000"));
}

#[test]
fn garbage_is_not_a_receipt() {
    for text in ["hello world", "Your code is 1234", ":::: : :", "identity:5 status:DELIVRD", "\0\u{1}"] {
        let error = parse_receipt_text(text).unwrap_err();
        assert_eq!(error, ReceiptError::MissingIdAndStat, "{text:?}");
    }
}

#[test]
fn empty_input_is_not_a_receipt() {
    let error = parse_receipt_text("").unwrap_err();

    assert_eq!(error.reason(), "receipt_missing_id_and_stat");
}

#[test]
fn non_ascii_values_kept() {
    // Given non-ASCII bytes in the id, the stat and the text
    let text = "id:Ω42 stat:ZUGESTELLT·Ä err:000 text:Grüße, ünïcødé ✓";

    // When it is read
    let receipt = read(text);

    // Then the values are kept and the unknown stat maps to unknown
    assert_eq!(receipt.carrier_id, "Ω42");
    assert_eq!(receipt.stat, Some("ZUGESTELLT·Ä"));
    assert_eq!(receipt.outcome, Outcome::Unknown);
    assert_eq!(parse(text).text, Some("Grüße, ünïcødé ✓"));
}

#[test]
fn non_ascii_whitespace_does_not_split() {
    // U+00A0 (no-break space) is not ASCII whitespace, so it stays in the id.
    let receipt = parse("id:12\u{a0}34 stat:DELIVRD");

    assert_eq!(receipt.id, Some("12\u{a0}34"));
}

#[test]
fn invalid_dates_rejected() {
    for (text, field) in [
        ("id:1 stat:DELIVRD done date:2403151261", "done date"),
        ("id:1 stat:DELIVRD done date:24031512", "done date"),
        ("id:1 stat:DELIVRD submit date:2413151230", "submit date"),
        ("id:1 stat:DELIVRD submit date:24-03-15", "submit date"),
    ] {
        let error = parse_receipt_text(text).unwrap_err();
        assert_eq!(error.reason(), "receipt_invalid_date", "{text:?}");
        assert!(matches!(error, ReceiptError::InvalidDate { field: f, .. } if f == field), "{text:?}: {error}");
    }
}

#[test]
fn invalid_numbers_rejected() {
    for (text, field) in [
        ("id:1 stat:UNDELIV err:0x1F", "err"),
        ("id:1 stat:UNDELIV err:4294967296", "err"),
        ("id:1 stat:DELIVRD sub:65536", "sub"),
        ("id:1 stat:DELIVRD dlvrd:-1", "dlvrd"),
    ] {
        let error = parse_receipt_text(text).unwrap_err();
        assert_eq!(error.reason(), "receipt_invalid_number", "{text:?}");
        assert!(matches!(error, ReceiptError::InvalidNumber { field: f, .. } if f == field), "{text:?}: {error}");
    }
}

#[test]
fn duplicate_field_rejected() {
    let error = parse_receipt_text("id:1 stat:DELIVRD Stat:UNDELIV").unwrap_err();

    assert_eq!(error, ReceiptError::DuplicateField { field: "stat" });
    assert_eq!(error.reason(), "receipt_duplicate_field");
}

#[test]
fn error_message_quotes_at_most_64_bytes() {
    let text = format!("id:1 stat:DELIVRD done date:{}", "9".repeat(10_000));

    let error = parse_receipt_text(&text).unwrap_err();

    assert!(error.to_string().len() < 200, "{error}");
}

#[test]
fn parsed_fields_borrow_from_input() {
    let text = String::from("id:0A1B2C3D stat:DELIVRD err:000 text:Hello");
    let range = text.as_bytes().as_ptr_range();

    let receipt = parse(&text);

    for value in [receipt.id, receipt.stat, receipt.err, receipt.text].into_iter().flatten() {
        assert!(range.contains(&value.as_ptr()), "{value:?} is a copy");
    }
}

#[test]
fn every_reason_is_listed() {
    let errors = [
        ReceiptError::MissingIdAndStat,
        ReceiptError::MissingId,
        ReceiptError::DuplicateField { field: "id" },
        ReceiptError::InvalidDate { field: "done date", value: String::new() },
        ReceiptError::InvalidNumber { field: "err", value: String::new(), max: 0 },
        ReceiptError::InvalidTlv { tag: 0x0427, name: "message_state", detail: "" },
        ReceiptError::TruncatedTlvs { offset: 0, remaining: 1 },
    ];

    for error in errors {
        assert!(ReceiptError::REASONS.contains(&error.reason()), "{error:?}");
    }
}
