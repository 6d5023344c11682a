//! A compact encoding for the texts of carrier links, in which a run of
//! hexadecimal digits takes half a byte per digit.
//!
//! The ids a link stores are mostly hexadecimal: message ids such as `SM`
//! and 32 hex digits, event ids with 16 hex digits and a decimal position,
//! UUIDs. Packed, such an id takes a little over half its length. Any text
//! round-trips, and equal texts give equal bytes.
//!
//! The text is a sequence of segments, each led by a tag byte:
//! - `0`: the end of the text;
//! - `1` to `63`: that many bytes, copied as they are;
//! - `0x40 | (n - 1)`: `n` digits of `0-9a-f` (`n` from 1 to 64), two per
//!   byte, high nibble first, with a low nibble of 0 after an odd last digit;
//! - `0x80 | (n - 1)`: the same for `0-9A-F`.

use std::borrow::Cow;

use crate::link_data::take;

const END: u8 = 0;
/// The maximum length of one literal segment, in bytes.
const MAX_LITERAL: usize = 63;
const LOWER_HEX: u8 = 0x40;
const UPPER_HEX: u8 = 0x80;
const KIND_MASK: u8 = 0xc0;
/// The maximum number of digits in one packed segment.
const MAX_DIGITS: usize = 64;
/// The shortest run worth packing: from 4 digits on, a run packed at either
/// end of the text takes fewer bytes than copied.
const MIN_PACKED_DIGITS: usize = 4;

/// Appends `text` packed.
pub(crate) fn write_packed(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut literal_start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let lower = run_length(&bytes[at..], LOWER_HEX);
        let upper = run_length(&bytes[at..], UPPER_HEX);
        let (digits, kind) = if lower >= upper { (lower, LOWER_HEX) } else { (upper, UPPER_HEX) };
        if digits < MIN_PACKED_DIGITS {
            at += 1;
            continue;
        }
        write_literal(&bytes[literal_start..at], out);
        write_digits(&bytes[at..at + digits], kind, out);
        at += digits;
        literal_start = at;
    }
    write_literal(&bytes[literal_start..], out);
    out.push(END);
}

/// Reads a text that [`write_packed`] wrote at the start of `bytes`, and
/// moves `bytes` past it. Borrows a text that is one literal segment.
pub(crate) fn read_packed<'a>(bytes: &mut &'a [u8]) -> Cow<'a, str> {
    if let Some(text) = read_single_literal(bytes) {
        return Cow::Borrowed(text);
    }
    let mut text = Vec::new();
    loop {
        let tag = take(bytes, 1)[0];
        match tag & KIND_MASK {
            _ if tag == END => break,
            0 => text.extend_from_slice(take(bytes, usize::from(tag))),
            LOWER_HEX | UPPER_HEX => {
                let digits = usize::from(tag & !KIND_MASK) + 1;
                let alphabet = if tag & KIND_MASK == LOWER_HEX { b"0123456789abcdef" } else { b"0123456789ABCDEF" };
                for (index, &pair) in take(bytes, digits.div_ceil(2)).iter().enumerate() {
                    text.push(alphabet[usize::from(pair >> 4)]);
                    if 2 * index + 1 < digits {
                        text.push(alphabet[usize::from(pair & 0xf)]);
                    }
                }
            }
            _ => panic!("invalid packed text tag {tag:#04x}"),
        }
    }
    // Literal segments may split a character, but together they hold the
    // whole text, which was a `str`.
    Cow::Owned(String::from_utf8(text).expect("packed text was written from a str"))
}

/// Moves `bytes` past a text that [`write_packed`] wrote, without decoding it.
pub(crate) fn skip_packed(bytes: &mut &[u8]) {
    loop {
        let tag = take(bytes, 1)[0];
        let length = match tag & KIND_MASK {
            _ if tag == END => return,
            0 => usize::from(tag),
            LOWER_HEX | UPPER_HEX => (usize::from(tag & !KIND_MASK) + 1).div_ceil(2),
            _ => panic!("invalid packed text tag {tag:#04x}"),
        };
        take(bytes, length);
    }
}

/// Reads a text of one literal segment, or of none, without copying it.
/// Leaves `bytes` as it is for any other text.
fn read_single_literal<'a>(bytes: &mut &'a [u8]) -> Option<&'a str> {
    let (text, consumed) = match bytes.first() {
        Some(&END) => (&bytes[..0], 1),
        Some(&tag) if tag & KIND_MASK == 0 => {
            let length = usize::from(tag);
            if bytes.get(1 + length) != Some(&END) {
                return None;
            }
            (&bytes[1..1 + length], length + 2)
        }
        _ => return None,
    };
    *bytes = &bytes[consumed..];
    // A segment that is the whole text contains whole characters.
    Some(std::str::from_utf8(text).expect("packed text was written from a str"))
}

