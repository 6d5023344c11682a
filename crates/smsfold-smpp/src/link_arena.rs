//! The byte arena that contains the records of a link table, in chunks of
//! a fixed size.
//!
//! A partition can hold millions of links, so a record costs no allocation
//! of its own, and no buffer doubles and copies all records when it grows:
//! the arena adds one chunk at a time. Removing a record marks it dead.
//! [`Arena::tidy`] then releases a chunk whose records are all dead and
//! compacts one that is more than half dead, moving its live records to its
//! start and reporting each move, so the caller can update where it points
//! at them. A compacted chunk is filled again before a new chunk is added,
//! and a released chunk's number is reused.
//!
//! A record is a state byte (0 once dead), its body's length as a LEB128
//! number, the body, and zeros up to a multiple of [`RECORD_ALIGN`].

use crate::link_data::{push_length, read_length, varint_size};

/// The size of every chunk but the first and those of oversized records.
/// A chunk never grows past it.
pub(crate) const CHUNK_BYTES: usize = 256 * 1024;
/// The size the first chunk starts at. It doubles up to [`CHUNK_BYTES`], so
/// a partition with few links takes little memory.
const FIRST_CHUNK_BYTES: usize = 4 * 1024;
/// Records start at multiples of this, so an offset in a chunk fits in 16
/// bits.
const RECORD_ALIGN: usize = 4;
/// The maximum number of chunks. A [`Location`] has 15 bits for the chunk
/// number, so the arena has room for at most 8 GiB of records.
const MAX_CHUNKS: usize = 1 << 15;

/// The start of a record: its chunk number and its offset in the chunk, in
/// 31 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location(u32);

impl Location {
    fn new(chunk: usize, offset: usize) -> Self {
        debug_assert!(chunk < MAX_CHUNKS, "chunk {chunk} has no location");
        debug_assert!(offset < CHUNK_BYTES, "offset {offset} lies past a chunk's records");
        debug_assert_eq!(offset % RECORD_ALIGN, 0, "offset {offset} is not aligned");
        // Below 2^15 and 2^16, so the result fits in 31 bits.
        Location(((chunk << 16) | (offset / RECORD_ALIGN)) as u32)
    }

    fn chunk(self) -> usize {
        (self.0 >> 16) as usize
    }

    fn offset(self) -> usize {
        (self.0 & 0xffff) as usize * RECORD_ALIGN
    }

    /// Returns the location as a number below 2^31, so that a caller may add
    /// a bit of its own.
    pub(crate) fn to_bits(self) -> u32 {
        self.0
    }

    /// Returns the location that [`to_bits`](Location::to_bits) returned as
    /// `bits`.
    pub(crate) fn from_bits(bits: u32) -> Self {
        debug_assert!(bits < 1 << 31, "{bits:#x} is no location");
        Location(bits)
    }
}

/// Returns the bytes a record with a body of `body_length` bytes takes.
fn record_size(body_length: usize) -> usize {
    (1 + varint_size(body_length as u64) + body_length).next_multiple_of(RECORD_ALIGN)
}

/// Returns the location, state and body of every live record in `bytes`,
/// the records of chunk `number`.
fn live_records(number: usize, bytes: &[u8]) -> impl Iterator<Item = (Location, u8, &[u8])> + '_ {
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let offset = at;
            let mut rest = &bytes[offset + 1..];
            let length = read_length(&mut rest);
            at += record_size(length);
            if bytes[offset] != 0 {
                return Some((Location::new(number, offset), bytes[offset], &rest[..length]));
            }
        }
        None
    })
}

#[derive(Debug, Default)]
struct Chunk {
    /// Records, back to back. Without capacity when the chunk is released.
    bytes: Vec<u8>,
    /// Bytes of the dead records in `bytes`.
    dead: usize,
    /// The chunk is on [`Arena::untidy`].
    untidy: bool,
    /// The chunk is on [`Arena::roomy`].
    roomy: bool,
    /// A lower bound of the stamps of the live records in `bytes`, so that
    /// a scan for records stamped before a time can skip the chunk.
    oldest: i64,
}

