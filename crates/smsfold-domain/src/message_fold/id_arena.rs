//! The message fold's id arena: every message id once, prefixed with its
//! length in one byte, so a message costs its id's bytes plus one instead
//! of a heap string.
//!
//! The arena is a list of fixed-size chunks. Growing it allocates one more
//! chunk and copies nothing, so its heap stays within one chunk of the
//! bytes it stores, where a single `Vec` that doubles allocates up to twice
//! that. An id never straddles two chunks: when the last chunk has no room
//! for the next id, its remaining bytes stay unused.

use super::MAX_MESSAGE_ID_LEN;

/// The number of offset bits that address a byte within a chunk.
const CHUNK_BITS: u32 = 16;
/// Bytes per chunk, 64 KiB. An id with its length byte takes at most 256,
/// so at most 255 bytes (0.4 %) of a chunk go unused.
const CHUNK_BYTES: usize = 1 << CHUNK_BITS;
/// The chunk count that u32 offsets can address: 4 GiB of ids.
const MAX_CHUNKS: usize = 1 << (32 - CHUNK_BITS);
/// The capacity of the first chunk, which then doubles up to
/// `CHUNK_BYTES`, so that a fold with a few messages does not hold 64 KiB.
const FIRST_CHUNK_BYTES: usize = 256;

/// Length-prefixed message ids, addressed by u32 offsets.
#[derive(Debug, Default)]
pub(super) struct IdArena {
    /// Every chunk but the first has a capacity of exactly `CHUNK_BYTES`.
    chunks: Vec<Vec<u8>>,
    /// Bytes stored: ids and their length bytes, without unused chunk ends.
    len: usize,
}

