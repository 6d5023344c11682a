//! The record of a carrier link in the link arena, and [`StoredLink`], the
//! view of it that the join returns.
//!
//! A record's body contains the carrier id in lower case without whitespace
//! around it, the sent event's time and id, and the caller's data. Most
//! links are stored under a key the carrier id determines: its first key
//! ([`receipt_join_key`](crate::receipt_join_key)), or for an all-digit id
//! also its second, the digits read as hexadecimal. Such a key is derived
//! from the id and not stored, and one record serves both keys when the
//! same sent event adds the id under each. Any other key is written in the
//! record. The state byte has a bit for each key the record is stored
//! under.
//!
//! The body starts with LEB128 numbers: the written key's length (only with
//! [`WRITTEN_KEY`]), the carrier id's length, and the sent time in zigzag
//! form. Then come the written key, the carrier id, the sent event id packed
//! ([`crate::packed_text`]), and the data's bytes ([`LinkData`]).

use std::borrow::Cow;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;

use hashbrown::DefaultHashBuilder;

use crate::carrier_id::number_keys;
use crate::join::{spelling_of_normalized, Link};
use crate::link_data::{push_length, push_signed, read_length, read_signed, take, LinkData};
use crate::packed_text::{read_packed, skip_packed, write_packed};

/// State bit: the record is stored under the carrier id's first key.
pub(crate) const FIRST_KEY: u8 = 1;
/// State bit: the record is stored under the carrier id's second key.
pub(crate) const SECOND_KEY: u8 = 2;
/// State bit: the record is stored under the key written in its body, and
/// only there.
pub(crate) const WRITTEN_KEY: u8 = 4;

/// Lower-cases a carrier id and trims ASCII whitespace around it, in place.
pub(crate) fn normalize_carrier_id(carrier_id: &mut String) {
    carrier_id.make_ascii_lowercase();
    let is_space = |c: char| c.is_ascii_whitespace();
    let end = carrier_id.trim_end_matches(is_space).len();
    carrier_id.truncate(end);
    let start = carrier_id.len() - carrier_id.trim_start_matches(is_space).len();
    carrier_id.drain(..start);
}

/// Returns the state bit for storing a link of `carrier_id`, an id that
/// [`normalize_carrier_id`] returned, under `join_key`.
pub(crate) fn key_bit(join_key: &str, carrier_id: &str) -> u8 {
    let [first, second] = DerivedKey::both(carrier_id);
    if first.is_some_and(|key| key.matches(join_key)) {
        FIRST_KEY
    } else if second.is_some_and(|key| key.matches(join_key)) {
        SECOND_KEY
    } else {
        WRITTEN_KEY
    }
}

/// Appends the body of a record of `link`, with `written_key` unless the
/// key is derived. The link's carrier id must be normalized.
pub(crate) fn write_body<L: LinkData>(out: &mut Vec<u8>, written_key: Option<&str>, link: &Link<L>) {
    if let Some(key) = written_key {
        push_length(out, key.len());
    }
    push_length(out, link.carrier_id.len());
    push_signed(out, link.sent_at);
    if let Some(key) = written_key {
        out.extend_from_slice(key.as_bytes());
    }
    out.extend_from_slice(link.carrier_id.as_bytes());
    write_packed(&link.sent_event_id, out);
    link.data.write_to(out);
}

/// Returns the hash of a join key, as the link table hashes keys. It hashes
/// the first two bytes (`n:` or `t:` in a carrier key) apart from the rest,
/// so a key derived from a carrier id hashes alike without being built.
pub(crate) fn key_hash(hasher: &DefaultHashBuilder, join_key: &str) -> u64 {
    let split = join_key.len().min(2);
    hash_parts(hasher, &join_key.as_bytes()[..split], &join_key.as_bytes()[split..])
}

fn hash_parts(hasher: &DefaultHashBuilder, prefix: &[u8], rest: &[u8]) -> u64 {
    let mut state = hasher.build_hasher();
    state.write(prefix);
    state.write(rest);
    state.finish()
}

/// A join key that a carrier id determines, as `carrier_id_keys` returns it
/// for the id, but not built as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DerivedKey<'a> {
    /// `n:` and the number in lower-case hexadecimal.
    Number(u128),
    /// `t:` and the id, for an id that is not a number.
    Text(&'a str),
}

