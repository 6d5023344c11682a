//! The join of receipts that name only a carrier id to the sent messages
//! that recorded that id: which keys each side is published under, and the
//! per-partition state that meets them.
//!
//! Each receipt goes to one key, its first carrier key ([`receipt_join_key`]):
//! the decimal reading of an all-digit id, else the id's only key. Each
//! carrier id of a sent event goes to every key that a matching receipt can
//! have as its first ([`link_join_keys`]). Those are its own keys, plus the
//! decimal reading of each of its numbers' hexadecimal form that has no
//! letter. A receipt written in hexadecimal without a letter (`12345678`)
//! reads first as a decimal number, so the sent id `305419896` (the same
//! number, 0x12345678) is also published under the decimal 12345678. So
//! every link a receipt can match sits under the receipt's one key, and the
//! owner of that key's partition sees all of them. Not every link under a
//! key matches every receipt under it (the receipt `e` meets the sent id
//! `20` under the number 14), so the join compares the two ids' keys again.
//!
//! Choosing among the links under a key that match a receipt, in this order:
//! 1. a link spelled like the receipt ([`carrier_spelling`]: the same digits
//!    or letters, ignoring case, whitespace around and leading zeros);
//! 2. a link that is the same number written in the other base, when it is
//!    the only one, or when all such links name the same message segment;
//! 3. otherwise the receipt is ambiguous.
//!
//! A carrier reuses ids after a while, so each key holds one link per
//! spelling: the one of the latest sent event (by event time, then event
//! id). A receipt is matched when it meets its first link; a link that
//! arrives later is not considered for it. A receipt that finds no link
//! waits as pending until the partition's event time passes its own by the
//! configured wait.

use hashbrown::HashMap;

use crate::carrier_id::{carrier_id_keys, CarrierKey};
use crate::link_data::LinkData;
use crate::link_record::{normalize_carrier_id, StoredLink};
use crate::link_table::LinkTable;

/// Returns the key a receipt naming `carrier_id` is published under, or
/// `None` for an id with no key (empty or whitespace).
pub fn receipt_join_key(carrier_id: &str) -> Option<String> {
    carrier_id_keys(carrier_id).iter().next().map(CarrierKey::to_string)
}

/// Returns the keys a sent event's `carrier_id` is published under, so
/// that every receipt that may match it finds it under its own key. Empty
/// for an id with no key.
pub fn link_join_keys(carrier_id: &str) -> Vec<String> {
    let own = carrier_id_keys(carrier_id);
    let mut keys: Vec<CarrierKey> = own.iter().cloned().collect();
    for key in own.iter() {
        let CarrierKey::Number(number) = key else { continue };
        let hex = format!("{number:x}");
        if hex.bytes().all(|byte| byte.is_ascii_digit()) {
            // At most 32 digits, which always fit in u128.
            if let Ok(decimal) = hex.parse::<u128>() {
                keys.push(CarrierKey::Number(decimal));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys.iter().map(CarrierKey::to_string).collect()
}

/// Returns `carrier_id` as the join compares spellings: without whitespace
/// around it, in lower case, and without leading zeros when it consists of
/// hexadecimal digits (one `0` stays for an id of zeros).
pub fn carrier_spelling(carrier_id: &str) -> String {
    let id = carrier_id.trim_matches(|c: char| c.is_ascii_whitespace()).to_ascii_lowercase();
    spelling_of_normalized(&id).to_owned()
}

/// Returns the [`carrier_spelling`] of an id that is already in lower case
/// and without whitespace around it, as a part of that id.
pub(crate) fn spelling_of_normalized(id: &str) -> &str {
    if id.is_empty() || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return id;
    }
    let trimmed = id.trim_start_matches('0');
    if trimmed.is_empty() {
        // The last of the zeros.
        &id[id.len() - 1..]
    } else {
        trimmed
    }
}

/// The rule by which a receipt's carrier id matched a link's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchRule {
    /// Both spell the id alike.
    SameSpelling,
    /// One writes the number in decimal and the other in hexadecimal.
    OtherBase,
}

impl MatchRule {
    /// Returns the rule's name, a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            MatchRule::SameSpelling => "same_spelling",
            MatchRule::OtherBase => "other_base",
        }
    }
}

/// A sent message's carrier id, with the caller's data `L`, as it is added
/// to the join. The join stores it as a [`StoredLink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link<L> {
    /// The carrier id as the sent event wrote it.
    pub carrier_id: String,
    /// The sent event's time, in ms since the epoch.
    pub sent_at: i64,
    pub sent_event_id: String,
    pub data: L,
}

impl<L> Link<L> {
    pub fn new(carrier_id: &str, sent_at: i64, sent_event_id: &str, data: L) -> Self {
        Link { carrier_id: carrier_id.to_owned(), sent_at, sent_event_id: sent_event_id.to_owned(), data }
    }
}

