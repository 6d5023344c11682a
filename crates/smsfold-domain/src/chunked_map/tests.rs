//! Tests of the chunked map with chunks smaller than its first chunk, and a
//! property that random operations leave it equal to a `HashMap`.

use proptest::prelude::*;

use super::*;

/// Four entries per chunk, fewer than `FIRST_CHUNK_LEN`.
type SmallMap = ChunkedMap<u64, u32, 2>;

fn map_of(count: u64) -> SmallMap {
    let mut map = SmallMap::default();
    for key in 0..count {
        map.insert(key, key as u32 * 10);
    }
    map
}

/// Checks that the index contains one slot per entry and that it points at
/// the entry's position.
fn assert_indexed<const CHUNK_BITS: u32>(map: &ChunkedMap<u64, u32, CHUNK_BITS>) {
    assert_eq!(map.index_len(), map.chunks().iter().map(Vec::len).sum::<usize>());
    for position in 0..map.len() as u32 {
        let entry = map.entry_at(position);
        assert_eq!(map.find(&entry.key), Some(position), "entry at position {position}");
    }
}

#[test]
fn small_chunks_start_full_size() {
    let map = map_of(9);

    assert_eq!(SmallMap::CHUNK_LEN, 4);
    assert_eq!(map.chunks().len(), 3);
    assert!(map.chunks().iter().all(|chunk| chunk.capacity() == 4));
    assert_eq!(map.chunks()[2].len(), 1);
    for key in 0..9 {
        assert_eq!(map.get(&key), Some(&(key as u32 * 10)), "key {key}");
    }
    assert_indexed(&map);

    let listed = map.chunks().capacity() * std::mem::size_of::<Vec<Entry<u64, u32>>>();
    let entries = 12 * std::mem::size_of::<Entry<u64, u32>>();
    assert_eq!(map.allocation_size(), map.index_allocation_size() + entries + listed);
}

#[test]
fn insert_returns_replaced_value() {
    let mut map = map_of(5);

    assert_eq!(map.insert(3, 99), Some(30));
    assert_eq!(map.insert(5, 50), None);

    assert_eq!(map.len(), 6);
    assert_eq!(map.get(&3), Some(&99));
    assert_eq!(map.get(&5), Some(&50));
    assert_indexed(&map);
}

#[test]
fn get_mut_changes_value_in_place() {
    let mut map = map_of(6);

    *map.get_mut(&4).unwrap() = 7;

    assert_eq!(map.get(&4), Some(&7));
    assert_eq!(map.get(&3), Some(&30));
    assert!(map.get_mut(&6).is_none());
    assert_eq!(map.len(), 6);
}

#[test]
fn remove_across_small_chunks() {
    let mut map = map_of(5);

    // The fifth entry, alone in the second chunk, moves to position 1.
    assert_eq!(map.remove(&1), Some(10));

    assert_eq!(map.chunks().len(), 1);
    assert_eq!(map.entry_at(1).key, 4);
    assert_eq!(map.get(&4), Some(&40));
    assert!(map.get(&1).is_none());
    assert!(map.remove(&1).is_none());
    assert_indexed(&map);
}

#[test]
fn empty_map_allocates_nothing() {
    let map = SmallMap::default();

    assert!(map.is_empty());
    assert!(map.get(&0).is_none());
    assert_eq!(map.iter().count(), 0);
    assert_eq!(map.allocation_size(), 0);
}

/// One operation of the property below.
#[derive(Debug, Clone)]
enum Operation {
    Insert(u64, u32),
    Remove(u64),
    Update(u64, u32),
    /// Keeps the entries whose key leaves this remainder modulo 3.
    Retain(u64),
}

fn operation() -> impl Strategy<Value = Operation> {
    // Few keys, so that operations often hit a present key.
    let key = 0u64..40;
    prop_oneof![
        4 => (key.clone(), any::<u32>()).prop_map(|(key, value)| Operation::Insert(key, value)),
        2 => key.clone().prop_map(Operation::Remove),
        1 => (key, any::<u32>()).prop_map(|(key, value)| Operation::Update(key, value)),
        1 => (0u64..3).prop_map(Operation::Retain),
    ]
}

proptest! {
    #[test]
    fn matches_hash_map(operations in proptest::collection::vec(operation(), 1..200)) {
        let mut map = SmallMap::default();
        let mut expected = std::collections::HashMap::new();

        for operation in operations {
            match operation {
                Operation::Insert(key, value) => {
                    prop_assert_eq!(map.insert(key, value), expected.insert(key, value));
                }
                Operation::Remove(key) => {
                    prop_assert_eq!(map.remove(&key), expected.remove(&key));
                }
                Operation::Update(key, value) => {
                    if let Some(stored) = map.get_mut(&key) {
                        *stored = value;
                    }
                    if let Some(stored) = expected.get_mut(&key) {
                        *stored = value;
                    }
                }
                Operation::Retain(remainder) => {
                    let mut calls = 0;
                    map.retain(|key, _| {
                        calls += 1;
                        key % 3 != remainder
                    });
                    prop_assert_eq!(calls, expected.len());
                    expected.retain(|key, _| key % 3 != remainder);
                }
            }
            prop_assert_eq!(map.len(), expected.len());
        }

        let mut entries: Vec<(u64, u32)> = map.iter().map(|(&key, &value)| (key, value)).collect();
        entries.sort_unstable();
        let mut expected_entries: Vec<(u64, u32)> = expected.into_iter().collect();
        expected_entries.sort_unstable();
        prop_assert_eq!(entries, expected_entries);
        let full_chunks = map.chunks().iter().rev().skip(1).all(|chunk| chunk.len() == SmallMap::CHUNK_LEN);
        prop_assert!(full_chunks, "every chunk but the last is full");
        prop_assert!(map.chunks().last().is_none_or(|chunk| !chunk.is_empty()), "the last chunk is not empty");
        assert_indexed(&map);
    }
}
