//! Eviction from the message fold: settled messages leave the live state
//! after the retention, and their keys are remembered as retired (the rules
//! are in `crate::retention`).

use crate::key::MessageKey;
use crate::time::Timestamp;

use super::id_arena::IdArena;
use super::MessageFold;

/// Retention: settled messages leave the live state after a while.
impl MessageFold {
    /// Returns the fold's event-time watermark: the latest event time seen.
    pub fn watermark(&self) -> Timestamp {
        Timestamp::from_millis(self.retention.watermark)
    }

    /// Removes every settled message (sent or final) whose status time is
    /// more than `retention` before the watermark, and remembers its key for
    /// one more `retention` so that late events for it are rejected instead
    /// of starting it over. Keys remembered longer than that are forgotten.
    pub fn evict(&mut self, retention: std::time::Duration) -> crate::retention::Eviction {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        self.retention.retention_ms = Some(retention_ms);
        let horizon = self.retention.watermark.saturating_sub(retention_ms);

        let mut eviction = crate::retention::Eviction::default();
        let ids = &self.ids;
        let retention_state = &mut self.retention;
        let receipts = &mut self.receipts;
        self.messages.retain(|key, state| {
            let settled = state.status().is_settled();
            if !settled || state.status_at >= horizon {
                return true;
            }
            eviction.evicted.push(ids.get(state.id_offset).to_owned());
            retention_state.retire(*key, ids.stored_len(state.id_offset));
            receipts.remove(key);
            false
        });
        eviction.forgotten = self.retention.forget_before(horizon);
        eviction.retired = eviction
            .evicted
            .iter()
            .map(|id| (MessageKey::of(id), self.retention.watermark))
            .collect();
        self.compact_ids_if_sparse();
        eviction
    }

    /// Remembers a retired key, as restored from a changelog. A retired
    /// message is not live: state restored for it from records written
    /// before its eviction, which compaction has not removed yet, is
    /// dropped.
    pub fn restore_retired(&mut self, key: MessageKey, retired_at: Timestamp) {
        if let Some(state) = self.messages.remove(&key) {
            self.retention.retire(key, self.ids.stored_len(state.id_offset));
            self.receipts.remove(&key);
        }
        self.retention.restore_retired(key, retired_at.as_millis());
        self.compact_ids_if_sparse();
    }

    /// Rewrites the id arena without the ids of evicted messages once they
    /// take more than half of it.
    fn compact_ids_if_sparse(&mut self) {
        if self.retention.dead_id_bytes * 2 <= self.ids.len() {
            return;
        }
        let mut ids = IdArena::default();
        for state in self.messages.values_mut() {
            // The live ids fit, because they took less than half of the
            // arena they came from.
            let offset = ids.push(self.ids.get(state.id_offset));
            state.id_offset = offset.expect("the live ids fit in a new arena");
        }
        self.ids = ids;
        self.retention.dead_id_bytes = 0;
    }
}
