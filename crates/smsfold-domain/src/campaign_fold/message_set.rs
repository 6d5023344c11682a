//! One campaign's messages: each message's key, status and segments, 20
//! bytes, in a chunked map.
//!
//! A hashbrown (0.16) `HashMap<MessageKey, MessageEntry>` has 24-byte
//! buckets, because `MessageKey` has an alignment of 8, and up to 2.3
//! buckets per message, and its growth copies every entry. Here the key is
//! stored as four u32 words, so an entry takes 20 bytes with an alignment of
//! 4. The chunked map (`crate::chunked_map`) stores these entries densely
//! and indexes each with a 5-byte bucket.

use crate::chunked_map::ChunkedMap;
use crate::key::MessageKey;
use crate::status::MessageStatus;

/// The number of position bits that address an entry within a chunk: 256
/// entries of 20 bytes, 5 KiB. Every campaign has its own map, and each map
/// leaves up to one chunk partly unused, so chunks are kept small.
const CHUNK_BITS: u32 = 8;

/// The state the campaign fold keeps for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MessageEntry {
    pub status: MessageStatus,
    pub segments: u16,
}

/// A [`MessageKey`] as four little-endian u32 words, with an alignment of 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PackedKey([u32; 4]);

impl PackedKey {
    fn pack(key: MessageKey) -> Self {
        let bytes = key.to_bytes();
        let mut words = [0; 4];
        for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(4)) {
            *word = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        PackedKey(words)
    }

    fn unpack(self) -> MessageKey {
        let mut bytes = [0; 16];
        for (chunk, word) in bytes.chunks_exact_mut(4).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        MessageKey::from_bytes(bytes)
    }
}

/// One campaign's messages, by key.
#[derive(Debug, Default)]
pub(super) struct MessageSet {
    entries: ChunkedMap<PackedKey, MessageEntry, CHUNK_BITS>,
}

impl MessageSet {
    pub fn get(&self, key: &MessageKey) -> Option<&MessageEntry> {
        self.entries.get(&PackedKey::pack(*key))
    }

    pub fn get_mut(&mut self, key: &MessageKey) -> Option<&mut MessageEntry> {
        self.entries.get_mut(&PackedKey::pack(*key))
    }

    /// Inserts a message's entry, or replaces it when the key is present.
    /// Returns the entry it replaced.
    pub fn insert(&mut self, key: MessageKey, entry: MessageEntry) -> Option<MessageEntry> {
        self.entries.insert(PackedKey::pack(key), entry)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Returns every message's key, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = MessageKey> + '_ {
        self.entries.iter().map(|(key, _)| key.unpack())
    }

    /// Returns the bytes the set has allocated.
    pub fn allocation_size(&self) -> usize {
        self.entries.allocation_size()
    }
}

#[cfg(test)]
mod tests;