#[derive(Debug, Default)]
pub(crate) struct Arena {
    chunks: Vec<Chunk>,
    /// The chunk new records are appended to.
    current: Option<usize>,
    /// Chunks with buffers, released or not.
    chunks_in_use: usize,
    /// Numbers of released chunks, reused before new numbers.
    released: Vec<usize>,
    /// Compacted chunks, filled before a chunk is added.
    roomy: Vec<usize>,
    /// Chunks with records that died since the last [`Arena::tidy`].
    untidy: Vec<usize>,
}

impl Arena {
    /// Appends a record with the lowest stamp, which every scan visits, for
    /// tests that do not use stamps.
    #[cfg(test)]
    pub(crate) fn append(&mut self, state: u8, body: &[u8]) -> Location {
        self.append_stamped(state, body, i64::MIN)
    }

    /// Appends a record and returns its location. `state` must not be 0,
    /// which marks a dead record. `stamp` is the time that
    /// [`Arena::scan_stamped_before`] selects records by.
    ///
    /// # Panics
    ///
    /// Panics when the arena needs more than 2^15 chunks (8 GiB of records).
    pub(crate) fn append_stamped(&mut self, state: u8, body: &[u8], stamp: i64) -> Location {
        assert_ne!(state, 0, "a record's state is not 0 while it lives");
        let size = record_size(body.len());
        let number = self.chunk_with_room(size);
        let chunk = &mut self.chunks[number];
        chunk.oldest = chunk.oldest.min(stamp);
        let bytes = &mut chunk.bytes;
        let offset = bytes.len();
        bytes.push(state);
        push_length(bytes, body.len());
        bytes.extend_from_slice(body);
        bytes.resize(offset + size, 0);
        Location::new(number, offset)
    }

    /// Returns the state and body of the record at `location`.
    pub(crate) fn record(&self, location: Location) -> (u8, &[u8]) {
        let bytes = &self.chunks[location.chunk()].bytes[location.offset()..];
        let mut rest = &bytes[1..];
        let length = read_length(&mut rest);
        (bytes[0], &rest[..length])
    }

    /// Sets the state of the live record at `location`. State 0 marks it
    /// dead, and [`Arena::tidy`] then reclaims its bytes.
    pub(crate) fn set_state(&mut self, location: Location, state: u8) {
        let number = location.chunk();
        let offset = location.offset();
        let chunk = &mut self.chunks[number];
        debug_assert_ne!(chunk.bytes[offset], 0, "the record at {location:?} is live");
        chunk.bytes[offset] = state;
        if state != 0 {
            return;
        }
        let length = read_length(&mut &chunk.bytes[offset + 1..]);
        chunk.dead += record_size(length);
        if !chunk.untidy {
            chunk.untidy = true;
            self.untidy.push(number);
        }
    }

    /// Releases the chunks whose records all died since the last call, and
    /// compacts those that are now more than half dead. Calls `moved` with
    /// the old and new location, the state and the body of each record that
    /// compaction moved.
    pub(crate) fn tidy(&mut self, mut moved: impl FnMut(Location, Location, u8, &[u8])) {
        let mut untidy = std::mem::take(&mut self.untidy);
        for &number in &untidy {
            let chunk = &mut self.chunks[number];
            chunk.untidy = false;
            if chunk.dead == chunk.bytes.len() {
                if self.current == Some(number) {
                    chunk.bytes.clear();
                    chunk.dead = 0;
                    chunk.oldest = i64::MAX;
                } else {
                    self.release(number);
                }
            } else if 2 * chunk.dead > chunk.bytes.len() {
                self.compact(number, &mut moved);
                let chunk = &mut self.chunks[number];
                if self.current != Some(number) && !chunk.roomy {
                    chunk.roomy = true;
                    self.roomy.push(number);
                }
            }
        }
        untidy.clear();
        self.untidy = untidy;
    }

