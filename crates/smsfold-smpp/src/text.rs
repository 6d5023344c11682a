//! The parser of a delivery receipt's short message text:
//!
//! ```text
//! id:<id> sub:<nnn> dlvrd:<nnn> submit date:<YYMMDDhhmm> done date:<YYMMDDhhmm> stat:<STATE> err:<nnn> text:<free text>
//! ```
//!
//! The parser accepts the variations of real receipts and nothing looser:
//! - field names in any case (`text:`, `Text:`), and whitespace between a
//!   colon and its value (`id: 7731`);
//! - fields in any order, and any of them missing;
//! - ids of any form (the carrier's id is not normalized here; see
//!   [`carrier_id_keys`](crate::carrier_id_keys));
//! - dates of 10 digits (to the minute) or 12 (to the second);
//! - a stat of any length and spelling, kept as written;
//! - an `err` of any number of digits;
//! - unknown `name:value` tokens, which are skipped.
//!
//! The free `text` field runs to the end of the input and may contain colons
//! and spaces, so a `stat:` inside it never counts as the receipt's stat.
//! Fields after `text:` are therefore part of the text.
//!
//! A field is an error when its value is invalid (a date of another length
//! or an impossible date, a count or `err` that is not a decimal number in
//! range) or when it occurs twice. An empty value (`id:` followed by the
//! next field or the end) counts as a missing field. Input with neither an
//! id nor a stat is not a receipt.
//!
//! The returned [`ReceiptText`] borrows from the input, and parsing a valid
//! receipt allocates nothing. Only an error copies part of the input.

use smsfold_domain::Timestamp;

use crate::date::parse_receipt_date;
use crate::error::{quote, ReceiptError};

/// The fields of a receipt text. Each is `None` when the field is missing
/// or empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptText<'a> {
    /// The carrier's message id (`id`), as written.
    pub id: Option<&'a str>,
    /// Messages originally submitted (`sub`).
    pub submitted: Option<u16>,
    /// Messages delivered (`dlvrd`).
    pub delivered: Option<u16>,
    /// When the message was submitted (`submit date`), read as UTC.
    pub submit_date: Option<Timestamp>,
    /// When the message reached this state (`done date`), read as UTC.
    pub done_date: Option<Timestamp>,
    /// The receipt state (`stat`), as written: `DELIVRD`, `delivered`,
    /// `NOROUTE`.
    pub stat: Option<&'a str>,
    /// The error code (`err`), as written, with its leading zeros.
    pub err: Option<&'a str>,
    /// The value of `err`.
    pub error_code: Option<u32>,
    /// The free text after `text:` and any whitespace that follows it, to
    /// the end of the input. Usually the first 20 characters of the message.
    /// `Some("")` when `text:` ends the input.
    pub text: Option<&'a str>,
}

/// A field of the receipt text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Sub,
    Dlvrd,
    SubmitDate,
    DoneDate,
    Stat,
    Err,
    Text,
}

impl Field {
    /// Returns the field's name as written in a receipt, without the colon.
    const fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Sub => "sub",
            Field::Dlvrd => "dlvrd",
            Field::SubmitDate => "submit date",
            Field::DoneDate => "done date",
            Field::Stat => "stat",
            Field::Err => "err",
            Field::Text => "text",
        }
    }

    /// Returns the field's bit in the set of fields seen so far.
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Parses the short message text of a delivery receipt.
///
/// # Errors
///
/// [`ReceiptError::MissingIdAndStat`] when the text has neither an id nor a
/// stat (including empty and non-receipt text), and
/// [`ReceiptError::InvalidDate`], [`ReceiptError::InvalidNumber`] or
/// [`ReceiptError::DuplicateField`] for an invalid or repeated field.
pub fn parse_receipt_text(text: &str) -> Result<ReceiptText<'_>, ReceiptError> {
    let bytes = text.as_bytes();
    let mut receipt = ReceiptText::default();
    let mut seen = 0u8;
    let mut position = 0;

    // Every index below is at an ASCII byte or at the end, so each slice of
    // `text` falls on a character boundary.
    loop {
        position = skip_whitespace(bytes, position);
        if position == bytes.len() {
            break;
        }
        let Some((field, key_len)) = match_key(&bytes[position..]) else {
            position = token_end(bytes, position);
            continue;
        };
        if seen & field.bit() != 0 {
            return Err(ReceiptError::DuplicateField { field: field.name() });
        }
        seen |= field.bit();

        let value_start = skip_whitespace(bytes, position + key_len);
        if field == Field::Text {
            receipt.text = Some(&text[value_start..]);
            break;
        }
        // `id: stat:DELIVRD` has an empty id, not an id of `stat:DELIVRD`.
        let value_end = if match_key(&bytes[value_start..]).is_some() {
            value_start
        } else {
            token_end(bytes, value_start)
        };
        receipt.set(field, &text[value_start..value_end])?;
        position = value_end;
    }

    if receipt.id.is_none() && receipt.stat.is_none() {
        return Err(ReceiptError::MissingIdAndStat);
    }
    Ok(receipt)
}

