//! A map of small `Copy` keys and values that stores its entries densely in
//! fixed-size chunks and finds them through a hash index of their positions.
//!
//! A hashbrown (0.16) `HashMap` keeps its entries in its buckets. Its bucket
//! count is a power of two and at most 7/8 full, so there are up to 2.3
//! buckets per entry, and its growth copies every entry into a table twice
//! the size. Here a bucket contains a u32 position, 5 bytes with its control
//! byte, and the entries fill chunks in order. So only stored entries take
//! memory, and growth copies none of them. Removing an entry moves the last
//! one into its position, so iteration order is not insertion order.
//!
//! The message fold keeps all of a partition's messages in one map, and the
//! campaign fold keeps one map per campaign. Each picks its chunk size with
//! `CHUNK_BITS`.

use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};

/// The capacity of a map's first chunk, which then doubles up to the chunk
/// size, so that a map with a few entries does not allocate a whole chunk.
pub(crate) const FIRST_CHUNK_LEN: usize = 8;

/// One stored entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<K, V> {
    pub key: K,
    pub value: V,
}

/// Entries by key, in chunks of `2^CHUNK_BITS` entries.
#[derive(Debug)]
pub(crate) struct ChunkedMap<K, V, const CHUNK_BITS: u32> {
    /// The entries in position order. Every chunk but the last contains
    /// exactly `CHUNK_LEN` entries, and the last is never empty.
    chunks: Vec<Vec<Entry<K, V>>>,
    /// The position of every entry, hashed by its key.
    index: HashTable<u32>,
    /// Hashes keys for the index. It is seeded per map, as the hasher of a
    /// hashbrown `HashMap` is, so keys chosen to collide in the index cannot
    /// be made ahead of time.
    hasher: DefaultHashBuilder,
}

impl<K, V, const CHUNK_BITS: u32> Default for ChunkedMap<K, V, CHUNK_BITS> {
    fn default() -> Self {
        Self { chunks: Vec::new(), index: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl<K: Copy + Eq + Hash, V: Copy, const CHUNK_BITS: u32> ChunkedMap<K, V, CHUNK_BITS> {
    /// Entries per chunk.
    pub(crate) const CHUNK_LEN: usize = 1 << CHUNK_BITS;

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let position = self.find(key)?;
        Some(&self.entry_at(position).value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let position = self.find(key)?;
        Some(&mut self.entry_at_mut(position).value)
    }

    /// Inserts a value, or replaces it when the key is present. Returns the
    /// value it replaced.
    ///
    /// # Panics
    ///
    /// Panics if the map already contains 2^32 entries, which u32 positions
    /// cannot address.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        if let Some(position) = self.find(&key) {
            let entry = self.entry_at_mut(position);
            return Some(std::mem::replace(&mut entry.value, value));
        }
        let position = u32::try_from(self.len()).expect("a chunked map contains at most 2^32 entries");
        self.push_entry(Entry { key, value });

        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let hash = hasher.hash_one(key);
        let rehash = |&position: &u32| hasher.hash_one(entry_in::<_, _, CHUNK_BITS>(chunks, position).key);
        self.index.insert_unique(hash, position, rehash);
        None
    }

    /// Removes an entry and returns its value, if the map has the key.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let position = self.find(key)?;
        Some(self.remove_at(position))
    }

