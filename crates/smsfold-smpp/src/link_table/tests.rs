use super::*;
use crate::join::link_join_keys;
use crate::link_record::normalize_carrier_id;

/// Adds a link as the join does, with its carrier id normalized.
fn insert<L: LinkData>(table: &mut LinkTable<L>, join_key: &str, carrier_id: &str, sent_at: i64, data: L) {
    let mut link = Link::new(carrier_id, sent_at, &format!("EV{sent_at:016x}-{sent_at}"), data);
    normalize_carrier_id(&mut link.carrier_id);
    table.insert(join_key, &link);
}

/// Adds a carrier id under every key the worker publishes it under.
fn insert_sent<L: LinkData + Clone>(table: &mut LinkTable<L>, carrier_id: &str, sent_at: i64, data: L) {
    for join_key in link_join_keys(carrier_id) {
        insert(table, &join_key, carrier_id, sent_at, data.clone());
    }
}

fn table(links: &[(&str, &str)]) -> LinkTable<usize> {
    let mut table = LinkTable::default();
    for (number, (join_key, carrier_id)) in links.iter().enumerate() {
        insert(&mut table, join_key, carrier_id, 1, number);
    }
    table
}

fn data_under(table: &LinkTable<usize>, join_key: &str) -> Vec<usize> {
    let mut data: Vec<usize> = table.under(join_key).map(|link| link.data()).collect();
    data.sort();
    data
}

/// Returns the join keys of every link, sorted.
fn join_keys<L>(table: &LinkTable<L>) -> Vec<String> {
    let mut keys: Vec<String> = table.iter().map(|link| link.join_key().into_owned()).collect();
    keys.sort();
    keys
}

/// Returns the carrier id of link `number`: an all-digit id for every third,
/// which the worker adds under two keys, else a hexadecimal or text id. The
/// three forms never have the same spelling.
fn carrier_id(number: u64) -> String {
    match number % 3 {
        0 => format!("9{:019}", number * 7_919),
        1 => format!("{:016X}", number * 104_729),
        _ => format!("carrier{}-{number:010x}", number % 4),
    }
}

/// Returns the data of link `number`, shaped like a message id and a
/// segment.
fn target(number: u64) -> (String, u16) {
    (format!("SM{number:032x}"), (number % 5) as u16)
}

/// Checks that `table` contains the links of exactly the numbers in
/// `live`, as [`insert_sent`] added them with `sent_at` equal to the number.
fn assert_contains_exactly(table: &LinkTable<(String, u16)>, live: impl Iterator<Item = u64> + Clone) {
    let mut expected_len = 0;
    for number in live.clone() {
        let id = carrier_id(number);
        let spelling = crate::carrier_spelling(&id);
        for join_key in link_join_keys(&id) {
            expected_len += 1;
            let link = table.find(&join_key, &spelling).unwrap_or_else(|| panic!("{join_key} {spelling} is missing"));
            assert_eq!(link.data(), target(number), "{join_key}");
            assert_eq!(link.sent_at(), number as i64);
            assert_eq!(link.sent_event_id(), format!("EV{number:016x}-{number}"));
            assert_eq!(link.join_key(), join_key);
            let under: Vec<(String, u16)> = table.under(&join_key).map(|link| link.data()).collect();
            assert!(under.contains(&target(number)), "{join_key} finds its link");
        }
    }
    assert_eq!(table.len(), expected_len);
    assert_eq!(table.iter().count(), expected_len);
}

#[test]
fn under_returns_links_of_key() {
    let table = table(&[("n:e", "E"), ("n:e", "14"), ("n:f", "F")]);

    assert_eq!(data_under(&table, "n:e"), [0, 1]);
    assert_eq!(data_under(&table, "n:f"), [2]);
    assert!(data_under(&table, "n:10").is_empty());
    assert_eq!(table.len(), 3);
}

#[test]
fn remove_keeps_other_links_findable() {
    let mut table = table(&[("n:a", "A"), ("n:b", "B"), ("n:c", "C")]);

    let removed = table.remove("n:a", "a");

    assert!(removed);
    assert_eq!(table.len(), 2);
    assert!(data_under(&table, "n:a").is_empty());
    assert_eq!(data_under(&table, "n:b"), [1]);
    assert_eq!(data_under(&table, "n:c"), [2]);
    assert_eq!(table.find("n:c", "c").map(|link| link.data()), Some(2));
}