    /// Returns the location, state and body of every live record.
    pub(crate) fn records(&self) -> impl Iterator<Item = (Location, u8, &[u8])> + '_ {
        self.chunks.iter().enumerate().flat_map(|(number, chunk)| live_records(number, &chunk.bytes))
    }

    /// Calls `visit` with the location, state and body of every live record
    /// in the chunks that may hold a record stamped before `horizon`. `visit`
    /// returns the stamp of a record that stays, or `None` for one the
    /// caller removes, so that the chunk's oldest stamp is exact again.
    pub(crate) fn scan_stamped_before(&mut self, horizon: i64, mut visit: impl FnMut(Location, u8, &[u8]) -> Option<i64>) {
        for (number, chunk) in self.chunks.iter_mut().enumerate() {
            if chunk.oldest >= horizon {
                continue;
            }
            let mut oldest = i64::MAX;
            for (location, state, body) in live_records(number, &chunk.bytes) {
                if let Some(stamp) = visit(location, state, body) {
                    oldest = oldest.min(stamp);
                }
            }
            chunk.oldest = oldest;
        }
    }

    /// Returns the number of chunks with a buffer.
    #[cfg(test)]
    pub(crate) fn chunks_in_use(&self) -> usize {
        self.chunks_in_use
    }

    /// Returns the bytes of the chunks' buffers: records, dead or alive, and
    /// room for more.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.bytes.capacity()).sum()
    }

    /// Returns the bytes of the live records.
    pub(crate) fn live_bytes(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.bytes.len() - chunk.dead).sum()
    }

    /// Returns the number of a chunk with room for a record of `size` bytes,
    /// making it the current chunk unless the record is larger than a chunk.
    fn chunk_with_room(&mut self, size: usize) -> usize {
        if size > CHUNK_BYTES {
            // A chunk of its own, which nothing is appended to.
            return self.add_chunk(size);
        }
        if let Some(number) = self.current {
            if self.make_room(number, size) {
                return number;
            }
        }
        while let Some(number) = self.roomy.pop() {
            self.chunks[number].roomy = false;
            let released = self.chunks[number].bytes.capacity() == 0;
            if !released && self.make_room(number, size) {
                self.current = Some(number);
                return number;
            }
        }
        let capacity = if self.chunks_in_use == 0 {
            size.next_power_of_two().clamp(FIRST_CHUNK_BYTES, CHUNK_BYTES)
        } else {
            CHUNK_BYTES
        };
        let number = self.add_chunk(capacity);
        self.current = Some(number);
        number
    }

    /// Returns true when chunk `number` can take `size` more bytes without
    /// growing past [`CHUNK_BYTES`], and reserves them. A chunk smaller than
    /// that at least doubles.
    fn make_room(&mut self, number: usize, size: usize) -> bool {
        let bytes = &mut self.chunks[number].bytes;
        let needed = bytes.len() + size;
        if needed > CHUNK_BYTES {
            return false;
        }
        if needed > bytes.capacity() {
            let capacity = needed.next_power_of_two().max(2 * bytes.capacity()).min(CHUNK_BYTES);
            bytes.reserve_exact(capacity - bytes.len());
        }
        true
    }

    /// Gives a chunk a buffer of `capacity` bytes and returns its number.
    fn add_chunk(&mut self, capacity: usize) -> usize {
        let number = match self.released.pop() {
            Some(number) => number,
            None => {
                assert!(
                    self.chunks.len() < MAX_CHUNKS,
                    "the carrier links of one partition exceed the 8 GiB of records a link table can address; \
                     spread them over more partitions of the carrier join topic"
                );
                self.chunks.push(Chunk::default());
                self.chunks.len() - 1
            }
        };
        self.chunks[number].bytes = Vec::with_capacity(capacity);
        self.chunks[number].oldest = i64::MAX;
        self.chunks_in_use += 1;
        number
    }

    /// Frees the buffer of a chunk whose records are all dead.
    fn release(&mut self, number: usize) {
        let chunk = &mut self.chunks[number];
        chunk.bytes = Vec::new();
        chunk.dead = 0;
        chunk.oldest = i64::MAX;
        self.chunks_in_use -= 1;
        self.released.push(number);
        if self.current == Some(number) {
            self.current = None;
        }
    }

    /// Moves the live records of chunk `number` to its start, in order.
    fn compact(&mut self, number: usize, moved: &mut impl FnMut(Location, Location, u8, &[u8])) {
        let chunk = &mut self.chunks[number];
        let bytes = &mut chunk.bytes;
        let mut read = 0;
        let mut write = 0;
        while read < bytes.len() {
            let state = bytes[read];
            let length = read_length(&mut &bytes[read + 1..]);
            let size = record_size(length);
            if state != 0 {
                if write != read {
                    bytes.copy_within(read..read + size, write);
                    let body_start = write + 1 + varint_size(length as u64);
                    moved(
                        Location::new(number, read),
                        Location::new(number, write),
                        state,
                        &bytes[body_start..][..length],
                    );
                }
                write += size;
            }
            read += size;
        }
        bytes.truncate(write);
        chunk.dead = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns a body of `length` bytes, each of them `id`.
    fn body(id: u8, length: usize) -> Vec<u8> {
        vec![id; length]
    }

    fn live_ids(arena: &Arena) -> Vec<u8> {
        arena.records().map(|(_, _, body)| body[0]).collect()
    }

    #[test]
    fn appended_records_read_back() {
        let mut arena = Arena::default();

        let first = arena.append(1, &body(7, 10));
        let second = arena.append(3, &body(8, 200));

        assert_eq!(arena.record(first), (1, &body(7, 10)[..]));
        assert_eq!(arena.record(second), (3, &body(8, 200)[..]));
        assert_eq!(second.offset(), 12, "a 10-byte body takes 12 bytes with its header");
        assert_eq!(live_ids(&arena), [7, 8]);
        assert_eq!(arena.live_bytes(), 12 + 204);
    }

    #[test]
    fn location_bits_round_trip() {
        let location = Location::new(MAX_CHUNKS - 1, CHUNK_BYTES - RECORD_ALIGN);

        assert!(location.to_bits() < 1 << 31);
        assert_eq!(Location::from_bits(location.to_bits()), location);
        assert_eq!(location.chunk(), MAX_CHUNKS - 1);
        assert_eq!(location.offset(), CHUNK_BYTES - RECORD_ALIGN);
    }

    #[test]
    fn first_chunk_grows_by_doubling() {
        let mut arena = Arena::default();
        arena.append(1, &body(1, 100));

        assert_eq!(arena.capacity_bytes(), FIRST_CHUNK_BYTES);
        for _ in 0..100 {
            arena.append(1, &body(1, 100));
        }

        assert_eq!(arena.chunks_in_use(), 1);
        assert_eq!(arena.capacity_bytes(), 16 * 1024, "101 records of 104 bytes fill 10,504 bytes");
    }

    #[test]
    fn full_chunk_is_followed_by_another() {
        let mut arena = Arena::default();
        let record = CHUNK_BYTES / 4;
        let locations: Vec<Location> = (0..5).map(|id| arena.append(1, &body(id, record - 4))).collect();

        assert_eq!(arena.chunks_in_use(), 2);
        assert_eq!(locations[4].chunk(), 1);
        assert_eq!(arena.capacity_bytes(), 2 * CHUNK_BYTES);
        assert_eq!(live_ids(&arena), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn dead_records_are_skipped() {
        let mut arena = Arena::default();
        let locations: Vec<Location> = (0..4).map(|id| arena.append(1, &body(id, 30))).collect();

        arena.set_state(locations[1], 0);
        arena.set_state(locations[2], 2);

        assert_eq!(live_ids(&arena), [0, 2, 3]);
        assert_eq!(arena.record(locations[2]).0, 2);
    }

    #[test]
    fn compaction_reports_moves() {
        let mut arena = Arena::default();
        let locations: Vec<Location> = (0..6).map(|id| arena.append(1, &body(id, 30))).collect();
        for &dead in &locations[..4] {
            arena.set_state(dead, 0);
        }

        let mut moves = Vec::new();
        arena.tidy(|from, to, state, body| moves.push((from, to, state, body[0])));

        assert_eq!(moves, [(locations[4], locations[0], 1, 4), (locations[5], locations[1], 1, 5)]);
        assert_eq!(arena.record(locations[0]), (1, &body(4, 30)[..]));
        assert_eq!(arena.live_bytes(), 64);
        assert_eq!(live_ids(&arena), [4, 5]);
    }

    #[test]
    fn half_dead_chunk_stays() {
        let mut arena = Arena::default();
        let locations: Vec<Location> = (0..4).map(|id| arena.append(1, &body(id, 30))).collect();
        arena.set_state(locations[0], 0);
        arena.set_state(locations[2], 0);

        arena.tidy(|_, _, _, _| panic!("a chunk half dead is not compacted"));

        assert_eq!(arena.record(locations[3]), (1, &body(3, 30)[..]));
        assert_eq!(live_ids(&arena), [1, 3]);
    }

    #[test]
    fn dead_chunk_is_released_and_reused() {
        let mut arena = Arena::default();
        let record = CHUNK_BYTES / 4;
        let first_chunk: Vec<Location> = (0..4).map(|id| arena.append(1, &body(id, record - 4))).collect();
        arena.append(1, &body(4, record - 4));
        for &location in &first_chunk {
            arena.set_state(location, 0);
        }

        arena.tidy(|_, _, _, _| panic!("a released chunk moves nothing"));

        assert_eq!(arena.chunks_in_use(), 1);
        assert_eq!(arena.capacity_bytes(), CHUNK_BYTES);
        // The second chunk is current and full, so the next record goes to
        // a new buffer under the released chunk's number.
        let filler: Vec<Location> = (5..8).map(|id| arena.append(1, &body(id, record - 4))).collect();
        let reused = arena.append(1, &body(8, record - 4));
        assert_eq!(filler[0].chunk(), 1);
        assert_eq!(reused.chunk(), 0);
        assert_eq!(arena.chunks_in_use(), 2);
        assert_eq!(live_ids(&arena), [8, 4, 5, 6, 7]);
    }

    #[test]
    fn compacted_chunk_is_filled_before_new_one() {
        let mut arena = Arena::default();
        let record = CHUNK_BYTES / 8;
        let first_chunk: Vec<Location> = (0..8).map(|id| arena.append(1, &body(id, record - 4))).collect();
        let second_chunk: Vec<Location> = (8..16).map(|id| arena.append(1, &body(id, record - 4))).collect();
        for &location in &first_chunk[..5] {
            arena.set_state(location, 0);
        }
        arena.tidy(|_, _, _, _| {});

        let next = arena.append(1, &body(16, record - 4));

        assert_eq!(second_chunk[7].chunk(), 1);
        assert_eq!(next.chunk(), 0, "the compacted chunk has room for five records");
        assert_eq!(next.offset(), 3 * record);
        assert_eq!(arena.chunks_in_use(), 2);
    }

    #[test]
    fn oversized_record_gets_own_chunk() {
        let mut arena = Arena::default();
        let small = arena.append(1, &body(1, 10));
        let large = arena.append(1, &body(2, CHUNK_BYTES + 1));
        let after = arena.append(1, &body(3, 10));

        assert_eq!(arena.record(large), (1, &body(2, CHUNK_BYTES + 1)[..]));
        assert_eq!((small.chunk(), large.chunk(), after.chunk()), (0, 1, 0));

        arena.set_state(large, 0);
        arena.tidy(|_, _, _, _| {});

        assert_eq!(arena.chunks_in_use(), 1);
        assert_eq!(live_ids(&arena), [1, 3]);
    }

    #[test]
    fn scan_skips_chunks_stamped_later() {
        let mut arena = Arena::default();
        let record = CHUNK_BYTES / 4;
        // Chunk 0 contains stamps 0 to 3 and chunk 1 stamps 10 to 13.
        for id in 0..8u8 {
            let stamp = if id < 4 { i64::from(id) } else { i64::from(id) + 6 };
            arena.append_stamped(1, &body(id, record - 4), stamp);
        }

        let mut visited = Vec::new();
        arena.scan_stamped_before(2, |_, _, body| {
            visited.push(body[0]);
            Some(i64::from(body[0]).max(2))
        });
        assert_eq!(visited, [0, 1, 2, 3], "chunk 1 has nothing stamped before 2");

        // The visit reported 2 as chunk 0's oldest stamp, so a scan before 2
        // skips it now, and one before 11 reads both chunks.
        let mut visited = Vec::new();
        arena.scan_stamped_before(2, |_, _, body| {
            visited.push(body[0]);
            None
        });
        assert!(visited.is_empty(), "{visited:?}");
        let mut visited = Vec::new();
        arena.scan_stamped_before(11, |_, _, body| {
            visited.push(body[0]);
            Some(11)
        });
        assert_eq!(visited, [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn dead_current_chunk_keeps_buffer() {
        let mut arena = Arena::default();
        let only = arena.append(1, &body(1, 10));
        arena.set_state(only, 0);

        arena.tidy(|_, _, _, _| {});
        let next = arena.append(1, &body(2, 10));

        assert_eq!(next, only, "the emptied chunk is filled from its start");
        assert_eq!(arena.chunks_in_use(), 1);
        assert_eq!(live_ids(&arena), [2]);
    }
}
