//! Properties of the receipt parser and the carrier id keys over random
//! input: no input makes them panic, and a receipt written from random valid
//! fields, in random order, spacing and case, parses back to those fields.

use proptest::prelude::*;
use smsfold_domain::Timestamp;
use smsfold_smpp::{carrier_id_keys, parse_receipt_text, Receipt, ReceiptError, ReceiptTlvs, StateTable};
use time::{Date, Month, PrimitiveDateTime, Time};

/// A receipt date and the time it stands for.
#[derive(Debug, Clone)]
struct DateField {
    written: String,
    at: Timestamp,
}

fn date_field() -> impl Strategy<Value = DateField> {
    (0u8..100, 1u8..=12, 1u8..=31, 0u8..24, 0u8..60, prop::option::of(0u8..60)).prop_filter_map(
        "no such day in that month",
        |(year, month, day, hour, minute, second)| {
            let date = Date::from_calendar_date(2000 + i32::from(year), Month::try_from(month).ok()?, day).ok()?;
            let time = Time::from_hms(hour, minute, second.unwrap_or(0)).ok()?;
            let seconds = PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp();
            let mut written = format!("{year:02}{month:02}{day:02}{hour:02}{minute:02}");
            if let Some(second) = second {
                written.push_str(&format!("{second:02}"));
            }
            Some(DateField { written, at: Timestamp::from_millis(seconds * 1000) })
        },
    )
}

/// The fields of one generated receipt; `None` leaves a field out.
#[derive(Debug, Clone)]
struct Fields {
    id: Option<String>,
    submitted: Option<u16>,
    delivered: Option<u16>,
    submit_date: Option<DateField>,
    done_date: Option<DateField>,
    stat: Option<String>,
    err: Option<String>,
    text: Option<String>,
}

fn stat() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["DELIVRD", "UNDELIV", "ACCEPTD", "ENROUTE", "BUFFRED", "DELIVERED", "REJECTD"])
            .prop_map(str::to_owned),
        "[A-Za-z]{1,12}",
    ]
}

/// Free text: anything that does not start with whitespace, since the
/// parser drops whitespace between `text:` and its value.
fn free_text() -> impl Strategy<Value = String> {
    prop_oneof!["[!-~][ -~]{0,30}", any::<String>()]
        .prop_map(|text| text.trim_start_matches(|c: char| c.is_ascii_whitespace()).to_owned())
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        prop::option::of("[0-9A-Fa-f]{1,24}"),
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u16>()),
        prop::option::of(date_field()),
        prop::option::of(date_field()),
        prop::option::of(stat()),
        prop::option::of("[0-9]{1,9}"),
        prop::option::of(free_text()),
    )
        .prop_map(|(id, submitted, delivered, submit_date, done_date, stat, err, text)| Fields {
            id,
            submitted,
            delivered,
            submit_date,
            done_date,
            stat,
            err,
            text,
        })
}

/// The formatting choices for one receipt.
#[derive(Debug, Clone)]
struct Layout {
    /// Decides the case of each letter of the field names.
    upper_case: Vec<bool>,
    after_colon: Vec<&'static str>,
    between: Vec<&'static str>,
    order: Vec<usize>,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::collection::vec(any::<bool>(), 12),
        prop::collection::vec(prop::sample::select(vec!["", " ", "  ", "\t"]), 8),
        prop::collection::vec(prop::sample::select(vec![" ", "  ", "\t", "\r\n"]), 8),
        Just((0..7).collect::<Vec<usize>>()).prop_shuffle(),
    )
        .prop_map(|(upper_case, after_colon, between, order)| Layout { upper_case, after_colon, between, order })
}

fn write_key(name: &str, layout: &Layout, out: &mut String) {
    for (index, c) in name.chars().enumerate() {
        out.push(if layout.upper_case[index % layout.upper_case.len()] { c.to_ascii_uppercase() } else { c });
    }
    out.push(':');
}

