//! The links of a carrier join, stored compactly and found by join key.
//!
//! A partition can hold a link per live sent message, so a link keeps its
//! strings in one allocation: the join key, the carrier id in lower case
//! without whitespace around it, and the sent event id. Most links are
//! stored under their carrier id's first key ([`receipt_join_key`]), so
//! that key is derived from the carrier id and not stored. The link's
//! spelling is a part of the carrier id, so it is not stored either. The
//! links sit in one `Vec`, and a hash table of their positions, hashed by
//! join key, finds the links of a key. Most keys have one link, so no key
//! has a list of its own.

use std::borrow::Cow;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::carrier_id::{carrier_id_keys, CarrierKey};
use crate::join::{receipt_join_key, spelling_of_normalized, Link};

/// A link as the join stores it.
#[derive(Debug, Clone)]
pub struct StoredLink<L> {
    /// Two unsigned LEB128 numbers, then the strings. The first number is 0
    /// when the join key is the carrier id's first key, else the join key's
    /// length plus one. The second is the carrier id's length. The strings
    /// are the join key unless it is derived, the carrier id and the sent
    /// event id.
    text: Box<[u8]>,
    sent_at: i64,
    data: L,
}

impl<L> StoredLink<L> {
    pub(crate) fn new(join_key: &str, link: Link<L>) -> Self {
        let mut lower_case = link.carrier_id;
        lower_case.make_ascii_lowercase();
        let carrier_id = lower_case.trim_matches(|c: char| c.is_ascii_whitespace());
        let derived = is_first_key(join_key, carrier_id);
        let written_key = if derived { "" } else { join_key };
        let key_header = if derived { 0 } else { join_key.len() + 1 };
        let event_id = &link.sent_event_id;

        let size = length_size(key_header)
            + length_size(carrier_id.len())
            + written_key.len()
            + carrier_id.len()
            + event_id.len();
        let mut text = Vec::with_capacity(size);
        push_length(&mut text, key_header);
        push_length(&mut text, carrier_id.len());
        text.extend_from_slice(written_key.as_bytes());
        text.extend_from_slice(carrier_id.as_bytes());
        text.extend_from_slice(event_id.as_bytes());
        debug_assert_eq!(text.len(), size, "the allocation is exact, so no shrinking copy follows");
        StoredLink { text: text.into_boxed_slice(), sent_at: link.sent_at, data: link.data }
    }

    /// Returns the written join key (`None` when it is derived), the carrier
    /// id and the sent event id as bytes.
    fn parts(&self) -> (Option<&[u8]>, &[u8], &[u8]) {
        let mut at = 0;
        let key_header = read_length(&self.text, &mut at);
        let id_len = read_length(&self.text, &mut at);
        let (key, rest) = self.text[at..].split_at(key_header.saturating_sub(1));
        let (id, event_id) = rest.split_at(id_len);
        (Some(key).filter(|_| key_header > 0), id, event_id)
    }

    /// Returns the key the link is stored under. It is built from the
    /// carrier id when it is that id's first key.
    pub fn join_key(&self) -> Cow<'_, str> {
        match self.parts() {
            (Some(key), _, _) => Cow::Borrowed(as_str(key)),
            (None, id, _) => Cow::Owned(receipt_join_key(as_str(id)).expect("a derived join key exists")),
        }
    }

    /// Returns the carrier id in ASCII lower case, without whitespace around
    /// it. It has the same carrier keys as the id the sent event wrote.
    pub fn carrier_id(&self) -> &str {
        as_str(self.parts().1)
    }

    /// Returns the carrier id's [`carrier_spelling`](crate::carrier_spelling).
    pub fn spelling(&self) -> &str {
        spelling_of_normalized(self.carrier_id())
    }

    /// Returns the sent event's time, in ms since the epoch.
    pub fn sent_at(&self) -> i64 {
        self.sent_at
    }

    pub fn sent_event_id(&self) -> &str {
        as_str(self.parts().2)
    }

    pub fn data(&self) -> &L {
        &self.data
    }

    fn has_key(&self, join_key: &str) -> bool {
        match self.parts() {
            (Some(key), _, _) => key == join_key.as_bytes(),
            (None, id, _) => is_first_key(join_key, as_str(id)),
        }
    }

    /// Returns the hash of the join key, as [`LinkTable`] hashes keys.
    fn key_hash(&self, hasher: &DefaultHashBuilder) -> u64 {
        hasher.hash_one(self.join_key().as_bytes())
    }
}

