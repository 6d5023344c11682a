//! A value per topic partition, for the handful of partitions one worker
//! consumes: updated once per record without building a key.

/// Values by topic and partition, in the order the partitions first came.
#[derive(Debug, Default)]
pub struct PartitionMap {
    entries: Vec<(String, i32, i64)>,
}

impl PartitionMap {
    /// Sets the value of `topic`'s `partition`.
    pub fn set(&mut self, topic: &str, partition: i32, value: i64) {
        match self.entries.iter_mut().find(|(t, p, _)| *p == partition && t == topic) {
            Some(entry) => entry.2 = value,
            None => self.entries.push((topic.to_owned(), partition, value)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.entries.iter().map(|(topic, partition, value)| (topic.as_str(), *partition, *value))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Takes every entry out.
    pub fn drain(&mut self) -> impl Iterator<Item = (String, i32, i64)> + '_ {
        self.entries.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_last_value() {
        let mut map = PartitionMap::default();
        map.set("events", 0, 5);
        map.set("events", 1, 7);
        map.set("commands", 0, 9);
        map.set("events", 0, 6);
        let entries: Vec<_> = map.iter().collect();
        assert_eq!(entries, vec![("events", 0, 6), ("events", 1, 7), ("commands", 0, 9)]);
        let drained: Vec<_> = map.drain().collect();
        assert_eq!(
            drained,
            vec![("events".to_owned(), 0, 6), ("events".to_owned(), 1, 7), ("commands".to_owned(), 0, 9)]
        );
        assert_eq!(map.iter().count(), 0);
    }
}
