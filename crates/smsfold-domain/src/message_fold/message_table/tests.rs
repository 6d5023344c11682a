//! Tests of the message table: lookups after inserts and removals, the
//! entry that a removal moves, and the chunks at their boundaries.

use super::*;
use crate::chunked_map::{Entry, FIRST_CHUNK_LEN};

const CHUNK_LEN: usize = MessageTable::CHUNK_LEN;

fn key(n: u32) -> MessageKey {
    MessageKey::of(&format!("SM{n:08}"))
}

/// Builds a state whose every field derives from `n`, so that a mixed-up
/// entry shows.
fn state(n: u32) -> MessageState {
    MessageState {
        status_at: i64::from(n) * 1000,
        campaign: n,
        error_code: n + 1,
        id_offset: n * 2,
        segments: (n % 7) as u16,
        status: (n % 5) as u8,
        flags: (n % 2) as u8,
    }
}

fn table_of(count: u32) -> MessageTable {
    let mut table = MessageTable::default();
    for n in 0..count {
        table.insert(key(n), state(n));
    }
    table
}

/// Checks that the index contains one slot per entry and that it points at
/// the entry's position.
fn assert_indexed(table: &MessageTable) {
    assert_eq!(table.index_len(), table.chunks().iter().map(Vec::len).sum::<usize>());
    for position in 0..table.len() as u32 {
        let entry = table.entry_at(position);
        assert_eq!(table.find(&entry.key), Some(position), "entry at position {position}");
    }
}

/// Checks that the table contains exactly the messages `0..count` for which
/// `present` is true, each with its own state.
fn assert_contains(table: &MessageTable, count: u32, present: impl Fn(u32) -> bool) {
    for n in 0..count {
        let expected = present(n).then(|| state(n).id_offset);
        assert_eq!(table.get(&key(n)).map(|state| state.id_offset), expected, "message {n}");
        if present(n) {
            let found = table.get(&key(n)).unwrap();
            assert_eq!(found.status_at, state(n).status_at, "message {n}");
            assert_eq!(found.error_code, state(n).error_code, "message {n}");
            assert_eq!(found.segments, state(n).segments, "message {n}");
        }
    }
}

#[test]
fn entry_is_forty_bytes() {
    assert_eq!(std::mem::size_of::<Entry<MessageKey, MessageState>>(), 40);
}

#[test]
fn inserted_messages_found() {
    let table = table_of(100);

    assert_eq!(table.len(), 100);
    assert!(!table.is_empty());
    assert_contains(&table, 100, |_| true);
    assert!(table.get(&key(100)).is_none());
    assert_indexed(&table);
}

#[test]
fn empty_table_finds_nothing() {
    let mut table = MessageTable::default();

    assert!(table.is_empty());
    assert!(table.get(&key(0)).is_none());
    assert!(table.remove(&key(0)).is_none());
    assert_eq!(table.iter().count(), 0);
    assert_eq!(table.allocation_size(), 0);
}

#[test]
fn insert_replaces_state() {
    let mut table = table_of(3);

    table.insert(key(1), state(41));

    assert_eq!(table.len(), 3);
    assert_eq!(table.get(&key(1)).map(|state| state.campaign), Some(41));
    assert_eq!(table.get(&key(0)).map(|state| state.campaign), Some(0));
    assert_eq!(table.get(&key(2)).map(|state| state.campaign), Some(2));
    assert_indexed(&table);
}

#[test]
fn remove_moves_last_entry() {
    let mut table = table_of(3);

    let removed = table.remove(&key(0));

    assert_eq!(removed.map(|state| state.campaign), Some(0));
    assert_eq!(table.len(), 2);
    assert_eq!(table.entry_at(0).key, key(2));
    assert_eq!(table.entry_at(1).key, key(1));
    assert_contains(&table, 3, |n| n != 0);
    assert_indexed(&table);
}

#[test]
fn remove_last_entry_moves_nothing() {
    let mut table = table_of(3);

    let removed = table.remove(&key(2));

    assert_eq!(removed.map(|state| state.campaign), Some(2));
    assert_eq!(table.entry_at(0).key, key(0));
    assert_eq!(table.entry_at(1).key, key(1));
    assert_contains(&table, 3, |n| n != 2);
    assert_indexed(&table);
}

#[test]
fn removed_message_can_return() {
    let mut table = table_of(10);
    table.remove(&key(4));

    table.insert(key(4), state(4));

    assert_eq!(table.len(), 10);
    assert_eq!(table.entry_at(9).key, key(4));
    assert_contains(&table, 10, |_| true);
    assert_indexed(&table);
}