impl<'a> ReceiptText<'a> {
    /// Stores the value of one field other than `text`.
    fn set(&mut self, field: Field, value: &'a str) -> Result<(), ReceiptError> {
        if value.is_empty() {
            return Ok(());
        }
        match field {
            Field::Id => self.id = Some(value),
            Field::Sub => self.submitted = Some(parse_count(value, field)?),
            Field::Dlvrd => self.delivered = Some(parse_count(value, field)?),
            Field::SubmitDate => self.submit_date = Some(parse_receipt_date(value, field.name())?),
            Field::DoneDate => self.done_date = Some(parse_receipt_date(value, field.name())?),
            Field::Stat => self.stat = Some(value),
            Field::Err => {
                let code = parse_decimal(value, u64::from(u32::MAX))
                    .ok_or_else(|| invalid_number(value, field, u32::MAX))?;
                self.err = Some(value);
                self.error_code = Some(code as u32);
            }
            Field::Text => self.text = Some(value),
        }
        Ok(())
    }
}

/// Returns the field whose name, with its colon, starts `rest`, and the
/// length of that name. Case is ignored.
fn match_key(rest: &[u8]) -> Option<(Field, usize)> {
    let candidates: &[(&[u8], Field)] = match rest.first()? | 0x20 {
        b'i' => &[(b"id:", Field::Id)],
        b's' => &[(b"stat:", Field::Stat), (b"sub:", Field::Sub), (b"submit date:", Field::SubmitDate)],
        b'd' => &[(b"done date:", Field::DoneDate), (b"dlvrd:", Field::Dlvrd)],
        b'e' => &[(b"err:", Field::Err)],
        b't' => &[(b"text:", Field::Text)],
        _ => return None,
    };
    candidates
        .iter()
        .find(|(key, _)| rest.len() >= key.len() && rest[..key.len()].eq_ignore_ascii_case(key))
        .map(|&(key, field)| (field, key.len()))
}

fn skip_whitespace(bytes: &[u8], mut position: usize) -> usize {
    while position < bytes.len() && bytes[position].is_ascii_whitespace() {
        position += 1;
    }
    position
}

fn token_end(bytes: &[u8], mut position: usize) -> usize {
    while position < bytes.len() && !bytes[position].is_ascii_whitespace() {
        position += 1;
    }
    position
}

/// Parses a `sub` or `dlvrd` count.
fn parse_count(value: &str, field: Field) -> Result<u16, ReceiptError> {
    match parse_decimal(value, u64::from(u16::MAX)) {
        Some(count) => Ok(count as u16),
        None => Err(invalid_number(value, field, u16::MAX)),
    }
}

/// Parses ASCII decimal digits, any number of them, into a value of at most
/// `max`. Returns `None` for an empty value, any other byte, or a value above
/// `max`.
fn parse_decimal(value: &str, max: u64) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut number: u64 = 0;
    for &byte in value.as_bytes() {
        if !byte.is_ascii_digit() {
            return None;
        }
        number = number * 10 + u64::from(byte - b'0');
        if number > max {
            return None;
        }
    }
    Some(number)
}

fn invalid_number(value: &str, field: Field, max: impl Into<u64>) -> ReceiptError {
    ReceiptError::InvalidNumber { field: field.name(), value: quote(value), max: max.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_accepts_leading_zeros() {
        assert_eq!(parse_decimal("0000000000000000000000042", 100), Some(42));
    }

    #[test]
    fn decimal_rejects_overflow_and_signs() {
        assert_eq!(parse_decimal("101", 100), None);
        assert_eq!(parse_decimal("+1", 100), None);
        assert_eq!(parse_decimal("", 100), None);
    }

    #[test]
    fn key_match_ignores_case() {
        assert_eq!(match_key(b"SUBMIT DATE:2403151230"), Some((Field::SubmitDate, 12)));
        assert_eq!(match_key(b"Text:"), Some((Field::Text, 5)));
    }

    #[test]
    fn key_needs_colon() {
        assert_eq!(match_key(b"id"), None);
        assert_eq!(match_key(b"submit date"), None);
        assert_eq!(match_key(b"identity:1"), None);
    }
}