/// Returns how many bytes at the start of `bytes` are digits of the
/// alphabet of `kind`.
fn run_length(bytes: &[u8], kind: u8) -> usize {
    let is_digit = |byte: &u8| match kind {
        LOWER_HEX => byte.is_ascii_digit() || (b'a'..=b'f').contains(byte),
        _ => byte.is_ascii_digit() || (b'A'..=b'F').contains(byte),
    };
    bytes.iter().take_while(|byte| is_digit(byte)).count()
}

fn write_literal(bytes: &[u8], out: &mut Vec<u8>) {
    for segment in bytes.chunks(MAX_LITERAL) {
        // At most 63, which fits the tag.
        out.push(segment.len() as u8);
        out.extend_from_slice(segment);
    }
}

fn write_digits(digits: &[u8], kind: u8, out: &mut Vec<u8>) {
    for segment in digits.chunks(MAX_DIGITS) {
        // At most 63 after subtracting one, which fits below the kind bits.
        out.push(kind | (segment.len() - 1) as u8);
        for pair in segment.chunks(2) {
            let high = nibble(pair[0]);
            let low = pair.get(1).map_or(0, |&digit| nibble(digit));
            out.push(high << 4 | low);
        }
    }
}

/// Returns the value of a hexadecimal digit of either case.
fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(text: &str) -> Vec<u8> {
        let mut bytes = Vec::new();
        write_packed(text, &mut bytes);
        bytes
    }

    /// Packs `text`, then reads and skips it, checking that both stop at its
    /// end. Returns the packed size.
    fn round_trip(text: &str) -> usize {
        let mut bytes = packed(text);
        let size = bytes.len();
        bytes.push(0xee);

        let mut read_rest = &bytes[..];
        let read = read_packed(&mut read_rest);
        let mut skip_rest = &bytes[..];
        skip_packed(&mut skip_rest);

        assert_eq!(read, text);
        assert_eq!(read_rest, [0xee], "reading stops at the end of {text:?}");
        assert_eq!(skip_rest, [0xee], "skipping stops at the end of {text:?}");
        size
    }

    #[test]
    fn hex_ids_take_about_half() {
        assert_eq!(round_trip("SM0123456789abcdef0123456789abcdef"), 21);
        assert_eq!(round_trip("EV0123456789abcdef-3999843"), 20);
        assert_eq!(round_trip("0A1B2C3D4E5F"), 8);
        assert_eq!(round_trip("123e4567-e89b-12d3-a456-426614174000"), 30);
    }

    #[test]
    fn texts_round_trip() {
        let cases = [
            "",
            "a",
            "abc",
            "abcd",
            "ABCD",
            "0000",
            "carrier3-0a1b2c3d4e",
            "aBcD0123aBcD",
            "0123ABCDabcd",
            "12345abcdefABCDEF",
            "x-1",
            "Grüße 4f2a",
            "日本語のテキスト",
        ];
        for text in cases {
            round_trip(text);
        }
    }

    #[test]
    fn long_runs_split_into_segments() {
        let digits = "0123456789abcdef".repeat(20);
        let letters = "xyz".repeat(100);

        assert_eq!(round_trip(&digits), 5 * (1 + 32) + 1, "five segments of 64 digits");
        round_trip(&format!("{digits}{letters}{}", digits.to_ascii_uppercase()));
        round_trip(&"9".repeat(65));
        round_trip(&"b".repeat(20_001));
    }

    #[test]
    fn long_literal_may_split_characters() {
        // 40 two-byte characters: the first literal segment ends inside one.
        let text = "ü".repeat(40);

        assert_eq!(round_trip(&text), 80 + 2 + 1);
    }

    #[test]
    fn single_literal_is_borrowed() {
        let bytes = packed("x-1");

        assert!(matches!(read_packed(&mut &bytes[..]), Cow::Borrowed("x-1")));
        assert!(matches!(read_packed(&mut &packed("")[..]), Cow::Borrowed("")));
        assert!(matches!(read_packed(&mut &packed("x-1abcd")[..]), Cow::Owned(_)));
    }

    #[test]
    fn short_runs_stay_literal() {
        assert_eq!(packed("ab-12"), [5, b'a', b'b', b'-', b'1', b'2', END]);
        assert_eq!(packed("1234"), [LOWER_HEX | 3, 0x12, 0x34, END]);
        assert_eq!(packed("ABCDE"), [UPPER_HEX | 4, 0xab, 0xcd, 0xe0, END]);
    }

    #[test]
    fn equal_texts_give_equal_bytes() {
        assert_eq!(packed("EV00ff-12"), packed("EV00ff-12"));
        assert_ne!(packed("EV00ff-12"), packed("EV00FF-12"));
        assert_ne!(packed("abc"), packed("abcd"));
    }

    #[test]
    #[should_panic(expected = "invalid packed text tag 0xc0")]
    fn unknown_tag_panics() {
        read_packed(&mut &[0xc0u8, END][..]);
    }
}
