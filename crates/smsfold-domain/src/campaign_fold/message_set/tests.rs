//! Tests of a campaign's message set: the entry size, the key packing, and
//! the memory of small and large sets.

use super::*;
use crate::chunked_map::{Entry, FIRST_CHUNK_LEN};

const CHUNK_LEN: usize = ChunkedMap::<PackedKey, MessageEntry, CHUNK_BITS>::CHUNK_LEN;
const ENTRY_BYTES: usize = std::mem::size_of::<Entry<PackedKey, MessageEntry>>();
const CHUNK_HANDLE_BYTES: usize = std::mem::size_of::<Vec<Entry<PackedKey, MessageEntry>>>();

fn key(n: u32) -> MessageKey {
    MessageKey::of(&format!("SM{n:08}"))
}

/// Builds an entry whose fields derive from `n`, so that a mixed-up entry
/// shows.
fn entry(n: u32) -> MessageEntry {
    MessageEntry { status: MessageStatus::ALL[n as usize % MessageStatus::ALL.len()], segments: (n % 9) as u16 + 1 }
}

fn set_of(count: u32) -> MessageSet {
    let mut set = MessageSet::default();
    for n in 0..count {
        set.insert(key(n), entry(n));
    }
    set
}

#[test]
fn entry_is_twenty_bytes() {
    assert_eq!(ENTRY_BYTES, 20);
    assert_eq!(std::mem::align_of::<Entry<PackedKey, MessageEntry>>(), 4);
}

#[test]
fn packed_key_round_trips() {
    let keys = [key(0), key(1), MessageKey::of(""), MessageKey::from_bytes([0xff; 16])];
    for original in keys {
        let packed = PackedKey::pack(original);
        assert_eq!(packed.unpack(), original);
        assert_eq!(packed.0[0], u32::from_le_bytes(original.to_bytes()[..4].try_into().unwrap()));
    }
    assert_ne!(PackedKey::pack(key(0)), PackedKey::pack(key(1)));
}

#[test]
fn inserted_messages_found() {
    let set = set_of(600);

    for n in 0..600 {
        assert_eq!(set.get(&key(n)), Some(&entry(n)), "message {n}");
    }
    assert!(set.get(&key(600)).is_none());
}

#[test]
fn insert_replaces_and_returns_old() {
    let mut set = set_of(3);

    let replaced = set.insert(key(1), entry(7));

    assert_eq!(replaced, Some(entry(1)));
    assert_eq!(set.get(&key(1)), Some(&entry(7)));
    assert_eq!(set.keys().count(), 3);
    assert_eq!(set.insert(key(3), entry(3)), None);
}

#[test]
fn get_mut_changes_entry() {
    let mut set = set_of(3);

    *set.get_mut(&key(2)).unwrap() = MessageEntry { status: MessageStatus::Delivered, segments: 4 };

    assert_eq!(set.get(&key(2)), Some(&MessageEntry { status: MessageStatus::Delivered, segments: 4 }));
    assert_eq!(set.get(&key(0)), Some(&entry(0)));
    assert!(set.get_mut(&key(3)).is_none());
}

#[test]
fn keys_returns_every_message() {
    let set = set_of(1000);

    let mut keys: Vec<MessageKey> = set.keys().collect();
    keys.sort_unstable();
    let mut expected: Vec<MessageKey> = (0..1000).map(key).collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn small_set_holds_first_chunk_only() {
    let set = set_of(1);

    // One message: an 8-entry first chunk of 160 bytes, a list of four chunk
    // handles, and the index. A whole 5 KiB chunk is not allocated.
    assert_eq!(set.entries.chunks()[0].capacity(), FIRST_CHUNK_LEN);
    let expected = set.entries.index_allocation_size() + FIRST_CHUNK_LEN * ENTRY_BYTES + 4 * CHUNK_HANDLE_BYTES;
    assert_eq!(set.allocation_size(), expected);
    assert!(set.allocation_size() < 300, "{} bytes for one message", set.allocation_size());
}

#[test]
fn large_set_costs_under_thirty_bytes_each() {
    let count = 20 * CHUNK_LEN as u32 + 1;

    let set = set_of(count);

    // 21 chunks of 256 entries, of which the last contains one.
    assert_eq!(set.entries.chunks().len(), 21);
    assert!(set.entries.chunks().iter().all(|chunk| chunk.capacity() == CHUNK_LEN));
    let listed = set.entries.chunks().capacity() * CHUNK_HANDLE_BYTES;
    let expected = set.entries.index_allocation_size() + 21 * CHUNK_LEN * ENTRY_BYTES + listed;
    assert_eq!(set.allocation_size(), expected);
    // 5,121 positions take an index of 8,192 four-byte buckets with a
    // control byte each, and the group-width tail of control bytes.
    assert!(set.entries.index_allocation_size() >= 8192 * 5);
    assert!(set.allocation_size() < 30 * count as usize, "{} bytes", set.allocation_size());
}
