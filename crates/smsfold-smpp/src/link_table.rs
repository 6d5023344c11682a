//! The links of a carrier join, stored compactly and found by join key.
//!
//! A partition can hold a link per live sent message, so a link costs no
//! allocation of its own: its record ([`crate::link_record`]) sits in a
//! byte arena of fixed-size chunks ([`crate::link_arena`]). A hash table of
//! entries that point at the records, hashed by join key, finds the links
//! of a key. Most keys have one link, so no key has a list of its own. The
//! hash table is split into shards by hash, so growing it copies one shard
//! at a time, and only that shard's old and new table are live at once.
//!
//! An entry is a record's location and a bit that marks which of the
//! record's keys it is for: the carrier id's second key, or else the first
//! or written key. So one record can serve both keys of an all-digit
//! carrier id.

use std::fmt;
use std::marker::PhantomData;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::join::Link;
use crate::link_arena::{Arena, Location};
use crate::link_data::LinkData;
use crate::link_record::{key_bit, key_hash, write_body, DerivedKey, StoredLink, FIRST_KEY, SECOND_KEY, WRITTEN_KEY};

/// The number of shards of the index, a power of two.
const INDEX_SHARDS: usize = 64;

/// Returns the entry for the record at `location` under its second key
/// when `second`, else under its first or written key.
fn entry(location: Location, second: bool) -> u32 {
    (location.to_bits() << 1) | u32::from(second)
}

fn entry_location(entry: u32) -> Location {
    Location::from_bits(entry >> 1)
}

fn is_second(entry: u32) -> bool {
    entry & 1 == 1
}

/// Returns the shard of a key's hash. hashbrown places an entry by the low
/// bits of the hash and tags it with the top seven, so the shard takes bits
/// that neither uses in a shard of fewer than 2^32 buckets.
fn shard_of(hash: u64) -> usize {
    (hash >> 32) as usize % INDEX_SHARDS
}

/// Returns the link that `entry` stands for.
fn link_at<L>(arena: &Arena, entry: u32) -> StoredLink<'_, L> {
    let (state, body) = arena.record(entry_location(entry));
    StoredLink::read(state, body, is_second(entry))
}

/// Returns the hash of the join key that `entry` stands for.
fn entry_hash(arena: &Arena, hasher: &DefaultHashBuilder, entry: u32) -> u64 {
    link_at::<()>(arena, entry).key_hash(hasher)
}

/// The links of one partition, each under its join key.
pub(crate) struct LinkTable<L> {
    /// Entries, hashed by join key, in shards chosen by [`shard_of`].
    index: Box<[HashTable<u32>]>,
    arena: Arena,
    hasher: DefaultHashBuilder,
    /// The number of links, which is the number of entries.
    len: usize,
    /// A buffer reused to build a record's body.
    body: Vec<u8>,
    data: PhantomData<fn() -> L>,
}

impl<L> Default for LinkTable<L> {
    fn default() -> Self {
        LinkTable {
            index: (0..INDEX_SHARDS).map(|_| HashTable::new()).collect(),
            arena: Arena::default(),
            hasher: DefaultHashBuilder::default(),
            len: 0,
            body: Vec::new(),
            data: PhantomData,
        }
    }
}

/// Shows sizes only, because a table can hold millions of links.
impl<L> fmt::Debug for LinkTable<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkTable")
            .field("links", &self.len)
            .field("record_bytes", &self.arena.live_bytes())
            .field("arena_bytes", &self.arena.capacity_bytes())
            .finish_non_exhaustive()
    }
}

