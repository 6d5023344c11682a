//! Retention of the message fold: the event-time watermark, and the keys
//! of messages that left the live state.
//!
//! The rule: a settled message (sent or in a final status) whose status
//! time is more than the retention before the watermark (the latest event
//! time the partition has seen) leaves the live state. Its key is kept for
//! one more retention period, during which any event for it is rejected as
//! `message_retired`. After that an event for an unknown message that is
//! older than the retention horizon is rejected as `beyond_retention`. So a
//! late or repeated event never restarts a retired message with a wrong or
//! repeated change.

use hashbrown::HashMap;

use crate::event::MessageEvent;
use crate::key::MessageKey;
use crate::reject::Reject;

/// The result of one eviction pass, for the changelog.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Eviction {
    /// Ids of the messages that left the live state.
    pub evicted: Vec<String>,
    /// Keys now remembered as retired, with the watermark when retired (ms).
    pub retired: Vec<(MessageKey, i64)>,
    /// Retired keys forgotten by this pass, with their retirement time (ms).
    pub forgotten: Vec<(MessageKey, i64)>,
}

#[derive(Debug, Default)]
pub(crate) struct RetentionState {
    /// Latest event time seen, in ms since the epoch.
    pub watermark: i64,
    /// The retention of the last eviction pass, in ms; `None` before any.
    pub retention_ms: Option<i64>,
    /// Keys of evicted messages and the watermark when they were evicted.
    retired: HashMap<MessageKey, i64>,
    /// Arena bytes still held by evicted ids.
    pub dead_id_bytes: usize,
}

impl RetentionState {
    pub fn observe(&mut self, at: i64) {
        self.watermark = self.watermark.max(at);
    }

    /// Rejects an event for an unknown message that is retired, or that is
    /// older than the retention horizon.
    pub fn check_unknown(&self, key: MessageKey, event: &MessageEvent) -> Result<(), Reject> {
        if self.retired.contains_key(&key) {
            return Err(Reject::MessageRetired { message_id: event.message_id.clone() });
        }
        if let Some(retention_ms) = self.retention_ms {
            let horizon = self.watermark.saturating_sub(retention_ms.saturating_mul(2));
            let at = event.occurred_at.as_millis();
            if at < horizon {
                return Err(Reject::BeyondRetention {
                    message_id: event.message_id.clone(),
                    occurred_at_ms: at,
                    horizon_ms: horizon,
                });
            }
        }
        Ok(())
    }

    /// Remembers an evicted message's key, and counts the `id_bytes` its
    /// id takes in the id arena as dead.
    pub fn retire(&mut self, key: MessageKey, id_bytes: usize) {
        self.retired.insert(key, self.watermark);
        self.dead_id_bytes += id_bytes;
    }

    pub fn restore_retired(&mut self, key: MessageKey, retired_at: i64) {
        self.retired.insert(key, retired_at);
        self.observe(retired_at);
    }

    /// Forgets keys retired before `horizon`; returns them.
    pub fn forget_before(&mut self, horizon: i64) -> Vec<(MessageKey, i64)> {
        let mut forgotten = Vec::new();
        self.retired.retain(|key, retired_at| {
            if *retired_at < horizon {
                forgotten.push((*key, *retired_at));
                false
            } else {
                true
            }
        });
        forgotten
    }
}

#[cfg(test)]
mod tests;