/// A receipt waiting for its link, with the caller's data `P`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending<P> {
    /// The carrier id as the receipt wrote it.
    pub carrier_id: String,
    /// The id's [`carrier_spelling`].
    pub spelling: String,
    pub event_id: String,
    /// The receipt's event time, in ms since the epoch.
    pub occurred_at: i64,
    pub data: P,
}

impl<P> Pending<P> {
    pub fn new(carrier_id: &str, event_id: &str, occurred_at: i64, data: P) -> Self {
        Pending {
            carrier_id: carrier_id.to_owned(),
            spelling: carrier_spelling(carrier_id),
            event_id: event_id.to_owned(),
            occurred_at,
            data,
        }
    }
}

/// Returns true when the two ids share a carrier key.
fn ids_match(receipt: &str, sent: &str) -> bool {
    carrier_id_keys(receipt).matches(&carrier_id_keys(sent))
}

/// The result of offering a receipt to the join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined<L> {
    /// The receipt matched this link.
    Matched { link: L, rule: MatchRule },
    /// Links of more than one message segment match equally well.
    Ambiguous { candidates: usize },
    /// No link yet; the receipt waits.
    Pending,
}

/// The result of adding a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAdded<P> {
    /// False when a link of the same spelling from a later sent event is
    /// already stored; the new one is then dropped.
    pub stored: bool,
    /// Pending receipts under the key that this link matched, each with its
    /// rule. They are no longer pending.
    pub matched: Vec<(Pending<P>, MatchRule)>,
}

/// The join state of one partition of the carrier join topic.
///
/// The caller's link data `L` is stored as bytes ([`LinkData`]). The links'
/// records take at most 8 GiB, and adding or restoring a link beyond that
/// panics.
#[derive(Debug)]
pub struct CarrierJoin<L, P> {
    links: LinkTable<L>,
    pending: HashMap<String, Vec<Pending<P>>>,
    /// A time no pending receipt is older than, in ms since the epoch. After
    /// a removal it may lie before the oldest one. `i64::MAX` when none
    /// waits.
    earliest_pending: i64,
    /// Latest event time seen, in ms since the epoch.
    watermark: i64,
}

impl<L, P> Default for CarrierJoin<L, P> {
    fn default() -> Self {
        CarrierJoin {
            links: LinkTable::default(),
            pending: HashMap::new(),
            earliest_pending: i64::MAX,
            watermark: i64::MIN,
        }
    }
}

