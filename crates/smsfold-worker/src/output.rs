//! The records one input record causes, gathered before they are sent.

use rdkafka::message::OwnedHeaders;
use smsfold_wire::internal::MessageUpdateRecord;

/// One record to publish.
#[derive(Debug)]
pub struct Output {
    pub topic: String,
    /// `None` lets the producer's murmur2 partitioner place the record by key,
    /// as Java clients do.
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    /// `None` for a record with a null value (kept as is when dead-lettered).
    pub payload: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
}

/// The outputs of one input record.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Records sent as they are made.
    pub records: Vec<Output>,
    /// Changelog entries, kept until the batch commits and sent once per key.
    pub changelog: Vec<Output>,
    /// Updates for the campaign stage, packed per campaign for the batch.
    pub updates: Vec<MessageUpdateRecord>,
    /// Set when the input record is replayed, so its outputs were published
    /// before.
    pub replayed: bool,
}

impl Outputs {
    pub fn push(&mut self, output: Output) {
        self.records.push(output);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