impl<'a> DerivedKey<'a> {
    /// Returns the first and second key of `carrier_id`, an id that
    /// [`normalize_carrier_id`] returned.
    pub(crate) fn both(carrier_id: &'a str) -> [Option<Self>; 2] {
        if carrier_id.is_empty() {
            return [None, None];
        }
        match number_keys(carrier_id) {
            Some((first, second)) => [Some(DerivedKey::Number(first)), second.map(DerivedKey::Number)],
            // The text key is the id in lower case, which it already is.
            None => [Some(DerivedKey::Text(carrier_id)), None],
        }
    }

    /// Returns the second key of `carrier_id` when `second`, else its first.
    pub(crate) fn of(carrier_id: &'a str, second: bool) -> Option<Self> {
        let [first, other] = Self::both(carrier_id);
        if second {
            other
        } else {
            first
        }
    }

    /// Returns true when `join_key` is this key's text.
    pub(crate) fn matches(self, join_key: &str) -> bool {
        match self {
            DerivedKey::Number(number) => join_key.strip_prefix("n:").is_some_and(|hex| is_lower_hex_of(hex, number)),
            DerivedKey::Text(text) => join_key.strip_prefix("t:") == Some(text),
        }
    }

    /// Returns the hash that [`key_hash`] returns for this key's text.
    pub(crate) fn hash(self, hasher: &DefaultHashBuilder) -> u64 {
        match self {
            DerivedKey::Number(number) => {
                let (digits, start) = lower_hex(number);
                hash_parts(hasher, b"n:", &digits[start..])
            }
            DerivedKey::Text(text) => hash_parts(hasher, b"t:", text.as_bytes()),
        }
    }

    fn to_key(self) -> String {
        match self {
            DerivedKey::Number(number) => format!("n:{number:x}"),
            DerivedKey::Text(text) => format!("t:{text}"),
        }
    }
}

/// Returns `number` in lower-case hexadecimal without leading zeros, as
/// `format!("{number:x}")` writes it: the digits from the returned start.
fn lower_hex(number: u128) -> ([u8; 32], usize) {
    let mut digits = [0u8; 32];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[(rest & 0xf) as usize];
        rest >>= 4;
        if rest == 0 {
            return (digits, start);
        }
    }
}

/// Returns true when `hex` is `number` as `format!("{number:x}")` writes
/// it: lower case, without leading zeros.
fn is_lower_hex_of(hex: &str, number: u128) -> bool {
    let (digits, start) = lower_hex(number);
    hex.as_bytes() == &digits[start..]
}

/// The source of a link's join key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeySource<'a> {
    First,
    Second,
    Written(&'a str),
}

/// A link as the join stores it, read from its record.
pub struct StoredLink<'a, L> {
    key: KeySource<'a>,
    carrier_id: &'a str,
    sent_at: i64,
    /// The packed sent event id, then the data's bytes.
    tail: &'a [u8],
    data: PhantomData<fn() -> L>,
}

impl<L> Clone for StoredLink<'_, L> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<L> Copy for StoredLink<'_, L> {}

impl<'a, L> StoredLink<'a, L> {
    /// Reads the link of a record with `state` and `body`: the one under the
    /// second key when `second`, else the one under the first or written
    /// key.
    pub(crate) fn read(state: u8, body: &'a [u8], second: bool) -> Self {
        let mut rest = body;
        let written_key_length = (state & WRITTEN_KEY != 0).then(|| read_length(&mut rest));
        let id_length = read_length(&mut rest);
        let sent_at = read_signed(&mut rest);
        let key = match written_key_length {
            Some(length) => KeySource::Written(as_str(take(&mut rest, length))),
            None if second => KeySource::Second,
            None => KeySource::First,
        };
        let carrier_id = as_str(take(&mut rest, id_length));
        StoredLink { key, carrier_id, sent_at, tail: rest, data: PhantomData }
    }

