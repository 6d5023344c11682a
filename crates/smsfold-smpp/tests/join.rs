//! The carrier join: the keys each side is published under, and the
//! matching of receipts to links within one partition. Ids are made up.

use proptest::prelude::*;
use smsfold_smpp::{
    carrier_id_keys, carrier_spelling, link_join_keys, receipt_join_key, CarrierJoin, Joined, Link, MatchRule, Pending,
};

/// The message segment a link points at, as the worker would store it.
type Target = (String, u16);

fn target(message_id: &str, segment: u16) -> Target {
    (message_id.to_owned(), segment)
}

fn link(carrier_id: &str, sent_at: i64, target: Target) -> Link<Target> {
    Link::new(carrier_id, sent_at, &format!("sent-{sent_at}"), target)
}

fn pending(carrier_id: &str, event_id: &str, occurred_at: i64) -> Pending<String> {
    Pending::new(carrier_id, event_id, occurred_at, event_id.to_owned())
}

/// Adds a sent carrier id under each of its keys, as the worker publishes it.
fn add_sent(join: &mut CarrierJoin<Target, String>, carrier_id: &str, sent_at: i64, target: Target) {
    for key in link_join_keys(carrier_id) {
        join.add_link(&key, link(carrier_id, sent_at, target.clone()));
    }
}

/// Returns the event ids of expired receipts, in the order returned.
fn event_ids(expired: &[(String, Pending<String>)]) -> Vec<&str> {
    expired.iter().map(|(_, pending)| pending.event_id.as_str()).collect()
}

fn offer(join: &mut CarrierJoin<Target, String>, carrier_id: &str, event_id: &str, at: i64) -> Joined<Target> {
    let key = receipt_join_key(carrier_id).expect("a carrier id with keys");
    join.add_receipt(&key, pending(carrier_id, event_id, at))
}

#[test]
fn hex_receipt_finds_decimal_sent_id() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "169552957", 1, target("m-1", 0));

    let joined = offer(&mut join, "0A1B2C3D", "r-1", 2);

    assert_eq!(joined, Joined::Matched { link: target("m-1", 0), rule: MatchRule::OtherBase });
}

#[test]
fn hex_without_letters_finds_decimal_sent_id() {
    // 0x12345678 is 305419896: the receipt writes it in hexadecimal with no
    // letter, so its first key is the decimal reading 12345678.
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "305419896", 1, target("m-1", 0));

    let joined = offer(&mut join, "12345678", "r-1", 2);

    assert_eq!(joined, Joined::Matched { link: target("m-1", 0), rule: MatchRule::OtherBase });
}

#[test]
fn receipt_before_link_waits() {
    let mut join = CarrierJoin::new();

    let joined = offer(&mut join, "55", "r-1", 1);
    let key = receipt_join_key("55").unwrap();
    let added = join.add_link(&key, link("55", 2, target("m-1", 0)));

    assert_eq!(joined, Joined::Pending);
    assert!(added.stored);
    assert_eq!(added.matched.len(), 1);
    assert_eq!((added.matched[0].0.event_id.as_str(), added.matched[0].1), ("r-1", MatchRule::SameSpelling));
    assert_eq!(join.len(), (1, 0));
}

#[test]
fn leading_zeros_and_case_are_same_spelling() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "0000004f2a", 1, target("m-1", 0));

    let joined = offer(&mut join, "4F2A", "r-1", 2);

    assert_eq!(joined, Joined::Matched { link: target("m-1", 0), rule: MatchRule::SameSpelling });
}

#[test]
fn same_spelling_beats_other_base() {
    // "10" as a receipt matches the sent id "10", the sent id "16" (0x10)
    // and the sent id "A" (decimal 10).
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "16", 1, target("m-16", 0));
    add_sent(&mut join, "A", 1, target("m-a", 0));
    add_sent(&mut join, "10", 1, target("m-10", 0));

    assert_eq!(
        offer(&mut join, "10", "r-1", 2),
        Joined::Matched { link: target("m-10", 0), rule: MatchRule::SameSpelling }
    );
}

