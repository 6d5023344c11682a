//! The links of a carrier join, stored compactly and found by join key.
//!
//! A partition can hold a link per live sent message, so a link keeps its
//! strings in one allocation: the join key, the carrier id in lower case
//! without whitespace around it, and the sent event id. The link's spelling
//! is a part of that carrier id, so it is not stored apart. The links sit in
//! one `Vec`, and a hash table of their positions, hashed by join key, finds
//! the links of a key. Most keys have one link, so no key has a list of its
//! own.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::join::{spelling_of_normalized, Link};

/// A link as the join stores it.
#[derive(Debug, Clone)]
pub struct StoredLink<L> {
    /// The lengths of the join key and of the carrier id, each as an
    /// unsigned LEB128 number, then the join key, the carrier id and the
    /// sent event id.
    text: Box<[u8]>,
    sent_at: i64,
    data: L,
}

impl<L> StoredLink<L> {
    pub(crate) fn new(join_key: &str, link: Link<L>) -> Self {
        let carrier_id = link.carrier_id.trim_matches(|c: char| c.is_ascii_whitespace());
        let event_id = &link.sent_event_id;
        let mut text = Vec::with_capacity(2 * 5 + join_key.len() + carrier_id.len() + event_id.len());
        push_length(&mut text, join_key.len());
        push_length(&mut text, carrier_id.len());
        text.extend_from_slice(join_key.as_bytes());
        text.extend(carrier_id.bytes().map(|byte| byte.to_ascii_lowercase()));
        text.extend_from_slice(event_id.as_bytes());
        StoredLink { text: text.into_boxed_slice(), sent_at: link.sent_at, data: link.data }
    }

    /// Returns the join key, the carrier id and the sent event id as bytes.
    fn parts(&self) -> (&[u8], &[u8], &[u8]) {
        let mut at = 0;
        let key_len = read_length(&self.text, &mut at);
        let id_len = read_length(&self.text, &mut at);
        let (key, rest) = self.text[at..].split_at(key_len);
        let (id, event_id) = rest.split_at(id_len);
        (key, id, event_id)
    }

    /// Returns the key the link is stored under.
    pub fn join_key(&self) -> &str {
        as_str(self.parts().0)
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
        self.parts().0 == join_key.as_bytes()
    }
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
        debug_assert_eq!(self.links[position].parts().0, link.parts().0, "a replacement keeps the join key");
        self.links[position] = link;
    }

    /// Adds a link. The caller checks that no link of the same join key and
    /// spelling is stored.
    pub(crate) fn insert(&mut self, link: StoredLink<L>) {
        let LinkTable { index, links, hasher } = self;
        let hash = hasher.hash_one(link.parts().0);
        let position = u32::try_from(links.len()).expect("a partition holds fewer than 2^32 carrier links");
        links.push(link);
        index.insert_unique(hash, position, |&position| hasher.hash_one(links[position as usize].parts().0));
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
        let hash = hasher.hash_one(links[position].parts().0);
        if let Ok(entry) = index.find_entry(hash, |&other| other as usize == position) {
            entry.remove();
        }
        let removed = links.swap_remove(position);

        let moved_from = links.len();
        if position < moved_from {
            let hash = hasher.hash_one(links[position].parts().0);
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