/// Writes the fields as a receipt text: the fields other than `text` in the
/// layout's order, then `text`, which must come last.
fn write_receipt(fields: &Fields, layout: &Layout) -> String {
    let values: [(&str, Option<String>); 7] = [
        ("id", fields.id.clone()),
        ("sub", fields.submitted.map(|count| format!("{count:03}"))),
        ("dlvrd", fields.delivered.map(|count| format!("{count:03}"))),
        ("submit date", fields.submit_date.as_ref().map(|date| date.written.clone())),
        ("done date", fields.done_date.as_ref().map(|date| date.written.clone())),
        ("stat", fields.stat.clone()),
        ("err", fields.err.clone()),
    ];
    let mut out = String::new();
    for (position, &index) in layout.order.iter().enumerate() {
        let (name, value) = &values[index];
        let Some(value) = value else { continue };
        out.push_str(layout.between[position]);
        write_key(name, layout, &mut out);
        out.push_str(layout.after_colon[position]);
        out.push_str(value);
    }
    if let Some(text) = &fields.text {
        out.push_str(layout.between[7]);
        write_key("text", layout, &mut out);
        out.push_str(layout.after_colon[7]);
        out.push_str(text);
    }
    out
}

/// Text built from receipt-like tokens, to reach deeper into the parser than
/// uniformly random strings do.
fn receipt_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        prop::sample::select(vec![
            "id:", "ID: ", "sub:", "dlvrd:", "submit date:", "done date:", "Done Date: ", "stat:", "err:", "text:",
            "Text:", ":", " ", "\t", "\n", "0", "9", "2403151230", "240315123059", "DELIVRD", "é", "\u{a0}",
        ])
        .prop_map(str::to_owned),
        "[0-9a-zA-Z:]{0,14}",
    ];
    prop::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_receipt_text(&text);
        let _ = Receipt::read(&text, &ReceiptTlvs::default(), &StateTable::new());
        let _ = carrier_id_keys(&text);
    }

    #[test]
    fn receipt_like_text_never_panics(text in receipt_like()) {
        if let Ok(receipt) = parse_receipt_text(&text) {
            prop_assert!(receipt.id.is_some() || receipt.stat.is_some());
        }
    }

    #[test]
    fn arbitrary_tlv_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = ReceiptTlvs::parse(&bytes);
    }

    #[test]
    fn written_receipt_parses_back(fields in fields(), layout in layout()) {
        // Given a receipt written from the fields
        let text = write_receipt(&fields, &layout);

        // When it is parsed
        let parsed = parse_receipt_text(&text);

        // Then it gives the fields back, or is no receipt without id and stat
        if fields.id.is_none() && fields.stat.is_none() {
            prop_assert_eq!(parsed, Err(ReceiptError::MissingIdAndStat));
            return Ok(());
        }
        let parsed = parsed.map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
        prop_assert_eq!(parsed.id, fields.id.as_deref());
        prop_assert_eq!(parsed.submitted, fields.submitted);
        prop_assert_eq!(parsed.delivered, fields.delivered);
        prop_assert_eq!(parsed.submit_date, fields.submit_date.as_ref().map(|date| date.at));
        prop_assert_eq!(parsed.done_date, fields.done_date.as_ref().map(|date| date.at));
        prop_assert_eq!(parsed.stat, fields.stat.as_deref());
        prop_assert_eq!(parsed.err, fields.err.as_deref());
        prop_assert_eq!(parsed.error_code, fields.err.as_ref().map(|err| err.parse::<u32>().unwrap()));
        prop_assert_eq!(parsed.text, fields.text.as_deref());
    }

    #[test]
    fn hex_and_decimal_spellings_match(number in any::<u64>(), zeros in 0usize..4, upper in any::<bool>()) {
        // Given one number written in hexadecimal and in decimal
        let hex = format!("{}{number:x}", "0".repeat(zeros));
        let hex = if upper { hex.to_ascii_uppercase() } else { hex };
        let decimal = number.to_string();

        // Then their keys match
        prop_assert!(carrier_id_keys(&hex).matches(&carrier_id_keys(&decimal)), "{} {}", hex, decimal);
    }

    #[test]
    fn keys_match_themselves(id in any::<String>()) {
        let keys = carrier_id_keys(&id);

        prop_assert_eq!(keys.matches(&keys), !keys.is_empty());
        prop_assert!(keys.len() <= 2);
    }

    #[test]
    fn same_length_decimal_ids_never_collide(
        first in "[1-9][0-9]{5,30}",
        second in "[1-9][0-9]{5,30}",
    ) {
        // Given two different all-digit ids of 6 or more digits, one length
        prop_assume!(first != second);
        let second = &second[..first.len().min(second.len())];
        let first = &first[..second.len()];
        prop_assume!(first != second);

        // Then their keys do not match
        prop_assert!(!carrier_id_keys(first).matches(&carrier_id_keys(second)));
    }
}