    /// Removes every entry for which `keep` returns false, and lets it change
    /// the values of those it keeps. It calls `keep` once per entry.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        // Backwards, because a removal moves the last entry into the freed
        // position, and that entry has then been seen already.
        for position in (0..self.len() as u32).rev() {
            let entry = self.entry_at_mut(position);
            if !keep(&entry.key, &mut entry.value) {
                self.remove_at(position);
            }
        }
    }

    /// Returns every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        self.chunks.iter().flatten().map(|entry| (&entry.key, &entry.value))
    }

    /// Returns every value, in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.chunks.iter_mut().flatten().map(|entry| &mut entry.value)
    }

    /// Returns the bytes the map has allocated: the index, the chunks and
    /// the list of them.
    pub fn allocation_size(&self) -> usize {
        let entries: usize = self.chunks.iter().map(Vec::capacity).sum();
        self.index.allocation_size()
            + entries * std::mem::size_of::<Entry<K, V>>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<Entry<K, V>>>()
    }

    /// Returns the chunks, for tests of a map's layout.
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> &Vec<Vec<Entry<K, V>>> {
        &self.chunks
    }

    /// Returns the bytes the index has allocated, for tests of a map's
    /// layout.
    #[cfg(test)]
    pub(crate) fn index_allocation_size(&self) -> usize {
        self.index.allocation_size()
    }

    /// Returns the number of index slots, for tests that every entry has one.
    #[cfg(test)]
    pub(crate) fn index_len(&self) -> usize {
        self.index.len()
    }

    /// Returns the position of the entry with `key`.
    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        let hash = self.hasher.hash_one(key);
        let chunks = &self.chunks;
        self.index.find(hash, |&position| entry_in::<_, _, CHUNK_BITS>(chunks, position).key == *key).copied()
    }

    /// Returns the entry at `position`.
    ///
    /// # Panics
    ///
    /// Panics if `position` is not below `len()`.
    pub(crate) fn entry_at(&self, position: u32) -> &Entry<K, V> {
        entry_in::<_, _, CHUNK_BITS>(&self.chunks, position)
    }

    fn entry_at_mut(&mut self, position: u32) -> &mut Entry<K, V> {
        &mut self.chunks[(position >> CHUNK_BITS) as usize][position as usize & (Self::CHUNK_LEN - 1)]
    }

    /// Appends an entry at position `len()`, without indexing it.
    fn push_entry(&mut self, entry: Entry<K, V>) {
        if self.chunks.last().is_none_or(|chunk| chunk.len() == Self::CHUNK_LEN) {
            let capacity = if self.chunks.is_empty() { FIRST_CHUNK_LEN.min(Self::CHUNK_LEN) } else { Self::CHUNK_LEN };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk = self.chunks.last_mut().expect("a chunk with room exists or was pushed above");
        if chunk.len() == chunk.capacity() {
            // Only the first chunk starts small. It doubles, capped at the
            // chunk size, which it only reaches once it contains that many.
            chunk.reserve_exact(chunk.capacity().min(Self::CHUNK_LEN - chunk.len()));
        }
        chunk.push(entry);
    }

    /// Removes the entry at `position` and its index slot, moves the last
    /// entry into its place and points that entry's slot at it.
    fn remove_at(&mut self, position: u32) -> V {
        let removed = *self.entry_at(position);
        self.take_slot(&removed.key, position);

        let last_position = self.len() as u32;
        let last_chunk = self.chunks.last_mut().expect("the map held an entry");
        let last = last_chunk.pop().expect("the last chunk is never empty");
        if last_chunk.is_empty() {
            self.chunks.pop();
        }
        if position != last_position {
            *self.entry_at_mut(position) = last;
            let hash = self.hasher.hash_one(last.key);
            let slot = self.index.find_mut(hash, |&slot| slot == last_position);
            *slot.expect("every entry has an index slot") = position;
        }
        removed.value
    }

    /// Removes the index slot of the entry with `key` at `position`.
    fn take_slot(&mut self, key: &K, position: u32) {
        let hash = self.hasher.hash_one(key);
        match self.index.find_entry(hash, |&slot| slot == position) {
            Ok(slot) => {
                slot.remove();
            }
            Err(_) => unreachable!("every entry has an index slot"),
        }
    }
}

/// Returns the entry at `position` of `chunks`, whose chunks contain
/// `2^CHUNK_BITS` entries each. It borrows only the chunks, so the index can
/// call it while it is borrowed mutably.
fn entry_in<K, V, const CHUNK_BITS: u32>(chunks: &[Vec<Entry<K, V>>], position: u32) -> &Entry<K, V> {
    &chunks[(position >> CHUNK_BITS) as usize][position as usize & ((1 << CHUNK_BITS) - 1)]
}

#[cfg(test)]
mod tests;