#[test]
fn two_other_base_links_are_ambiguous() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "16", 1, target("m-16", 0));
    add_sent(&mut join, "A", 1, target("m-a", 0));

    assert_eq!(offer(&mut join, "10", "r-1", 2), Joined::Ambiguous { candidates: 2 });
}

#[test]
fn reused_id_goes_to_latest_sent() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "7731", 5, target("m-new", 0));
    let key = receipt_join_key("7731").unwrap();

    let older = join.add_link(&key, link("7731", 1, target("m-old", 0)));

    assert!(!older.stored, "an older sent event does not replace a newer one");
    assert_eq!(
        offer(&mut join, "7731", "r-1", 6),
        Joined::Matched { link: target("m-new", 0), rule: MatchRule::SameSpelling }
    );
}

#[test]
fn pending_expires_after_wait() {
    let mut join = CarrierJoin::new();
    offer(&mut join, "55", "r-1", 1_000);
    offer(&mut join, "56", "r-2", 5_000);

    let early = join.expire_pending(4_000);
    offer(&mut join, "57", "r-3", 5_001);
    let late = join.expire_pending(4_000);

    assert!(early.is_empty(), "r-1 waited exactly 4 s");
    assert_eq!(event_ids(&late), ["r-1"]);
    assert_eq!(join.len(), (0, 2));
}

#[test]
fn late_offered_old_receipt_expires() {
    let mut join = CarrierJoin::new();
    offer(&mut join, "55", "r-1", 10_000);
    assert!(join.expire_pending(4_000).is_empty());

    // An older receipt arriving after a scan still expires on the next one.
    offer(&mut join, "56", "r-old", 2_000);
    let expired = join.expire_pending(4_000);

    assert_eq!(event_ids(&expired), ["r-old"]);
    assert_eq!(join.len(), (0, 1));
}

#[test]
fn expired_receipts_leave_later_ones() {
    let mut join = CarrierJoin::new();
    offer(&mut join, "55", "r-1", 1_000);
    offer(&mut join, "56", "r-2", 3_000);
    offer(&mut join, "57", "r-3", 6_000);

    let first = join.expire_pending(4_000);
    offer(&mut join, "58", "r-4", 7_500);
    let second = join.expire_pending(4_000);

    assert_eq!(event_ids(&first), ["r-1"]);
    assert_eq!(event_ids(&second), ["r-2"]);
    assert_eq!(join.len(), (0, 2));
}

#[test]
fn repeated_receipt_waits_once() {
    let mut join = CarrierJoin::new();

    offer(&mut join, "55", "r-1", 1);
    offer(&mut join, "55", "r-1", 1);

    assert_eq!(join.len(), (0, 1));
}

#[test]
fn old_links_are_evicted() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "A1", 1_000, target("m-1", 0));
    add_sent(&mut join, "B2", 9_000, target("m-2", 0));

    let evicted = join.evict_links(5_000);

    assert_eq!(evicted, vec![(receipt_join_key("A1").unwrap(), "a1".to_owned())]);
    assert_eq!(offer(&mut join, "A1", "r-1", 9_001), Joined::Pending);
}

#[test]
fn key_collision_without_match_waits() {
    // The sent id "20" is published under 14 for a receipt "14" written in
    // hexadecimal (0x14 = 20); the receipt "e" is 14 too, but not 20.
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "20", 1, target("m-20", 0));

    let joined = offer(&mut join, "e", "r-1", 2);
    let key = receipt_join_key("e").unwrap();
    let added = join.add_link(&key, link("E", 3, target("m-e", 0)));

    assert_eq!(joined, Joined::Pending);
    assert_eq!(added.matched.len(), 1, "the link of the receipt's own id matches it");
    // "14" is 0x14 = 20 and also decimal 14 = 0xE: two messages, other base.
    assert_eq!(offer(&mut join, "14", "r-2", 4), Joined::Ambiguous { candidates: 2 });
}

