//! The open batch's message updates for the campaign stage, packed per
//! campaign.
//!
//! Most events change a message's status, and each change of a campaign's
//! message is an update for the campaign stage. One record per update made
//! the campaign stage topic carry about one record per input event, which
//! the worker then wrote, read back and decoded. A batch instead sends one
//! [`MessageUpdatePack`] per campaign: the batch's updates of that campaign
//! in the order it made them. The campaign stage applies them in that
//! order, so it folds the same sequence as before.
//!
//! A forwarded campaign event goes to the same partition as its campaign's
//! updates. To keep their order, the campaign's pack is sent before the
//! event (see [`UpdatePacks::take`]).

use std::collections::HashMap;

use rdkafka::message::{Header, OwnedHeaders};
use smsfold_wire::internal::{MessageUpdatePack, MessageUpdateRecord};

use crate::output::Output;
use crate::processor::{MESSAGE_UPDATES, RECORD_TYPE_HEADER};
use crate::replay::REPLAY_HEADER;

/// The encoded size at which a pack is sent before the batch commits. It
/// keeps a record well below the 1 MB that brokers and producers accept by
/// default.
const MAX_PACK_BYTES: usize = 256 * 1024;

/// The open packs of a batch.
#[derive(Debug, Default)]
pub struct UpdatePacks {
    /// Open packs in the order of their first update, each with its replay
    /// flag. A pack sent early leaves `None` until the batch's packs are
    /// drained.
    packs: Vec<Option<(MessageUpdatePack, bool)>>,
    /// Position in `packs` of the open pack per campaign id: live updates at
    /// index 0, replayed ones at index 1.
    open: [HashMap<String, usize>; 2],
    /// The campaign stage topic, from the first update.
    topic: String,
}

impl UpdatePacks {
    /// Adds an update to its campaign's pack, for `topic`. `replayed` marks
    /// an update of a replayed input record (see `replay`). Returns the packs
    /// to send now: the pack grown to `MAX_PACK_BYTES`, or the campaign's
    /// open pack of the other kind.
    ///
    /// Replayed and live updates go to separate packs, because only the
    /// replayed ones are marked. A campaign has one open pack at a time, so
    /// the campaign stage applies its updates in the order they were made.
    /// The stage moves a message's count from the status of its previous
    /// update, which needs that order.
    pub fn put(&mut self, topic: &str, update: MessageUpdateRecord, replayed: bool) -> Vec<Output> {
        if self.topic != topic {
            topic.clone_into(&mut self.topic);
        }
        let mut ready = Vec::new();
        if let Some(other) = self.open[usize::from(!replayed)].remove(update.campaign_id.as_str()) {
            if let Some((pack, other_replayed)) = self.packs[other].take() {
                ready.push(self.output(&pack, other_replayed));
            }
        }
        let open = &mut self.open[usize::from(replayed)];
        let position = match open.get(update.campaign_id.as_str()) {
            Some(&position) => position,
            None => {
                self.packs.push(Some((MessageUpdatePack::new(&update.campaign_id), replayed)));
                open.insert(update.campaign_id.clone(), self.packs.len() - 1);
                self.packs.len() - 1
            }
        };
        let (pack, _) = self.packs[position].as_mut().expect("an open pack is in place");
        if pack.push(update) >= MAX_PACK_BYTES {
            open.remove(pack.campaign_id());
            if let Some((pack, replayed)) = self.packs[position].take() {
                ready.push(self.output(&pack, replayed));
            }
        }
        ready
    }

    /// Takes the open packs of the campaign with id `campaign_key`, as
    /// records to send before another record of that campaign.
    pub fn take(&mut self, campaign_key: &[u8]) -> Vec<Output> {
        let Ok(campaign_id) = std::str::from_utf8(campaign_key) else { return Vec::new() };
        let mut positions: Vec<usize> = self.open.iter_mut().filter_map(|open| open.remove(campaign_id)).collect();
        positions.sort_unstable();
        let removed: Vec<_> = positions.into_iter().filter_map(|position| self.packs[position].take()).collect();
        removed.into_iter().map(|(pack, replayed)| self.output(&pack, replayed)).collect()
    }

    /// Takes every open pack out as records, in the order of their first
    /// update.
    pub fn drain(&mut self) -> Vec<Output> {
        self.open.iter_mut().for_each(HashMap::clear);
        let packs = std::mem::take(&mut self.packs);
        packs.into_iter().flatten().map(|(pack, replayed)| self.output(&pack, replayed)).collect()
    }

    /// Forgets every pack, for an aborted batch.
    pub fn clear(&mut self) {
        self.open.iter_mut().for_each(HashMap::clear);
        self.packs.clear();
    }