#[test]
fn remove_missing_link_is_false() {
    let mut table = table(&[("n:a", "A")]);

    assert!(!table.remove("n:a", "b"));
    assert!(!table.remove("n:b", "a"));
    assert_eq!(table.len(), 1);
}

#[test]
fn links_sent_before_horizon_are_removed() {
    let mut table = LinkTable::default();
    insert(&mut table, "n:a", "A", 10, 0usize);
    insert(&mut table, "n:b", "B", 30, 1);
    insert(&mut table, "n:c", "C", 20, 2);
    insert(&mut table, "t:x-1", "X-1", 40, 3);

    let mut removed = table.remove_sent_before(25);
    removed.sort();

    assert_eq!(removed, [("n:a".to_owned(), "a".to_owned()), ("n:c".to_owned(), "c".to_owned())]);
    assert_eq!(data_under(&table, "n:b"), [1]);
    assert_eq!(data_under(&table, "t:x-1"), [3]);
    assert!(data_under(&table, "n:a").is_empty());
    assert!(data_under(&table, "n:c").is_empty());
    assert_eq!(table.len(), 2);

    assert!(table.remove_sent_before(25).is_empty());
    // A link added after a scan, sent earlier than the links it scanned,
    // is still found.
    insert(&mut table, "n:d", "D", 5, 4);
    assert_eq!(table.remove_sent_before(25), [("n:d".to_owned(), "d".to_owned())]);
    assert_eq!(table.len(), 2);
}

#[test]
fn written_key_is_found() {
    // 305419896 is 0x12345678, whose hexadecimal form has no letter, so the
    // worker also adds it under that form read as decimal: a key the id
    // does not determine.
    let mut table = LinkTable::default();
    insert_sent(&mut table, "305419896", 1, 9usize);

    assert_eq!(join_keys(&table), ["n:12345678", "n:305419896", "n:bc614e"]);
    assert_eq!(data_under(&table, "n:bc614e"), [9]);
    assert!(table.remove("n:bc614e", "305419896"));
    assert_eq!(join_keys(&table), ["n:12345678", "n:305419896"]);
}

#[test]
fn all_digit_id_shares_one_record() {
    let mut one_key = LinkTable::default();
    insert(&mut one_key, "n:1e33", "7731", 5, target(1));
    let mut table = LinkTable::default();

    insert_sent(&mut table, "7731", 5, target(1));

    assert_eq!(join_keys(&table), ["n:1e33", "n:7731"]);
    assert_eq!(table.len(), 2);
    assert_eq!(table.arena.live_bytes(), one_key.arena.live_bytes(), "both keys use one record");
    assert_eq!(table.find("n:1e33", "7731").map(|link| link.data()), Some(target(1)));
    assert_eq!(table.find("n:7731", "7731").map(|link| link.data()), Some(target(1)));
}

#[test]
fn shared_record_outlives_one_key() {
    let mut table = LinkTable::default();
    insert_sent(&mut table, "7731", 5, target(1));
    let record_bytes = table.arena.live_bytes();

    assert!(table.remove("n:1e33", "7731"));

    assert_eq!(join_keys(&table), ["n:7731"]);
    assert_eq!(table.find("n:7731", "7731").map(|link| link.sent_at()), Some(5));
    assert_eq!(table.arena.live_bytes(), record_bytes);
    assert!(table.remove("n:7731", "7731"));
    assert_eq!(table.len(), 0);
    assert_eq!(table.arena.live_bytes(), 0);
}

#[test]
fn different_links_keep_own_records() {
    let mut table = LinkTable::default();
    insert(&mut table, "n:1e33", "7731", 5, target(1));
    let record_bytes = table.arena.live_bytes();

    insert(&mut table, "n:7731", "7731", 5, target(2));
    insert(&mut table, "n:1e33", "1E33", 5, target(1));

    assert_eq!(table.arena.live_bytes(), 3 * record_bytes);
    assert_eq!(table.find("n:7731", "7731").map(|link| link.data()), Some(target(2)));
    assert_eq!(data_under_target(&table, "n:1e33"), [target(1), target(1)]);
}