#[test]
fn removed_link_no_longer_matches() {
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "4F2A", 1, target("m-1", 0));
    let key = receipt_join_key("4F2A").unwrap();

    let removed = join.remove_link(&key, "4f2a");
    let removed_again = join.remove_link(&key, "4f2a");

    assert!(removed);
    assert!(!removed_again, "nothing is left to remove");
    assert_eq!(join.len(), (0, 0));
    assert_eq!(offer(&mut join, "4F2A", "r-1", 2), Joined::Pending);
}

#[test]
fn remove_link_keeps_other_spellings() {
    // "16" and "A" both sit under the number 10, spelled apart.
    let mut join = CarrierJoin::new();
    add_sent(&mut join, "16", 1, target("m-16", 0));
    add_sent(&mut join, "A", 1, target("m-a", 0));
    let key = receipt_join_key("10").unwrap();

    assert!(join.remove_link(&key, "16"));

    assert_eq!(
        offer(&mut join, "10", "r-1", 2),
        Joined::Matched { link: target("m-a", 0), rule: MatchRule::OtherBase }
    );
}

#[test]
fn removed_pending_is_not_matched() {
    let mut join = CarrierJoin::new();
    offer(&mut join, "55", "r-1", 1);
    offer(&mut join, "55", "r-2", 1);
    let key = receipt_join_key("55").unwrap();

    assert!(join.remove_pending(&key, "r-1"));
    assert!(!join.remove_pending(&key, "r-1"), "nothing is left to remove");
    let added = join.add_link(&key, link("55", 2, target("m-1", 0)));

    let matched: Vec<&str> = added.matched.iter().map(|(pending, _)| pending.event_id.as_str()).collect();
    assert_eq!(matched, ["r-2"]);
}

#[test]
fn restored_link_replaces_same_spelling() {
    let mut join: CarrierJoin<Target, String> = CarrierJoin::new();
    let key = receipt_join_key("7731").unwrap();
    join.restore_link(&key, link("7731", 5, target("m-new", 0)));

    join.restore_link(&key, link("07731", 1, target("m-old", 0)));

    assert_eq!(join.len(), (1, 0));
    let stored: Vec<_> = join.links().map(|link| (link.spelling(), link.sent_at(), link.data())).collect();
    assert_eq!(stored, [("7731", 1, target("m-old", 0))], "the changelog's later record wins");
}

#[test]
fn spelling_keeps_text_ids() {
    assert_eq!(carrier_spelling(" Carrier-5C21D0 "), "carrier-5c21d0");
    assert_eq!(carrier_spelling("0000"), "0");
    assert_eq!(carrier_spelling("00x1"), "00x1");
}

/// An id as carriers write them: decimal or hexadecimal digits, either case,
/// with leading zeros at times.
fn id_strategy() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{1,12}", "0{0,3}[0-9A-Fa-f]{1,10}", "[0-9]{30,40}"]
}

proptest! {
    /// Every pair of ids that share a key meets under the receipt's one key.
    #[test]
    fn matching_ids_meet_under_receipt_key(receipt in id_strategy(), sent in id_strategy()) {
        let shares_key = carrier_id_keys(&receipt).matches(&carrier_id_keys(&sent));
        let key = receipt_join_key(&receipt).expect("a non-empty id");
        let meets = link_join_keys(&sent).contains(&key);

        prop_assert!(!shares_key || meets, "{receipt} and {sent} share a key but do not meet");
    }

    /// The join matches a receipt to a sent id exactly when they share a key.
    #[test]
    fn join_matches_ids_sharing_a_key(receipt in id_strategy(), sent in id_strategy()) {
        let mut join = CarrierJoin::new();
        add_sent(&mut join, &sent, 1, target("m-1", 0));

        let joined = offer(&mut join, &receipt, "r-1", 2);

        let shares_key = carrier_id_keys(&receipt).matches(&carrier_id_keys(&sent));
        prop_assert_eq!(matches!(joined, Joined::Matched { .. }), shares_key, "{} and {}", receipt, sent);
    }
}