    fn output(&self, pack: &MessageUpdatePack, replayed: bool) -> Output {
        let mut headers = OwnedHeaders::new().insert(Header { key: RECORD_TYPE_HEADER, value: Some(MESSAGE_UPDATES) });
        if replayed {
            headers = headers.insert(Header { key: REPLAY_HEADER, value: Some("1") });
        }
        Output {
            topic: self.topic.clone(),
            partition: None,
            key: Some(pack.campaign_id().as_bytes().to_vec()),
            payload: Some(pack.encode()),
            headers: Some(headers),
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::Headers;
    use smsfold_domain::{MessageStatus, Timestamp};

    use super::*;

    const TOPIC: &str = "stage";

    fn update(campaign_id: &str, message_id: &str) -> MessageUpdateRecord {
        MessageUpdateRecord {
            campaign_id: campaign_id.to_owned(),
            message_id: message_id.to_owned(),
            status: MessageStatus::Queued,
            segments: 1,
            status_at: Timestamp::from_millis(5),
            cause_event_id: format!("EV-{message_id}"),
            previous: None,
            previous_known: true,
            may_repeat: false,
        }
    }

    fn message_ids(output: &Output) -> Vec<String> {
        let updates = MessageUpdatePack::decode(output.payload.as_deref().unwrap()).unwrap();
        updates.into_iter().map(|update| update.message_id).collect()
    }

    fn is_replayed(output: &Output) -> bool {
        output.headers.as_ref().unwrap().iter().any(|header| header.key == REPLAY_HEADER)
    }

    #[test]
    fn drain_packs_per_campaign_in_order() {
        let mut packs = UpdatePacks::default();
        for (campaign, message) in [("CP1", "SM1"), ("CP2", "SM2"), ("CP1", "SM3")] {
            assert!(packs.put(TOPIC, update(campaign, message), false).is_empty());
        }
        let outputs = packs.drain();

        assert_eq!(outputs.len(), 2);
        assert_eq!(outputs[0].key.as_deref(), Some(&b"CP1"[..]));
        assert_eq!(message_ids(&outputs[0]), ["SM1", "SM3"]);
        assert_eq!(outputs[1].key.as_deref(), Some(&b"CP2"[..]));
        assert_eq!(message_ids(&outputs[1]), ["SM2"]);
        assert_eq!(outputs[0].topic, TOPIC);
        assert_eq!(outputs[0].partition, None);
        let record_type = outputs[0].headers.as_ref().unwrap().iter().find(|header| header.key == RECORD_TYPE_HEADER);
        assert_eq!(record_type.and_then(|header| header.value), Some(MESSAGE_UPDATES));
        assert!(packs.drain().is_empty());
    }

    #[test]
    fn take_sends_only_that_campaign() {
        let mut packs = UpdatePacks::default();
        packs.put(TOPIC, update("CP1", "SM1"), false);
        packs.put(TOPIC, update("CP2", "SM2"), false);
        let first_campaign = packs.take(b"CP1");
        packs.put(TOPIC, update("CP1", "SM3"), false);
        let rest = packs.drain();

        assert_eq!(first_campaign.len(), 1);
        assert_eq!(message_ids(&first_campaign[0]), ["SM1"]);
        assert!(packs.take(b"CP9").is_empty());
        assert_eq!(rest.len(), 2);
        assert_eq!(message_ids(&rest[0]), ["SM2"]);
        assert_eq!(message_ids(&rest[1]), ["SM3"]);
    }

    #[test]
    fn replayed_updates_get_own_pack() {
        let mut packs = UpdatePacks::default();
        let first = packs.put(TOPIC, update("CP1", "SM1"), true);
        let replayed = packs.put(TOPIC, update("CP1", "SM2"), false);
        let outputs = packs.drain();

        assert!(first.is_empty());
        assert_eq!(replayed.len(), 1);
        assert!(is_replayed(&replayed[0]));
        assert_eq!(message_ids(&replayed[0]), ["SM1"]);
        assert_eq!(outputs.len(), 1);
        assert!(!is_replayed(&outputs[0]));
        assert_eq!(message_ids(&outputs[0]), ["SM2"]);
    }

    #[test]
    fn campaign_updates_keep_order_across_kinds() {
        // Live SM1 from one partition, then SM2 replayed and live from
        // another: SM2's replayed update must reach the stage first.
        let mut packs = UpdatePacks::default();
        let mut sent = Vec::new();
        sent.extend(packs.put(TOPIC, update("CP1", "SM1"), false));
        sent.extend(packs.put(TOPIC, update("CP2", "SM9"), true));
        sent.extend(packs.put(TOPIC, update("CP1", "SM2"), true));
        sent.extend(packs.put(TOPIC, update("CP1", "SM2"), false));
        sent.extend(packs.drain());

        let campaign_one: Vec<(bool, Vec<String>)> = sent
            .iter()
            .filter(|output| output.key.as_deref() == Some(&b"CP1"[..]))
            .map(|output| (is_replayed(output), message_ids(output)))
            .collect();
        assert_eq!(
            campaign_one,
            [(false, vec!["SM1".to_owned()]), (true, vec!["SM2".to_owned()]), (false, vec!["SM2".to_owned()])]
        );
        assert_eq!(sent.len(), 4);
    }

    #[test]
    fn full_pack_is_sent_at_once() {
        let mut packs = UpdatePacks::default();
        let long_id = "M".repeat(200);
        let mut full = Vec::new();
        let mut added = 0;
        while full.is_empty() {
            full = packs.put(TOPIC, update("CP1", &format!("{long_id}{added}")), false);
            added += 1;
        }
        assert_eq!(full.len(), 1);
        let full = full.remove(0);
        packs.put(TOPIC, update("CP1", "SM-after"), false);
        let rest = packs.drain();

        let size = full.payload.as_ref().unwrap().len();
        assert!((MAX_PACK_BYTES..MAX_PACK_BYTES + 300).contains(&size), "pack of {size} bytes");
        assert_eq!(message_ids(&full).len(), added);
        assert_eq!(rest.len(), 1);
        assert_eq!(message_ids(&rest[0]), ["SM-after"]);
    }

    #[test]
    fn clear_drops_packs() {
        let mut packs = UpdatePacks::default();
        packs.put(TOPIC, update("CP1", "SM1"), false);
        packs.clear();
        assert!(packs.drain().is_empty());
        assert!(packs.take(b"CP1").is_empty());
    }
}