    /// Returns the key the link is stored under. It is built from the
    /// carrier id when the id determines it.
    pub fn join_key(&self) -> Cow<'a, str> {
        match self.key {
            KeySource::Written(key) => Cow::Borrowed(key),
            KeySource::First | KeySource::Second => Cow::Owned(self.derived_key().to_key()),
        }
    }

    /// Returns the carrier id in ASCII lower case, without whitespace around
    /// it. It has the same carrier keys as the id the sent event wrote.
    pub fn carrier_id(&self) -> &'a str {
        self.carrier_id
    }

    /// Returns the carrier id's [`carrier_spelling`](crate::carrier_spelling).
    pub fn spelling(&self) -> &'a str {
        spelling_of_normalized(self.carrier_id)
    }

    /// Returns the sent event's time, in ms since the epoch.
    pub fn sent_at(&self) -> i64 {
        self.sent_at
    }

    /// Returns the sent event's id. It is stored packed, so most ids are
    /// copied out of the record.
    pub fn sent_event_id(&self) -> Cow<'a, str> {
        let mut rest = self.tail;
        read_packed(&mut rest)
    }

    /// Returns true when the link is stored under `join_key`.
    pub(crate) fn has_key(&self, join_key: &str) -> bool {
        match self.key {
            KeySource::Written(key) => key == join_key,
            KeySource::First | KeySource::Second => self.derived_key().matches(join_key),
        }
    }

    /// Returns the hash of the link's join key, as [`key_hash`] returns it.
    pub(crate) fn key_hash(&self, hasher: &DefaultHashBuilder) -> u64 {
        match self.key {
            KeySource::Written(key) => key_hash(hasher, key),
            KeySource::First | KeySource::Second => self.derived_key().hash(hasher),
        }
    }

    fn derived_key(&self) -> DerivedKey<'a> {
        DerivedKey::of(self.carrier_id, self.key == KeySource::Second)
            .expect("a record stored under a derived key has it")
    }
}

impl<L: LinkData> StoredLink<'_, L> {
    /// Returns the caller's data, read from its bytes.
    pub fn data(&self) -> L {
        let mut rest = self.tail;
        skip_packed(&mut rest);
        L::read_from(&mut rest)
    }
}

impl<L: LinkData + fmt::Debug> fmt::Debug for StoredLink<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredLink")
            .field("join_key", &self.join_key())
            .field("carrier_id", &self.carrier_id)
            .field("sent_at", &self.sent_at)
            .field("sent_event_id", &self.sent_event_id())
            .field("data", &self.data())
            .finish()
    }
}

