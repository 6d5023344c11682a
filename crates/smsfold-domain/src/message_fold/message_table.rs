//! The message fold's table of live messages: each message's key and state
//! in a dense list of fixed-size chunks, found through a hash index of
//! their positions.
//!
//! A hashbrown (0.16) `HashMap<MessageKey, MessageState>` keeps its
//! 40-byte entries in its buckets, up to 2.3 buckets per entry, and its
//! growth copies every entry. The chunked map stores only the entries in
//! its chunks and 5 bytes per index bucket, and its growth copies no
//! entry; see `crate::chunked_map`.

use super::MessageState;
use crate::chunked_map::ChunkedMap;
use crate::key::MessageKey;

/// The number of position bits that address an entry within a chunk:
/// 2,048 entries of 40 bytes, 80 KiB.
const CHUNK_BITS: u32 = 11;

/// The live messages of one fold, by key.
///
/// Its u32 positions address 2^32 messages, which a fold never reaches,
/// because each of its messages has its own u32 offset in the fold's id
/// arena.
pub(super) type MessageTable = ChunkedMap<MessageKey, MessageState, CHUNK_BITS>;

#[cfg(test)]
mod tests;
