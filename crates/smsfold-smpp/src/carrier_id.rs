//! Keys that match a receipt's carrier message id to the id in a sent event.
//!
//! A receipt names the carrier's id for a message, which the platform learns
//! from the carrier's submit response and records in the `sent` event. The
//! two sides need not write it alike: one may be hexadecimal and the other
//! decimal (`0A1B2C3D` and `169552957` are one number), with or without
//! leading zeros, in either case. [`carrier_id_keys`] turns an id into the
//! small set of keys it can match under, and two ids match when their key
//! sets share a key:
//!
//! - an id of decimal digits only has two numeric keys, its decimal value
//!   and its value read as hexadecimal (one key when both are equal, for the
//!   ids 0 to 9);
//! - an id of hexadecimal digits with at least one letter `a` to `f` has its
//!   hexadecimal value;
//! - a reading too large for 128 bits is dropped;
//! - an id with no numeric key (other characters, or too long) has one text
//!   key, the id in ASCII lower case;
//! - an empty id has no keys and matches nothing.
//!
//! Whitespace around the id is ignored.
//!
//! False matches: an all-digit id is read both ways, so it also matches a
//! different all-digit id whose decimal value equals its hexadecimal value:
//! `10` matches `16`, and `169552957` matches `6062156119`. An id of n
//! significant digits read as hexadecimal is at least 16^(n-1), and for n of
//! 6 or more that exceeds every n-digit decimal number. So two all-digit ids
//! with the same number of significant digits, 6 or more, never match by
//! mistake. The risk remains where live all-digit ids differ in length or
//! are shorter than 6 digits.

use std::fmt;

/// One normalized form of a carrier message id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CarrierKey {
    /// The id's value as a number.
    Number(u128),
    /// The id in ASCII lower case, for an id that is not a number.
    Text(Box<str>),
}

impl fmt::Display for CarrierKey {
    /// Writes the key in a stable form for use as a record key or map key:
    /// `n:` and the number in lower-case hexadecimal, or `t:` and the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CarrierKey::Number(number) => write!(f, "n:{number:x}"),
            CarrierKey::Text(text) => write!(f, "t:{text}"),
        }
    }
}

/// The keys a carrier message id matches under: none, one or two.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CarrierKeys {
    first: Option<CarrierKey>,
    second: Option<CarrierKey>,
}

impl CarrierKeys {
    /// Returns the keys. For an all-digit id the decimal reading comes first.
    pub fn iter(&self) -> impl Iterator<Item = &CarrierKey> + '_ {
        self.first.iter().chain(self.second.iter())
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    pub fn contains(&self, key: &CarrierKey) -> bool {
        self.iter().any(|own| own == key)
    }

    /// Returns true when the two ids share a key, that is, may name the same
    /// message.
    pub fn matches(&self, other: &CarrierKeys) -> bool {
        self.iter().any(|key| other.contains(key))
    }
}

/// Returns the keys a carrier message id can match under.
///
/// Numeric ids allocate nothing. An id with a text key is copied once, in
/// lower case.
pub fn carrier_id_keys(id: &str) -> CarrierKeys {
    let id = id.trim_matches(|c: char| c.is_ascii_whitespace());
    if id.is_empty() {
        return CarrierKeys::default();
    }
    let (first, second) = match number_keys(id) {
        Some((first, second)) => (CarrierKey::Number(first), second.map(CarrierKey::Number)),
        None => (CarrierKey::Text(id.to_ascii_lowercase().into_boxed_str()), None),
    };
    CarrierKeys { first: Some(first), second }
}

/// Returns the numbers of an id's keys in the order of [`carrier_id_keys`],
/// or `None` when its key is text, without allocating. `id` has no
/// whitespace around it and is not empty.
pub(crate) fn number_keys(id: &str) -> Option<(u128, Option<u128>)> {
    debug_assert!(!id.is_empty(), "an empty id has no keys");
    let bytes = id.as_bytes();
    let all_decimal = bytes.iter().all(u8::is_ascii_digit);
    let all_hex = all_decimal || bytes.iter().all(u8::is_ascii_hexdigit);

    let decimal = if all_decimal { read_number(bytes, 10) } else { None };
    let hex = if all_hex { read_number(bytes, 16) } else { None };
    match (decimal, hex) {
        (Some(decimal), Some(hex)) if decimal == hex => Some((decimal, None)),
        (Some(decimal), Some(hex)) => Some((decimal, Some(hex))),
        (Some(number), None) | (None, Some(number)) => Some((number, None)),
        (None, None) => None,
    }
}

/// Reads digits of `radix` (10 or 16, either case) into a number, or `None`
/// when the value does not fit in 128 bits. Leading zeros never overflow.
fn read_number(digits: &[u8], radix: u32) -> Option<u128> {
    let mut number: u128 = 0;
    for &byte in digits {
        let digit = char::from(byte).to_digit(radix)?;
        number = number.checked_mul(u128::from(radix))?.checked_add(u128::from(digit))?;
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(id: &str) -> Vec<CarrierKey> {
        carrier_id_keys(id).iter().cloned().collect()
    }

    #[test]
    fn hex_receipt_matches_decimal_sent_id() {
        assert!(carrier_id_keys("0A1B2C3D").matches(&carrier_id_keys("169552957")));
    }

    #[test]
    fn all_digit_id_has_both_readings() {
        assert_eq!(keys("7731"), [CarrierKey::Number(7731), CarrierKey::Number(0x7731)]);
    }

    #[test]
    fn single_digit_has_one_key() {
        assert_eq!(keys("0007"), [CarrierKey::Number(7)]);
    }

    #[test]
    fn hex_ignores_case_and_leading_zeros() {
        assert_eq!(carrier_id_keys("0000004f2a"), carrier_id_keys("4F2A"));
    }

    #[test]
    fn other_ids_get_lowercase_text_key() {
        assert_eq!(keys(" Carrier-5C21D0 "), [CarrierKey::Text("carrier-5c21d0".into())]);
    }

    #[test]
    fn too_long_hex_falls_back_to_text() {
        let id = format!("A{}", "0".repeat(32));

        assert_eq!(keys(&id), [CarrierKey::Text(id.to_ascii_lowercase().into())]);
    }

    #[test]
    fn long_decimal_keeps_decimal_reading() {
        // 39 digits fit in u128 as decimal (max about 3.4e38) but not as hex.
        let id = "1".repeat(39);

        assert_eq!(keys(&id), [CarrierKey::Number(id.parse().unwrap())]);
    }

    #[test]
    fn empty_id_matches_nothing() {
        assert!(carrier_id_keys("  ").is_empty());
        assert!(!carrier_id_keys("").matches(&carrier_id_keys("")));
    }

    #[test]
    fn key_display_is_prefixed() {
        assert_eq!(CarrierKey::Number(169_552_957).to_string(), "n:a1b2c3d");
        assert_eq!(CarrierKey::Text("x-1".into()).to_string(), "t:x-1");
    }
}