impl<L> LinkTable<L> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns every link, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = StoredLink<'_, L>> + '_ {
        self.entries().map(|(_, link)| link)
    }

    /// Returns every link with its entry.
    fn entries(&self) -> impl Iterator<Item = (u32, StoredLink<'_, L>)> + '_ {
        self.arena.records().flat_map(|(location, state, body)| {
            let first = (state & (FIRST_KEY | WRITTEN_KEY) != 0)
                .then(|| (entry(location, false), StoredLink::read(state, body, false)));
            let second =
                (state & SECOND_KEY != 0).then(|| (entry(location, true), StoredLink::read(state, body, true)));
            first.into_iter().chain(second)
        })
    }

    /// Returns the links stored under `join_key`, in no particular order.
    pub(crate) fn under<'a>(&'a self, join_key: &'a str) -> impl Iterator<Item = StoredLink<'a, L>> + 'a {
        let hash = key_hash(&self.hasher, join_key);
        self.index[shard_of(hash)]
            .iter_hash(hash)
            .map(|&entry| link_at(&self.arena, entry))
            .filter(move |link| link.has_key(join_key))
    }

    /// Returns the link under `join_key` with `spelling`.
    pub(crate) fn find(&self, join_key: &str, spelling: &str) -> Option<StoredLink<'_, L>> {
        let (_, entry) = self.find_entry(join_key, spelling)?;
        Some(link_at(&self.arena, entry))
    }

    /// Returns the hash of `join_key` and the entry of the link under it with
    /// `spelling`.
    fn find_entry(&self, join_key: &str, spelling: &str) -> Option<(u64, u32)> {
        let hash = key_hash(&self.hasher, join_key);
        let entry = self.index[shard_of(hash)].iter_hash(hash).copied().find(|&entry| {
            let link = link_at::<L>(&self.arena, entry);
            link.has_key(join_key) && link.spelling() == spelling
        })?;
        Some((hash, entry))
    }

    /// Removes the link under `join_key` with `spelling`. Returns false when
    /// there is none.
    pub(crate) fn remove(&mut self, join_key: &str, spelling: &str) -> bool {
        let Some((hash, entry)) = self.find_entry(join_key, spelling) else { return false };
        self.remove_entry(hash, entry);
        self.tidy();
        true
    }

    /// Removes the links for which `keep` returns false, and returns their
    /// join keys and spellings. Tests use it to remove links by other rules
    /// than age.
    #[cfg(test)]
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&StoredLink<'_, L>) -> bool) -> Vec<(String, String)> {
        let mut removed = Vec::new();
        let mut rejected = Vec::new();
        for (entry, link) in self.entries() {
            if !keep(&link) {
                removed.push((link.join_key().into_owned(), link.spelling().to_owned()));
                rejected.push((link.key_hash(&self.hasher), entry));
            }
        }
        // Records move only in `tidy`, so every rejected entry is still
        // where it was found.
        for (hash, entry) in rejected {
            self.remove_entry(hash, entry);
        }
        self.tidy();
        removed
    }

    /// Removes the links sent before `horizon`, and returns their join keys
    /// and spellings. It reads only the chunks of the arena that may hold
    /// such a link.
    pub(crate) fn remove_sent_before(&mut self, horizon: i64) -> Vec<(String, String)> {
        let mut removed = Vec::new();
        let mut rejected = Vec::new();
        let LinkTable { arena, hasher, .. } = self;
        arena.scan_stamped_before(horizon, |location, state, body| {
            let mut kept_stamp = None;
            for second in [false, true] {
                let keys = if second { SECOND_KEY } else { FIRST_KEY | WRITTEN_KEY };
                if state & keys == 0 {
                    continue;
                }
                let link = StoredLink::<L>::read(state, body, second);
                if link.sent_at() < horizon {
                    removed.push((link.join_key().into_owned(), link.spelling().to_owned()));
                    rejected.push((link.key_hash(hasher), entry(location, second)));
                } else {
                    kept_stamp = Some(link.sent_at());
                }
            }
            kept_stamp
        });
        // Records move only in `tidy`, so every rejected entry is still
        // where it was found.
        for (hash, entry) in rejected {
            self.remove_entry(hash, entry);
        }
        self.tidy();
        removed
    }

    /// Removes an entry, and its key from its record, which dies when no key
    /// is left. [`LinkTable::tidy`] must follow before records are added.
    fn remove_entry(&mut self, hash: u64, entry: u32) {
        let found = self.index[shard_of(hash)].find_entry(hash, |&other| other == entry);
        found.expect("a removed entry is in the index").remove();
        let location = entry_location(entry);
        let (state, _) = self.arena.record(location);
        let key = if is_second(entry) {
            SECOND_KEY
        } else if state & WRITTEN_KEY != 0 {
            WRITTEN_KEY
        } else {
            FIRST_KEY
        };
        self.arena.set_state(location, state & !key);
        self.len -= 1;
    }

    /// Reclaims the bytes of dead records, and points the entries of the
    /// records that compaction moved at their new locations.
    fn tidy(&mut self) {
        let LinkTable { index, arena, hasher, .. } = self;
        arena.tidy(|from, to, state, body| {
            for second in [false, true] {
                let keys = if second { SECOND_KEY } else { FIRST_KEY | WRITTEN_KEY };
                if state & keys == 0 {
                    continue;
                }
                let hash = StoredLink::<()>::read(state, body, second).key_hash(hasher);
                let old = entry(from, second);
                let stored = index[shard_of(hash)].find_mut(hash, |&other| other == old);
                *stored.expect("a moved record's entries are in the index") = entry(to, second);
            }
        });
    }
}

impl<L: LinkData> LinkTable<L> {
    /// Adds a link whose carrier id is normalized
    /// ([`normalize_carrier_id`](crate::link_record::normalize_carrier_id)).
    /// The caller checks that no link of the same join key and spelling is
    /// stored.
    pub(crate) fn insert(&mut self, join_key: &str, link: &Link<L>) {
        let key = key_bit(join_key, &link.carrier_id);
        self.body.clear();
        write_body(&mut self.body, (key == WRITTEN_KEY).then_some(join_key), link);
        let location = match self.shared_record(&link.carrier_id, key) {
            Some(location) => {
                let (state, _) = self.arena.record(location);
                self.arena.set_state(location, state | key);
                location
            }
            None => self.arena.append_stamped(key, &self.body, link.sent_at),
        };

        let hash = key_hash(&self.hasher, join_key);
        let LinkTable { index, arena, hasher, .. } = self;
        let new_entry = entry(location, key == SECOND_KEY);
        index[shard_of(hash)].insert_unique(hash, new_entry, |&other| entry_hash(arena, hasher, other));
        self.len += 1;
    }

    /// Returns the record of the same link (the body just built) under the
    /// carrier id's other derived key, when `key` is a derived key and the
    /// record is not yet stored under it.
    fn shared_record(&self, carrier_id: &str, key: u8) -> Option<Location> {
        let other = match key {
            FIRST_KEY => SECOND_KEY,
            SECOND_KEY => FIRST_KEY,
            _ => return None,
        };
        let other_hash = DerivedKey::of(carrier_id, other == SECOND_KEY)?.hash(&self.hasher);
        self.index[shard_of(other_hash)].iter_hash(other_hash).find_map(|&entry| {
            if is_second(entry) != (other == SECOND_KEY) {
                return None;
            }
            let location = entry_location(entry);
            let (state, body) = self.arena.record(location);
            // An equal body contains the same carrier id, so the record is
            // under that id's other key.
            let shares = state & (key | other | WRITTEN_KEY) == other && body == self.body;
            shares.then_some(location)
        })
    }
}

#[cfg(test)]
mod tests;
