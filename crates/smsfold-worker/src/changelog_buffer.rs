//! The changelog entries of the open batch, one per key.
//!
//! A message's events often fall into one batch (accepted, queued and sent
//! arrive close together), and each would write the message's whole state to
//! the changelog again. Only the last write of a key in a batch is sent, at
//! commit: the batch's transaction makes its entries visible together, so an
//! earlier state of the key could never be read on its own anyway. The
//! entries go out in the order of their last write, as compaction would
//! leave them, which keeps a restore of the changelog the same as before.

use std::collections::HashMap;

use smsfold_wire::changelog;

use crate::output::Output;

/// Changelog writes of the open batch, the last per topic, partition and key.
#[derive(Debug, Default)]
pub struct ChangelogBuffer {
    /// The value (`None` for a tombstone) and when it was written.
    entries: HashMap<(String, i32, Vec<u8>), (u64, Option<Vec<u8>>)>,
    writes: u64,
}

impl ChangelogBuffer {
    /// Keeps `output` as the entry of its key, replacing an earlier one. An
    /// output without a partition or key is no changelog entry and is kept
    /// under an empty key of partition -1, so it is still sent.
    /// A rewrite of a key may carry over part of the earlier value (see
    /// `changelog::combine_rewrite`).
    pub fn put(&mut self, output: Output) {
        self.writes += 1;
        let key = (output.topic, output.partition.unwrap_or(-1), output.key.unwrap_or_default());
        let mut payload = output.payload;
        if let (Some(later), Some((_, Some(earlier)))) = (&payload, self.entries.get(&key)) {
            if let Some(combined) = changelog::combine_rewrite(&key.2, earlier, later) {
                payload = Some(combined);
            }
        }
        self.entries.insert(key, (self.writes, payload));
    }

    /// Forgets every entry, for an aborted batch.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.writes = 0;
    }

    /// Takes the entries out in the order of their last write.
    pub fn drain(&mut self) -> Vec<Output> {
        let mut entries: Vec<_> = self.entries.drain().collect();
        self.writes = 0;
        entries.sort_unstable_by_key(|(_, (written, _))| *written);
        entries
            .into_iter()
            .map(|((topic, partition, key), (_, payload))| Output {
                topic,
                partition: (partition >= 0).then_some(partition),
                key: Some(key),
                payload,
                headers: None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(topic: &str, partition: i32, key: &str, value: Option<&str>) -> Output {
        Output {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(key.as_bytes().to_vec()),
            payload: value.map(|v| v.as_bytes().to_vec()),
            headers: None,
        }
    }

    fn summary(outputs: &[Output]) -> Vec<(String, i32, String, Option<String>)> {
        outputs
            .iter()
            .map(|o| {
                (
                    o.topic.clone(),
                    o.partition.unwrap_or(-1),
                    String::from_utf8_lossy(o.key.as_deref().unwrap_or_default()).into_owned(),
                    o.payload.as_deref().map(|p| String::from_utf8_lossy(p).into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn last_write_of_key_wins() {
        let mut buffer = ChangelogBuffer::default();
        buffer.put(entry("log", 0, "a", Some("a1")));
        buffer.put(entry("log", 0, "b", Some("b1")));
        buffer.put(entry("log", 0, "a", Some("a2")));
        buffer.put(entry("log", 0, "c", None));
        let drained = summary(&buffer.drain());
        assert_eq!(
            drained,
            vec![
                ("log".to_owned(), 0, "b".to_owned(), Some("b1".to_owned())),
                ("log".to_owned(), 0, "a".to_owned(), Some("a2".to_owned())),
                ("log".to_owned(), 0, "c".to_owned(), None),
            ]
        );
        assert!(buffer.drain().is_empty());
    }

    #[test]
    fn partitions_and_topics_kept_apart() {
        let mut buffer = ChangelogBuffer::default();
        buffer.put(entry("log", 0, "a", Some("p0")));
        buffer.put(entry("log", 1, "a", Some("p1")));
        buffer.put(entry("other", 0, "a", Some("o0")));
        let drained = summary(&buffer.drain());
        assert_eq!(drained.len(), 3);
        assert_eq!(drained[1], ("log".to_owned(), 1, "a".to_owned(), Some("p1".to_owned())));
    }

    #[test]
    fn tombstone_and_value_replace_each_other() {
        let mut buffer = ChangelogBuffer::default();
        buffer.put(entry("log", 0, "a", Some("v")));
        buffer.put(entry("log", 0, "a", None));
        assert_eq!(summary(&buffer.drain()), vec![("log".to_owned(), 0, "a".to_owned(), None)]);
        buffer.put(entry("log", 0, "a", None));
        buffer.put(entry("log", 0, "a", Some("w")));
        assert_eq!(summary(&buffer.drain()), vec![("log".to_owned(), 0, "a".to_owned(), Some("w".to_owned()))]);
    }

    #[test]
    fn cleared_buffer_sends_nothing() {
        let mut buffer = ChangelogBuffer::default();
        buffer.put(entry("log", 0, "a", Some("v")));
        buffer.clear();
        assert!(buffer.drain().is_empty());
    }
}
