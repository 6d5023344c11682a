//! The message fold's table of live messages: each message's key and state
//! in a dense list of fixed-size chunks, found through a hash index of
//! their positions.
//!
//! A hashbrown (0.16) `HashMap<MessageKey, MessageState>` keeps its
//! 40-byte entries in its buckets. Its bucket count is a power of two and
//! at most 7/8 full, so there are up to 2.3 buckets per entry, and its
//! growth copies every entry into a table twice the size. Here a bucket
//! contains a u32 position, 5 bytes with its control byte, and the entries
//! fill chunks in order. So only stored entries take memory, and growth
//! copies none of them. Removing an entry moves the last one into its
//! position.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::MessageState;
use crate::key::MessageKey;

/// The number of position bits that address an entry within a chunk.
const CHUNK_BITS: u32 = 11;
/// Entries per chunk: 2,048 entries of 40 bytes, 80 KiB.
const CHUNK_LEN: usize = 1 << CHUNK_BITS;
/// The capacity of the first chunk, which then doubles up to `CHUNK_LEN`,
/// so that a fold with a few messages does not hold 80 KiB.
const FIRST_CHUNK_LEN: usize = 8;

/// One live message: 40 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: MessageKey,
    state: MessageState,
}

/// The live messages of one fold, by key.
#[derive(Debug, Default)]
pub(super) struct MessageTable {
    /// The entries in position order. Every chunk but the last contains
    /// exactly `CHUNK_LEN` entries, and the last is never empty.
    chunks: Vec<Vec<Entry>>,
    /// The position of every entry, hashed by its key.
    index: HashTable<u32>,
    /// Hashes keys for the index. It is seeded per table, as the hasher of
    /// a hashbrown `HashMap` is, so ids chosen to collide in the index
    /// cannot be made ahead of time.
    hasher: DefaultHashBuilder,
}

impl MessageTable {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, key: &MessageKey) -> Option<&MessageState> {
        let position = self.find(key)?;
        Some(&entry_at(&self.chunks, position).state)
    }

    /// Inserts a message's state, or replaces it when the key is present.
    ///
    /// # Panics
    ///
    /// Panics if the table already contains 2^32 entries, which u32
    /// positions cannot address. A fold never gets there, because each of
    /// its messages has its own u32 offset in the fold's id arena.
    pub fn insert(&mut self, key: MessageKey, state: MessageState) {
        if let Some(position) = self.find(&key) {
            entry_at_mut(&mut self.chunks, position).state = state;
            return;
        }
        let position = u32::try_from(self.len()).expect("a message table contains at most 2^32 entries");
        self.push_entry(Entry { key, state });

        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let hash = hasher.hash_one(key);
        self.index.insert_unique(hash, position, |&position| hasher.hash_one(entry_at(chunks, position).key));
    }

    /// Removes a message and returns its state, if the table has it.
    pub fn remove(&mut self, key: &MessageKey) -> Option<MessageState> {
        let position = self.find(key)?;
        Some(self.remove_at(position))
    }

    /// Removes every message for which `keep` returns false, and lets it
    /// change the state of those it keeps. It calls `keep` once per message.
    pub fn retain(&mut self, mut keep: impl FnMut(&MessageKey, &mut MessageState) -> bool) {
        // Backwards, because a removal moves the last entry into the freed
        // position, and that entry has then been seen already.
        for position in (0..self.len() as u32).rev() {
            let entry = entry_at_mut(&mut self.chunks, position);
            if !keep(&entry.key, &mut entry.state) {
                self.remove_at(position);
            }
        }
    }

    /// Returns every message's key and state, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&MessageKey, &MessageState)> + '_ {
        self.chunks.iter().flatten().map(|entry| (&entry.key, &entry.state))
    }

    /// Returns every message's state, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut MessageState> + '_ {
        self.chunks.iter_mut().flatten().map(|entry| &mut entry.state)
    }

    /// Returns the bytes the table has allocated: the index, the chunks and
    /// the list of them.
    pub fn allocation_size(&self) -> usize {
        let entries: usize = self.chunks.iter().map(Vec::capacity).sum();
        self.index.allocation_size()
            + entries * std::mem::size_of::<Entry>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Entry>>()
    }

    fn find(&self, key: &MessageKey) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let chunks = &self.chunks;
        self.index.find(hash, |&position| entry_at(chunks, position).key == *key).copied()
    }

    /// Appends an entry at position `len()`, without indexing it.
    fn push_entry(&mut self, entry: Entry) {
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK_LEN) {
            let capacity = if self.chunks.is_empty() { FIRST_CHUNK_LEN } else { CHUNK_LEN };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk = self.chunks.last_mut().expect("a chunk with room exists or was pushed above");
        if chunk.len() == chunk.capacity() {
            // Only the first chunk starts small. It doubles, capped at the
            // chunk size, which it only reaches once it contains that many.
            chunk.reserve_exact(chunk.capacity().min(CHUNK_LEN - chunk.len()));
        }
        chunk.push(entry);
    }

    /// Removes the entry at `position` and its index slot, moves the last
    /// entry into its place and points that entry's slot at it.
    fn remove_at(&mut self, position: u32) -> MessageState {
        let removed = *entry_at(&self.chunks, position);
        self.take_slot(&removed.key, position);

        let last_position = self.len() as u32;
        let last_chunk = self.chunks.last_mut().expect("the table held an entry");
        let last = last_chunk.pop().expect("the last chunk is never empty");
        if last_chunk.is_empty() {
            self.chunks.pop();
        }
        if position != last_position {
            *entry_at_mut(&mut self.chunks, position) = last;
            let hash = self.hasher.hash_one(last.key);
            let slot = self.index.find_mut(hash, |&slot| slot == last_position);
            *slot.expect("every entry has an index slot") = position;
        }
        removed.state
    }

    /// Removes the index slot of the entry with `key` at `position`.
    fn take_slot(&mut self, key: &MessageKey, position: u32) {
        let hash = self.hasher.hash_one(key);
        match self.index.find_entry(hash, |&slot| slot == position) {
            Ok(slot) => {
                slot.remove();
            }
            Err(_) => unreachable!("every entry has an index slot"),
        }
    }
}

fn entry_at(chunks: &[Vec<Entry>], position: u32) -> &Entry {
    &chunks[(position >> CHUNK_BITS) as usize][position as usize & (CHUNK_LEN - 1)]
}

fn entry_at_mut(chunks: &mut [Vec<Entry>], position: u32) -> &mut Entry {
    &mut chunks[(position >> CHUNK_BITS) as usize][position as usize & (CHUNK_LEN - 1)]
}

#[cfg(test)]
mod tests;