/// Returns stored bytes as the string they were copied from.
fn as_str(bytes: &[u8]) -> &str {
    // The written key and the carrier id were copied whole from a `str`
    // (the id with only its ASCII letters changed), so they are valid UTF-8.
    std::str::from_utf8(bytes).expect("a stored key or carrier id is a whole string")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(carrier_id: &str) -> String {
        let mut id = carrier_id.to_owned();
        normalize_carrier_id(&mut id);
        id
    }

    /// Returns the state and body of a record of `link` under `join_key`.
    fn record<L: LinkData>(join_key: &str, mut link: Link<L>) -> (u8, Vec<u8>) {
        normalize_carrier_id(&mut link.carrier_id);
        let key = key_bit(join_key, &link.carrier_id);
        let mut body = Vec::new();
        write_body(&mut body, (key == WRITTEN_KEY).then_some(join_key), &link);
        (key, body)
    }

    fn read<L>((state, body): &(u8, Vec<u8>)) -> StoredLink<'_, L> {
        StoredLink::read(*state, body, *state == SECOND_KEY)
    }

    #[test]
    fn normalize_lowercases_and_trims() {
        assert_eq!(normalized(" 00004F2A\t"), "00004f2a");
        assert_eq!(normalized("Carrier-5C21D0"), "carrier-5c21d0");
        assert_eq!(normalized(" \n "), "");
        assert_eq!(normalized("A B"), "a b", "inner whitespace stays");
        assert_eq!(normalized("Ünï 4F"), "Ünï 4f", "only ASCII letters change");
    }

    #[test]
    fn stored_link_keeps_its_parts() {
        let record = record("n:4f2a", Link::new(" 00004F2A ", 7, "EV01-9", (String::from("SM-1"), 3u16)));
        let link = read::<(String, u16)>(&record);

        assert_eq!(link.join_key(), "n:4f2a");
        assert_eq!(link.carrier_id(), "00004f2a");
        assert_eq!(link.spelling(), "4f2a");
        assert_eq!(link.sent_event_id(), "EV01-9");
        assert_eq!(link.sent_at(), 7);
        assert_eq!(link.data(), (String::from("SM-1"), 3));
    }

    #[test]
    fn negative_time_and_empty_parts_round_trip() {
        let record = record("", Link::new("", i64::MIN, "", ()));
        let link = read::<()>(&record);

        assert_eq!(link.join_key(), "");
        assert_eq!(link.carrier_id(), "");
        assert_eq!(link.sent_at(), i64::MIN);
        assert_eq!(link.sent_event_id(), "");
    }

    #[test]
    fn second_key_is_derived() {
        // The decimal 7731 gives the first key, n:1e33, and its reading as
        // hexadecimal, 0x7731, the second, n:7731.
        let first_record = record("n:1e33", Link::new("7731", 1, "EV1", ()));
        let second_record = record("n:7731", Link::new("7731", 1, "EV1", ()));
        let first = read::<()>(&first_record);
        let second = read::<()>(&second_record);

        assert_eq!(first_record.1, second_record.1, "neither body holds its key");
        assert_eq!(first.key, KeySource::First);
        assert_eq!(second.key, KeySource::Second);
        assert_eq!(first.join_key(), "n:1e33");
        assert_eq!(second.join_key(), "n:7731");
        assert!(first.has_key("n:1e33"));
        assert!(!first.has_key("n:7731"));
        assert!(second.has_key("n:7731"));
        assert!(!second.has_key("n:1e33"));
    }

    #[test]
    fn derived_key_needs_exact_form() {
        let record = record("n:4f2a", Link::new("4F2A", 1, "EV1", ()));
        let link = read::<()>(&record);

        assert!(link.has_key("n:4f2a"));
        for other in ["n:4F2A", "n:04f2a", "n:+4f2a", "t:4f2a", "4f2a", "n:", ""] {
            assert!(!link.has_key(other), "{other:?}");
        }
    }

    #[test]
    fn text_key_is_derived() {
        let record = record("t:carrier3-0a1b", Link::new("Carrier3-0A1B", 1, "EV1", ()));
        let link = read::<()>(&record);

        assert_eq!(link.key, KeySource::First);
        assert_eq!(link.join_key(), "t:carrier3-0a1b");
        assert!(link.has_key("t:carrier3-0a1b"));
        assert!(!link.has_key("t:carrier3-0a1c"));
    }

    #[test]
    fn foreign_keys_are_written() {
        // A key a record may carry that the id does not determine, even an
        // empty one, is kept as it is.
        for join_key in ["", "n:0", "t:4f2a", "other", "n:4f2a0"] {
            let record = record(join_key, Link::new("4F2A", 1, "EV1", ()));
            let link = read::<()>(&record);

            assert_eq!(link.key, KeySource::Written(join_key));
            assert_eq!(link.join_key(), join_key);
            assert!(link.has_key(join_key), "{join_key:?}");
        }
    }

    #[test]
    fn long_parts_round_trip() {
        let join_key = format!("t:{}", "k".repeat(300));
        let event_id = "e".repeat(20_000);
        let data = "ü".repeat(5_000);

        let record = record(&join_key, Link::new(&"X".repeat(200), 1, &event_id, data.clone()));
        let link = read::<String>(&record);

        assert_eq!(link.join_key(), join_key);
        assert_eq!(link.carrier_id(), "x".repeat(200));
        assert_eq!(link.sent_event_id(), event_id);
        assert_eq!(link.data(), data);
    }

    #[test]
    fn derived_hash_equals_key_hash() {
        let hasher = DefaultHashBuilder::default();
        for carrier_id in ["4f2a", "7731", "0", "carrier3-0a1b", &"9".repeat(39), &format!("a{}", "0".repeat(32))] {
            for key in DerivedKey::both(carrier_id).into_iter().flatten() {
                let text = key.to_key();

                assert_eq!(key.hash(&hasher), key_hash(&hasher, &text), "{text}");
                assert!(key.matches(&text), "{text}");
            }
        }
    }

    #[test]
    fn derived_keys_follow_carrier_id_keys() {
        use crate::carrier_id::carrier_id_keys;

        for carrier_id in ["4f2a", "7731", "0007", "12345678", "carrier3-0a1b", "x-1", &"1".repeat(39)] {
            let expected: Vec<String> = carrier_id_keys(carrier_id).iter().map(ToString::to_string).collect();
            let derived: Vec<String> =
                DerivedKey::both(carrier_id).into_iter().flatten().map(DerivedKey::to_key).collect();

            assert_eq!(derived, expected, "{carrier_id}");
        }
        assert_eq!(DerivedKey::both(""), [None, None]);
    }
}
