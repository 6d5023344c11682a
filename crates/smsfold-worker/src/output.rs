//! The records one input record causes, gathered before they are sent.

use rdkafka::message::OwnedHeaders;
use rdkafka::producer::FutureRecord;

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

impl Output {
    /// Builds the producer record for this output, borrowing from it.
    pub fn record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let mut record = FutureRecord::to(&self.topic);
        if let Some(key) = &self.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &self.payload {
            record = record.payload(payload.as_slice());
        }
        if let Some(partition) = self.partition {
            record = record.partition(partition);
        }
        if let Some(headers) = &self.headers {
            record = record.headers(headers.clone());
        }
        record
    }
}

/// The outputs of one input record.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Records sent as they are made.
    pub records: Vec<Output>,
    /// Changelog entries, kept until the batch commits and sent once per key.
    pub changelog: Vec<Output>,
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
