//! Eviction from the message fold: settled messages leave the live state
//! after the retention, and their keys are remembered as retired (the rules
//! are in `crate::retention`).

use crate::key::MessageKey;
use crate::time::Timestamp;

use super::{read_id, MessageFold};

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
            eviction.evicted.push(read_id(ids, state.id_offset).to_owned());
            retention_state.retire(*key, state.id_offset, ids);
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
            self.retention.retire(key, state.id_offset, &self.ids);
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
        let mut ids = Vec::with_capacity(self.ids.len() - self.retention.dead_id_bytes);
        for state in self.messages.values_mut() {
            let id = read_id(&self.ids, state.id_offset).as_bytes();
            state.id_offset = ids.len() as u32;
            ids.push(id.len() as u8);
            ids.extend_from_slice(id);
        }
        self.ids = ids;
        self.retention.dead_id_bytes = 0;
    }
}