/// Returns true when `join_key` is the first carrier key of `carrier_id`,
/// an id in lower case without whitespace around it: the key that
/// [`receipt_join_key`] returns for it. Allocates only for an id whose
/// first key is text and equals `join_key`.
fn is_first_key(join_key: &str, carrier_id: &str) -> bool {
    if let Some(text) = join_key.strip_prefix("t:") {
        // A text key is the id in lower case, for an id with no number.
        return text == carrier_id && matches!(carrier_id_keys(carrier_id).iter().next(), Some(CarrierKey::Text(_)));
    }
    let Some(hex) = join_key.strip_prefix("n:") else { return false };
    // carrier_id_keys allocates only for a text key.
    match carrier_id_keys(carrier_id).iter().next() {
        Some(CarrierKey::Number(number)) => is_lower_hex_of(hex, *number),
        _ => false,
    }
}

/// Returns true when `hex` is `number` as `format!("{number:x}")` writes
/// it: lower case, without leading zeros.
fn is_lower_hex_of(hex: &str, number: u128) -> bool {
    let mut digits = [0u8; 32];
    let mut start = digits.len();
    let mut rest = number;
    loop {
        start -= 1;
        digits[start] = b"0123456789abcdef"[(rest & 0xf) as usize];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    hex.as_bytes() == &digits[start..]
}

/// Returns how many bytes [`push_length`] writes for `length`.
fn length_size(length: usize) -> usize {
    let bits = usize::BITS - length.leading_zeros();
    (bits as usize).div_ceil(7).max(1)
}

/// Appends `length` as an unsigned LEB128 number: seven bits per byte, low
/// bits first, the top bit set on every byte but the last.
fn push_length(text: &mut Vec<u8>, mut length: usize) {
    loop {
        let low = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            text.push(low);
            return;
        }
        text.push(low | 0x80);
    }
}

/// Reads an unsigned LEB128 number that [`push_length`] wrote at `*at`, and
/// moves `*at` past it.
fn read_length(text: &[u8], at: &mut usize) -> usize {
    let mut length = 0;
    let mut shift = 0;
    loop {
        let byte = text[*at];
        *at += 1;
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return length;
        }
        shift += 7;
    }
}

/// Returns stored bytes as the string they were copied from.
fn as_str(bytes: &[u8]) -> &str {
    // Each part was copied whole from a `str` (the carrier id with only its
    // ASCII letters changed), so it is valid UTF-8.
    std::str::from_utf8(bytes).expect("a stored part is a whole string")
}

/// The links of one partition, each under its join key.
#[derive(Debug, Clone)]
pub(crate) struct LinkTable<L> {
    /// Positions in `links`, hashed by the join key of the link there.
    index: HashTable<u32>,
    links: Vec<StoredLink<L>>,
    hasher: DefaultHashBuilder,
}