impl<L: LinkData + PartialEq, P> CarrierJoin<L, P> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the partition's event-time watermark, `i64::MIN` before any
    /// event.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// Returns the number of links and of pending receipts.
    pub fn len(&self) -> (usize, usize) {
        (self.links.len(), self.pending.values().map(Vec::len).sum())
    }

    pub fn is_empty(&self) -> bool {
        self.links.len() == 0 && self.pending.is_empty()
    }

    /// Returns every link, in no particular order.
    pub fn links(&self) -> impl Iterator<Item = StoredLink<'_, L>> + '_ {
        self.links.iter()
    }

    /// Returns every pending receipt with its join key, in no particular
    /// order.
    pub fn pending(&self) -> impl Iterator<Item = (&str, &Pending<P>)> + '_ {
        self.pending
            .iter()
            .flat_map(|(join_key, waiting)| waiting.iter().map(move |pending| (join_key.as_str(), pending)))
    }

    /// Adds a sent message's carrier id under `join_key`, and matches the
    /// receipts waiting under that key to it.
    pub fn add_link(&mut self, join_key: &str, mut link: Link<L>) -> LinkAdded<P> {
        self.watermark = self.watermark.max(link.sent_at);
        normalize_carrier_id(&mut link.carrier_id);
        let spelling = spelling_of_normalized(&link.carrier_id);
        if let Some(old) = self.links.find(join_key, spelling) {
            // Compares (time, event id) pairs, reading the old event id only
            // on a tie.
            let newer = link.sent_at > old.sent_at()
                || (link.sent_at == old.sent_at() && link.sent_event_id.as_str() >= &*old.sent_event_id());
            if !newer {
                return LinkAdded { stored: false, matched: Vec::new() };
            }
            self.links.remove(join_key, spelling);
        }
        self.links.insert(join_key, &link);

        // Receipts wait only while no link under their key matches them,
        // so this link is the first they meet.
        let mut matched = Vec::new();
        if let Some(waiting) = self.pending.get_mut(join_key) {
            let sent_keys = carrier_id_keys(&link.carrier_id);
            let mut index = 0;
            while index < waiting.len() {
                if !carrier_id_keys(&waiting[index].carrier_id).matches(&sent_keys) {
                    index += 1;
                    continue;
                }
                let pending = waiting.remove(index);
                let same = pending.spelling == spelling;
                let rule = if same { MatchRule::SameSpelling } else { MatchRule::OtherBase };
                matched.push((pending, rule));
            }
            if waiting.is_empty() {
                self.pending.remove(join_key);
            }
        }
        LinkAdded { stored: true, matched }
    }

    /// Offers a receipt published under `join_key` to the links there. When
    /// none is there it waits, replacing a pending receipt of the same event
    /// id.
    pub fn add_receipt(&mut self, join_key: &str, pending: Pending<P>) -> Joined<L> {
        self.watermark = self.watermark.max(pending.occurred_at);
        if let Some(link) = self.links.under(join_key).find(|link| link.spelling() == pending.spelling) {
            return Joined::Matched { link: link.data(), rule: MatchRule::SameSpelling };
        }
        let mut targets: Vec<L> = Vec::new();
        for link in self.links.under(join_key).filter(|link| ids_match(&pending.carrier_id, link.carrier_id())) {
            let data = link.data();
            if !targets.contains(&data) {
                targets.push(data);
            }
        }
        if targets.len() > 1 {
            return Joined::Ambiguous { candidates: targets.len() };
        }
        if let Some(only) = targets.pop() {
            return Joined::Matched { link: only, rule: MatchRule::OtherBase };
        }
        self.earliest_pending = self.earliest_pending.min(pending.occurred_at);
        let waiting = self.pending.entry_ref(join_key).or_default();
        waiting.retain(|other| other.event_id != pending.event_id);
        waiting.push(pending);
        Joined::Pending
    }

    /// Removes the receipts that waited longer than `wait_ms` in event time:
    /// those whose time is more than `wait_ms` before the watermark. Returns
    /// them with their keys.
    ///
    /// The carrier stage calls this after every record, so it scans the
    /// pending receipts only when the oldest one may have expired.
    pub fn expire_pending(&mut self, wait_ms: i64) -> Vec<(String, Pending<P>)> {
        let horizon = self.watermark.saturating_sub(wait_ms);
        let mut expired = Vec::new();
        if self.earliest_pending >= horizon {
            return expired;
        }
        let mut earliest = i64::MAX;
        self.pending.retain(|join_key, waiting| {
            let mut index = 0;
            while index < waiting.len() {
                if waiting[index].occurred_at < horizon {
                    expired.push((join_key.clone(), waiting.swap_remove(index)));
                } else {
                    earliest = earliest.min(waiting[index].occurred_at);
                    index += 1;
                }
            }
            !waiting.is_empty()
        });
        self.earliest_pending = earliest;
        expired
    }

    /// Removes the links of sent events more than `retention_ms` before the
    /// watermark. Returns their keys and spellings.
    pub fn evict_links(&mut self, retention_ms: i64) -> Vec<(String, String)> {
        let horizon = self.watermark.saturating_sub(retention_ms);
        self.links.remove_sent_before(horizon)
    }

    /// Puts a link back, as restored from a changelog. It replaces any link
    /// of the same join key and spelling, because the changelog's later
    /// record of an entry wins.
    pub fn restore_link(&mut self, join_key: &str, mut link: Link<L>) {
        self.watermark = self.watermark.max(link.sent_at);
        normalize_carrier_id(&mut link.carrier_id);
        self.links.remove(join_key, spelling_of_normalized(&link.carrier_id));
        self.links.insert(join_key, &link);
    }

    /// Puts a pending receipt back, as restored from a changelog.
    pub fn restore_pending(&mut self, join_key: &str, pending: Pending<P>) {
        self.watermark = self.watermark.max(pending.occurred_at);
        self.earliest_pending = self.earliest_pending.min(pending.occurred_at);
        let waiting = self.pending.entry_ref(join_key).or_default();
        waiting.retain(|other| other.event_id != pending.event_id);
        waiting.push(pending);
    }

    /// Removes the link under `join_key` with `spelling` (a
    /// [`carrier_spelling`]), as a changelog tombstone does. Returns false
    /// when there is none. The watermark stays as it is.
    pub fn remove_link(&mut self, join_key: &str, spelling: &str) -> bool {
        self.links.remove(join_key, spelling)
    }

    /// Removes the pending receipt under `join_key` with `event_id`, as a
    /// changelog tombstone does. Returns false when there is none. The
    /// watermark stays as it is.
    pub fn remove_pending(&mut self, join_key: &str, event_id: &str) -> bool {
        let Some(waiting) = self.pending.get_mut(join_key) else { return false };
        let Some(index) = waiting.iter().position(|pending| pending.event_id == event_id) else { return false };
        waiting.remove(index);
        if waiting.is_empty() {
            self.pending.remove(join_key);
        }
        true
    }
}