fn data_under_target(table: &LinkTable<(String, u16)>, join_key: &str) -> Vec<(String, u16)> {
    let mut data: Vec<(String, u16)> = table.under(join_key).map(|link| link.data()).collect();
    data.sort();
    data
}

#[test]
fn key_added_back_joins_shared_record() {
    let mut table = LinkTable::default();
    insert_sent(&mut table, "7731", 5, target(1));
    let record_bytes = table.arena.live_bytes();

    table.remove("n:7731", "7731");
    insert(&mut table, "n:7731", "7731", 5, target(1));

    assert_eq!(table.arena.live_bytes(), record_bytes);
    assert_eq!(join_keys(&table), ["n:1e33", "n:7731"]);
}

#[test]
fn many_links_round_trip() {
    let mut table = LinkTable::default();
    for number in 0..30_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }

    assert_contains_exactly(&table, 0..30_000);
    assert!(table.arena.chunks_in_use() > 4, "the links fill several chunks");
}

#[test]
fn compaction_keeps_links_findable() {
    let mut table = LinkTable::default();
    for number in 0..20_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }
    let bytes_before = table.arena.live_bytes();

    let removed = table.retain(|link| link.sent_at() % 4 == 0);

    assert!(!removed.is_empty());
    assert_contains_exactly(&table, (0..20_000).step_by(4));
    assert!(table.arena.live_bytes() < bytes_before / 3, "three quarters of the records are gone");
    for number in [1u64, 2, 3, 19_999] {
        let id = carrier_id(number);
        for join_key in link_join_keys(&id) {
            assert!(table.find(&join_key, &crate::carrier_spelling(&id)).is_none(), "{join_key}");
        }
    }
}

#[test]
fn freed_space_is_reused() {
    let mut table = LinkTable::default();
    for number in 0..20_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }
    let capacity = table.arena.capacity_bytes();
    table.retain(|link| link.sent_at() % 4 == 0);

    for number in 20_000..32_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }

    assert_eq!(table.arena.capacity_bytes(), capacity, "the compacted chunks take the new links");
    assert_contains_exactly(&table, (0..20_000).step_by(4).chain(20_000..32_000));
}

#[test]
fn eviction_releases_old_chunks() {
    let mut table = LinkTable::default();
    for number in 0..40_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }
    let chunks = table.arena.chunks_in_use();

    let evicted = table.remove_sent_before(30_000);

    let evicted_keys: usize = (0..30_000).map(|number| link_join_keys(&carrier_id(number)).len()).sum();
    assert_eq!(evicted.len(), evicted_keys);
    assert!(table.arena.chunks_in_use() <= chunks / 4 + 2, "{} of {chunks} chunks left", table.arena.chunks_in_use());
    assert_contains_exactly(&table, 30_000..40_000);
    for number in 40_000..70_000 {
        insert_sent(&mut table, &carrier_id(number), number as i64, target(number));
    }
    assert!(table.arena.chunks_in_use() <= chunks + 1, "released chunks are reused");
    assert_contains_exactly(&table, 30_000..70_000);
}

#[test]
fn long_strings_round_trip() {
    let mut table = LinkTable::default();
    let event_id = "event ".repeat(60_000);
    let message_id = "é".repeat(40_000);
    let carrier_id = format!("T:{}", "x".repeat(5_000));
    let join_key = format!("t:{}", carrier_id.to_ascii_lowercase());
    insert(&mut table, "n:a", "A", 1, (String::from("small"), 0u16));

    let mut link = Link::new(&carrier_id, 2, &event_id, (message_id.clone(), 3u16));
    normalize_carrier_id(&mut link.carrier_id);
    table.insert(&join_key, &link);

    let stored = table.find(&join_key, &carrier_id.to_ascii_lowercase()).expect("the long link");
    assert_eq!(stored.sent_event_id(), event_id);
    assert_eq!(stored.data(), (message_id, 3));
    assert_eq!(stored.join_key(), join_key);
    assert_eq!(table.arena.chunks_in_use(), 2, "a record larger than a chunk gets its own");
    assert!(table.remove(&join_key, &carrier_id.to_ascii_lowercase()));
    assert_eq!(table.arena.chunks_in_use(), 1);
    assert_eq!(table.find("n:a", "a").map(|link| link.data()), Some((String::from("small"), 0)));
}