impl IdArena {
    /// Appends an id and returns its offset, or `None` when the 4 GiB that
    /// u32 offsets address are used up.
    ///
    /// # Panics
    ///
    /// Panics if the id is longer than [`MAX_MESSAGE_ID_LEN`] bytes, which
    /// the fold rejects before it gets here.
    pub fn push(&mut self, id: &str) -> Option<u32> {
        let bytes = id.as_bytes();
        assert!(bytes.len() <= MAX_MESSAGE_ID_LEN, "message id of {} bytes pushed to the arena", bytes.len());
        let stored = 1 + bytes.len();

        let fits = self.chunks.last().is_some_and(|chunk| chunk.len() + stored <= CHUNK_BYTES);
        if !fits {
            if self.chunks.len() == MAX_CHUNKS {
                return None;
            }
            let capacity = if self.chunks.is_empty() { FIRST_CHUNK_BYTES } else { CHUNK_BYTES };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        if chunk.capacity() - chunk.len() < stored {
            // Only the first chunk starts small. It doubles, capped at the
            // chunk size, which it only reaches once it stores that much.
            let capacity = (chunk.capacity() * 2).max(chunk.len() + stored).min(CHUNK_BYTES);
            chunk.reserve_exact(capacity - chunk.len());
        }

        // Below 2^32, because chunk_index < MAX_CHUNKS and the chunk's
        // length is below CHUNK_BYTES.
        let offset = ((chunk_index << CHUNK_BITS) | chunk.len()) as u32;
        chunk.push(bytes.len() as u8);
        chunk.extend_from_slice(bytes);
        self.len += stored;
        Some(offset)
    }

    /// Returns the id at an offset that [`IdArena::push`] returned.
    pub fn get(&self, offset: u32) -> &str {
        let (chunk, start) = self.locate(offset);
        let len = usize::from(chunk[start]);
        // Ids enter the arena only from `&str`, so the slice is valid UTF-8.
        std::str::from_utf8(&chunk[start + 1..start + 1 + len]).unwrap_or_default()
    }

    /// Returns the bytes the id at `offset` takes, its length byte included.
    pub fn stored_len(&self, offset: u32) -> usize {
        let (chunk, start) = self.locate(offset);
        1 + usize::from(chunk[start])
    }

    /// Returns the bytes stored: the ids and their length bytes, without
    /// the unused ends of chunks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns the bytes the arena has allocated: its chunks and the list
    /// of them.
    pub fn allocation_size(&self) -> usize {
        let chunk_bytes: usize = self.chunks.iter().map(Vec::capacity).sum();
        chunk_bytes + self.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    fn locate(&self, offset: u32) -> (&[u8], usize) {
        let chunk = &self.chunks[(offset >> CHUNK_BITS) as usize];
        (chunk, offset as usize & (CHUNK_BYTES - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an id of `len` bytes that differs from the ids of other `index`
    /// values.
    fn id_of(index: usize, len: usize) -> String {
        let digits = format!("{index:08}");
        let mut id = "x".repeat(len.saturating_sub(digits.len()));
        id.push_str(&digits[digits.len().saturating_sub(len)..]);
        id
    }

    #[test]
    fn pushed_ids_read_back() {
        let mut arena = IdArena::default();

        let first = arena.push("SM-1").unwrap();
        let empty = arena.push("").unwrap();
        let second = arena.push("SM-22").unwrap();

        assert_eq!(first, 0);
        assert_eq!(empty, 5);
        assert_eq!(second, 6);
        assert_eq!(arena.get(first), "SM-1");
        assert_eq!(arena.get(empty), "");
        assert_eq!(arena.get(second), "SM-22");
        assert_eq!(arena.stored_len(first), 5);
        assert_eq!(arena.stored_len(empty), 1);
        assert_eq!(arena.stored_len(second), 6);
        assert_eq!(arena.len(), 12);
    }

    #[test]
    fn first_chunk_doubles_to_chunk_size() {
        let mut arena = IdArena::default();
        arena.push("a").unwrap();
        let listed = arena.chunks.capacity() * std::mem::size_of::<Vec<u8>>();
        assert_eq!(arena.allocation_size(), FIRST_CHUNK_BYTES + listed);

        // 200 ids of 99 bytes and a length byte: 20,002 bytes with the first
        // id, in one chunk that doubled from 256 bytes to 32 KiB.
        for index in 0..200 {
            arena.push(&id_of(index, 99)).unwrap();
        }

        assert_eq!(arena.chunks.len(), 1);
        assert_eq!(arena.chunks[0].capacity(), 32 * 1024);
        assert_eq!(arena.len(), 2 + 200 * 100);
    }

    #[test]
    fn long_ids_fill_chunk_exactly() {
        let mut arena = IdArena::default();
        // 256 ids of MAX_MESSAGE_ID_LEN bytes and a length byte fill a chunk
        // exactly, so the 257th starts the second chunk.
        let ids: Vec<String> = (0..257).map(|index| id_of(index, MAX_MESSAGE_ID_LEN)).collect();

        let offsets: Vec<u32> = ids.iter().map(|id| arena.push(id).unwrap()).collect();

        assert_eq!(offsets[255], 255 * 256);
        assert_eq!(offsets[256], 1 << CHUNK_BITS);
        assert_eq!(arena.chunks.len(), 2);
        assert_eq!(arena.chunks[0].len(), CHUNK_BYTES);
        assert_eq!(arena.chunks[0].capacity(), CHUNK_BYTES);
        assert_eq!(arena.len(), 257 * 256);
        for (id, &offset) in ids.iter().zip(&offsets) {
            assert_eq!(arena.get(offset), id);
            assert_eq!(arena.stored_len(offset), 256);
        }
    }

    #[test]
    fn id_that_does_not_fit_starts_chunk() {
        let mut arena = IdArena::default();
        let long_id = id_of(1, MAX_MESSAGE_ID_LEN);
        for _ in 0..255 {
            arena.push(&long_id).unwrap();
        }

        // 65,280 bytes are used: a 201-byte id fits in the first chunk, and
        // the next long id does not fit in the 55 bytes left.
        let short = arena.push(&"s".repeat(200)).unwrap();
        let long = arena.push(&long_id).unwrap();
        let after = arena.push("tail").unwrap();

        assert_eq!(short, 255 * 256);
        assert_eq!(long, 1 << CHUNK_BITS);
        assert_eq!(after, (1 << CHUNK_BITS) + 256);
        assert_eq!(arena.chunks[0].len(), 255 * 256 + 201);
        assert_eq!(arena.get(short), "s".repeat(200));
        assert_eq!(arena.get(long), long_id);
        assert_eq!(arena.get(after), "tail");
        assert_eq!(arena.len(), 256 * 256 + 201 + 5);
    }

    #[test]
    fn chunk_one_byte_short_starts_next() {
        let mut arena = IdArena::default();
        let long_id = id_of(2, MAX_MESSAGE_ID_LEN);
        for _ in 0..255 {
            arena.push(&long_id).unwrap();
        }
        // An empty id takes one byte, which leaves 255 bytes: one fewer
        // than the next long id needs.
        arena.push("").unwrap();

        let long = arena.push(&long_id).unwrap();

        assert_eq!(long, 1 << CHUNK_BITS);
        assert_eq!(arena.chunks[0].len(), CHUNK_BYTES - 255);
        assert_eq!(arena.chunks[0].capacity(), CHUNK_BYTES);
        assert_eq!(arena.chunks[1].len(), 256);
        assert_eq!(arena.get(long), long_id);
    }

    #[test]
    fn later_chunks_have_chunk_size() {
        let mut arena = IdArena::default();
        for index in 0..1000 {
            arena.push(&id_of(index, 200)).unwrap();
        }

        // 326 ids of 201 bytes fit in a chunk, so 1,000 take four chunks.
        assert_eq!(arena.chunks.len(), 4);
        assert!(arena.chunks.iter().all(|chunk| chunk.capacity() == CHUNK_BYTES));
        let listed = arena.chunks.capacity() * std::mem::size_of::<Vec<u8>>();
        assert_eq!(arena.allocation_size(), 4 * CHUNK_BYTES + listed);
    }

    #[test]
    #[should_panic(expected = "message id of 256 bytes")]
    fn overlong_id_panics() {
        let mut arena = IdArena::default();
        arena.push(&"x".repeat(MAX_MESSAGE_ID_LEN + 1));
    }
}