#[test]
fn first_chunk_doubles_to_chunk_len() {
    let mut table = table_of(1);
    assert_eq!(table.chunks()[0].capacity(), FIRST_CHUNK_LEN);

    for n in 1..=FIRST_CHUNK_LEN as u32 {
        table.insert(key(n), state(n));
    }
    assert_eq!(table.chunks()[0].capacity(), 2 * FIRST_CHUNK_LEN);

    for n in FIRST_CHUNK_LEN as u32 + 1..CHUNK_LEN as u32 {
        table.insert(key(n), state(n));
    }
    assert_eq!(table.chunks().len(), 1);
    assert_eq!(table.chunks()[0].len(), CHUNK_LEN);
    assert_eq!(table.chunks()[0].capacity(), CHUNK_LEN);
}

#[test]
fn later_chunks_have_chunk_len() {
    let count = 2 * CHUNK_LEN as u32 + 1;

    let table = table_of(count);

    assert_eq!(table.chunks().len(), 3);
    assert!(table.chunks().iter().all(|chunk| chunk.capacity() == CHUNK_LEN));
    assert_eq!(table.chunks()[2].len(), 1);
    assert_eq!(table.entry_at(count - 1).key, key(count - 1));
    assert_contains(&table, count, |_| true);
    assert_indexed(&table);

    let entries = 3 * CHUNK_LEN * std::mem::size_of::<Entry<MessageKey, MessageState>>();
    let listed = table.chunks().capacity() * std::mem::size_of::<Vec<Entry<MessageKey, MessageState>>>();
    assert_eq!(table.allocation_size(), table.index_allocation_size() + entries + listed);
}

#[test]
fn removal_across_chunks_frees_last_chunk() {
    let count = CHUNK_LEN as u32 + 1;
    let mut table = table_of(count);
    assert_eq!(table.chunks().len(), 2);

    // The only entry of the second chunk moves to the first chunk's start.
    let removed = table.remove(&key(0));

    assert_eq!(removed.map(|state| state.campaign), Some(0));
    assert_eq!(table.chunks().len(), 1);
    assert_eq!(table.entry_at(0).key, key(count - 1));
    assert_contains(&table, count, |n| n != 0);
    assert_indexed(&table);

    // The next insert starts a second chunk again, at the chunk size.
    table.insert(key(count), state(count));
    assert_eq!(table.chunks().len(), 2);
    assert_eq!(table.chunks()[1].capacity(), CHUNK_LEN);
    assert_eq!(table.entry_at(CHUNK_LEN as u32).key, key(count));
}

#[test]
fn removing_everything_frees_chunks() {
    let count = CHUNK_LEN as u32 + 10;
    let mut table = table_of(count);

    for n in 0..count {
        assert_eq!(table.remove(&key(n)).map(|state| state.campaign), Some(n));
    }

    assert!(table.is_empty());
    assert!(table.chunks().is_empty());
    assert_contains(&table, count, |_| false);
}

#[test]
fn retain_sees_each_message_once() {
    let count = 2 * CHUNK_LEN as u32 + 100;
    let mut table = table_of(count);
    let mut seen = vec![0u32; count as usize];

    table.retain(|_, state| {
        seen[state.campaign as usize] += 1;
        state.campaign % 3 == 0
    });

    assert!(seen.iter().all(|&times| times == 1));
    assert_eq!(table.len(), (0..count).filter(|n| n % 3 == 0).count());
    assert_contains(&table, count, |n| n % 3 == 0);
    assert_indexed(&table);
    // 1,399 entries remain, and they fit in the first chunk.
    assert_eq!(table.chunks().len(), 1);
}

#[test]
fn retain_keeps_state_changes() {
    let mut table = table_of(10);

    table.retain(|_, state| {
        state.error_code = 500 + state.campaign;
        state.campaign < 5
    });

    assert_eq!(table.len(), 5);
    for n in 0..5 {
        assert_eq!(table.get(&key(n)).map(|state| state.error_code), Some(500 + n));
    }
    assert_indexed(&table);
}

#[test]
fn iter_and_values_mut_see_every_message() {
    let mut table = table_of(CHUNK_LEN as u32 + 5);

    for state in table.values_mut() {
        state.segments = 9;
    }

    let mut campaigns: Vec<u32> = table.iter().map(|(_, state)| state.campaign).collect();
    campaigns.sort_unstable();
    assert_eq!(campaigns, (0..CHUNK_LEN as u32 + 5).collect::<Vec<_>>());
    assert!(table.iter().all(|(key_of_entry, state)| *key_of_entry == key(state.campaign)));
    assert!(table.iter().all(|(_, state)| state.segments == 9));
}
