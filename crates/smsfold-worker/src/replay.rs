//! Replays after a rebuild: input records below the offsets the group had
//! committed before the rebuild are folded again without publishing what
//! they cause a second time.
//!
//! A replayed record's status changes and dead letters are dropped. Its
//! internal records (message updates, forwarded campaign events,
//! cancellations, carrier links, waiting and matched receipts) are still
//! written, marked with a header, so that the stage reading them treats them
//! as replayed too. Changelog entries are
//! always written: rebuilding them is the point.

use std::collections::HashMap;

use rdkafka::message::{BorrowedMessage, Header, Headers, Message};

use crate::config::Topics;
use crate::output::Outputs;

/// The header that marks an internal record caused by a replayed record.
pub const REPLAY_HEADER: &str = "smsfold-replay";

#[derive(Debug, Default, Clone)]
pub struct Replay {
    /// Per input topic and partition: the first offset not published before.
    pub until: HashMap<(String, i32), i64>,
}

impl Replay {
    /// Returns true when the record's outputs were published before.
    pub fn is_replayed(&self, record: &BorrowedMessage<'_>) -> bool {
        // A scan of the entries, at most one per input partition, so that
        // no key is built for each record.
        let (topic, partition) = (record.topic(), record.partition());
        if let Some((_, until)) = self.until.iter().find(|((t, p), _)| *p == partition && t == topic) {
            return record.offset() < *until;
        }
        record.headers().is_some_and(|headers| headers.iter().any(|header| header.key == REPLAY_HEADER))
    }

    /// Drops the published outputs and marks the internal ones.
    pub fn suppress(&self, outputs: &mut Outputs, topics: &Topics) {
        outputs.replayed = true;
        outputs.records.retain(|output| {
            output.topic != topics.message_changes
                && output.topic != topics.campaign_changes
                && output.topic != topics.dead_letter
        });
        for output in &mut outputs.records {
            let internal = output.topic == topics.campaign_stage
                || output.topic == topics.message_commands
                || output.topic == topics.carrier_join;
            if internal {
                let headers = output.headers.take().unwrap_or_default();
                output.headers = Some(headers.insert(Header { key: REPLAY_HEADER, value: Some("1") }));
            }
        }
    }
}