impl<L> Default for LinkTable<L> {
    fn default() -> Self {
        LinkTable { index: HashTable::new(), links: Vec::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl<L> LinkTable<L> {
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, StoredLink<L>> {
        self.links.iter()
    }

    /// Returns the links stored under `join_key`, in no particular order.
    pub(crate) fn under<'a>(&'a self, join_key: &'a str) -> impl Iterator<Item = &'a StoredLink<L>> + 'a {
        let hash = self.hasher.hash_one(join_key.as_bytes());
        self.index
            .iter_hash(hash)
            .map(|&position| &self.links[position as usize])
            .filter(move |link| link.has_key(join_key))
    }

    /// Returns the position of the link under `join_key` with `spelling`.
    pub(crate) fn position(&self, join_key: &str, spelling: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(join_key.as_bytes());
        self.index.iter_hash(hash).map(|&position| position as usize).find(|&position| {
            let link = &self.links[position];
            link.has_key(join_key) && link.spelling() == spelling
        })
    }

    pub(crate) fn get(&self, position: usize) -> &StoredLink<L> {
        &self.links[position]
    }

    /// Replaces the link at `position` with one of the same join key.
    pub(crate) fn replace(&mut self, position: usize, link: StoredLink<L>) {
        debug_assert_eq!(self.links[position].join_key(), link.join_key(), "a replacement keeps the join key");
        self.links[position] = link;
    }

    /// Adds a link. The caller checks that no link of the same join key and
    /// spelling is stored.
    pub(crate) fn insert(&mut self, link: StoredLink<L>) {
        let LinkTable { index, links, hasher } = self;
        let hash = link.key_hash(hasher);
        let position = u32::try_from(links.len()).expect("a partition holds fewer than 2^32 carrier links");
        links.push(link);
        index.insert_unique(hash, position, |&position| links[position as usize].key_hash(hasher));
    }

    /// Removes the link under `join_key` with `spelling`, and returns it.
    pub(crate) fn remove(&mut self, join_key: &str, spelling: &str) -> Option<StoredLink<L>> {
        let position = self.position(join_key, spelling)?;
        Some(self.remove_at(position))
    }

    /// Removes the links for which `keep` returns false, and returns them.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&StoredLink<L>) -> bool) -> Vec<StoredLink<L>> {
        let mut removed = Vec::new();
        let mut position = 0;
        while position < self.links.len() {
            if keep(&self.links[position]) {
                position += 1;
            } else {
                // The last link moves to `position`, so it is checked next.
                removed.push(self.remove_at(position));
            }
        }
        removed
    }

    /// Removes the link at `position`, moving the last link into its place.
    fn remove_at(&mut self, position: usize) -> StoredLink<L> {
        let LinkTable { index, links, hasher } = self;
        let hash = links[position].key_hash(hasher);
        if let Ok(entry) = index.find_entry(hash, |&other| other as usize == position) {
            entry.remove();
        }
        let removed = links.swap_remove(position);

        let moved_from = links.len();
        if position < moved_from {
            let hash = links[position].key_hash(hasher);
            if let Some(entry) = index.find_mut(hash, |&other| other as usize == moved_from) {
                // Below `moved_from`, which fits in u32.
                *entry = position as u32;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(links: &[(&str, &str)]) -> LinkTable<usize> {
        let mut table = LinkTable::default();
        for (number, (join_key, carrier_id)) in links.iter().enumerate() {
            table.insert(StoredLink::new(join_key, Link::new(carrier_id, 1, "sent-1", number)));
        }
        table
    }

    fn data_under(table: &LinkTable<usize>, join_key: &str) -> Vec<usize> {
        let mut data: Vec<usize> = table.under(join_key).map(|link| *link.data()).collect();
        data.sort();
        data
    }

    #[test]
    fn stored_link_keeps_its_parts() {
        let link = StoredLink::new("n:4f2a", Link::new(" 00004F2A ", 7, "EV01-9", ()));

        assert_eq!(link.join_key(), "n:4f2a");
        assert_eq!(link.carrier_id(), "00004f2a");
        assert_eq!(link.spelling(), "4f2a");
        assert_eq!(link.sent_event_id(), "EV01-9");
        assert_eq!(link.sent_at(), 7);
    }

    #[test]
    fn second_key_is_written() {
        // The decimal 7731 gives the first key, n:1e33, and its reading as
        // hexadecimal, 0x7731, the second, n:7731.
        let first = StoredLink::new("n:1e33", Link::new("7731", 1, "EV1", ()));
        let second = StoredLink::new("n:7731", Link::new("7731", 1, "EV1", ()));

        assert!(first.parts().0.is_none(), "the first key is derived");
        assert_eq!(second.parts().0, Some(&b"n:7731"[..]));
        assert_eq!(first.join_key(), "n:1e33");
        assert_eq!(second.join_key(), "n:7731");
        assert!(first.has_key("n:1e33"));
        assert!(!first.has_key("n:7731"));
        assert!(second.has_key("n:7731"));
        assert!(!second.has_key("n:1e33"));
    }

    #[test]
    fn derived_key_needs_exact_form() {
        let link = StoredLink::new("n:4f2a", Link::new("4F2A", 1, "EV1", ()));

        assert!(link.has_key("n:4f2a"));
        for other in ["n:4F2A", "n:04f2a", "n:+4f2a", "t:4f2a", "4f2a", "n:", ""] {
            assert!(!link.has_key(other), "{other:?}");
        }
    }

    #[test]
    fn text_key_is_derived() {
        let link = StoredLink::new("t:carrier3-0a1b", Link::new("Carrier3-0A1B", 1, "EV1", ()));

        assert!(link.parts().0.is_none());
        assert_eq!(link.join_key(), "t:carrier3-0a1b");
        assert!(link.has_key("t:carrier3-0a1b"));
        assert!(!link.has_key("t:carrier3-0a1c"));
    }

    #[test]
    fn foreign_keys_are_written() {
        // A key a record may carry that is not the id's first key, even an
        // empty one, is kept as it is.
        for join_key in ["", "n:0", "t:4f2a", "other"] {
            let link = StoredLink::new(join_key, Link::new("4F2A", 1, "EV1", ()));

            assert_eq!(link.join_key(), join_key);
            assert!(link.has_key(join_key), "{join_key:?}");
        }
    }

    #[test]
    fn length_size_matches_written_bytes() {
        for length in [0, 1, 127, 128, 16_383, 16_384, usize::MAX] {
            let mut text = Vec::new();
            push_length(&mut text, length);

            assert_eq!(length_size(length), text.len(), "{length}");
            assert_eq!(read_length(&text, &mut 0), length);
        }
    }

    #[test]
    fn long_parts_round_trip() {
        let join_key = format!("t:{}", "k".repeat(300));
        let event_id = "e".repeat(20_000);

        let link = StoredLink::new(&join_key, Link::new(&"X".repeat(200), 1, &event_id, ()));

        assert_eq!(link.join_key(), join_key);
        assert_eq!(link.carrier_id(), "x".repeat(200));
        assert_eq!(link.sent_event_id(), event_id);
    }

    #[test]
    fn under_returns_links_of_key() {
        let table = table(&[("n:e", "E"), ("n:e", "14"), ("n:f", "F")]);

        assert_eq!(data_under(&table, "n:e"), [0, 1]);
        assert_eq!(data_under(&table, "n:f"), [2]);
        assert!(data_under(&table, "n:10").is_empty());
    }

    #[test]
    fn remove_keeps_moved_link_findable() {
        let mut table = table(&[("n:a", "A"), ("n:b", "B"), ("n:c", "C")]);

        let removed = table.remove("n:a", "a").map(|link| *link.data());

        assert_eq!(removed, Some(0));
        assert_eq!(table.len(), 2);
        assert!(data_under(&table, "n:a").is_empty());
        assert_eq!(data_under(&table, "n:b"), [1]);
        assert_eq!(data_under(&table, "n:c"), [2], "the last link moved into the freed position");
        assert_eq!(table.position("n:c", "c"), Some(0));
    }

    #[test]
    fn remove_missing_link_is_none() {
        let mut table = table(&[("n:a", "A")]);

        assert!(table.remove("n:a", "b").is_none());
        assert!(table.remove("n:b", "a").is_none());
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn retain_removes_rejected_links() {
        let mut table = table(&[("n:a", "A"), ("n:b", "B"), ("n:c", "C"), ("n:d", "D")]);

        let removed_links = table.retain(|link| link.data() % 2 == 1);
        let mut removed: Vec<usize> = removed_links.iter().map(|link| *link.data()).collect();
        removed.sort();

        assert_eq!(removed, [0, 2]);
        assert_eq!(data_under(&table, "n:b"), [1]);
        assert_eq!(data_under(&table, "n:d"), [3]);
        assert!(data_under(&table, "n:a").is_empty());
        assert!(data_under(&table, "n:c").is_empty());
    }
}
