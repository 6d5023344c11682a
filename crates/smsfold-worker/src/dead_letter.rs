//! Dead-lettering: a record smsfold cannot decode or apply goes to the
//! dead-letter topic with its original key, value and headers, plus headers
//! naming the reason and the source record.
//!
//! A receipt that names only a carrier id may be dead-lettered later, by the
//! carrier join stage or by the message stage it was forwarded to. It
//! carries its original record along ([`OriginalRecord`]) for that.

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use smsfold_wire::carrier_join::OriginalRecord;
use tracing::warn;

use crate::metrics;
use crate::output::Output;

/// The machine-readable reason, e.g. `invalid_json`; also the metric label.
pub const REASON_HEADER: &str = "smsfold-dlq-reason";
/// The human-readable error.
pub const ERROR_HEADER: &str = "smsfold-dlq-error";
pub const SOURCE_TOPIC_HEADER: &str = "smsfold-dlq-topic";
pub const SOURCE_PARTITION_HEADER: &str = "smsfold-dlq-partition";
pub const SOURCE_OFFSET_HEADER: &str = "smsfold-dlq-offset";

/// Builds the dead-letter record for `record`, counts it and logs it.
pub fn dead_letter(topic: &str, record: &BorrowedMessage<'_>, reason: &'static str, error: &str) -> Output {
    dead_letter_original(topic, &original_record(record), reason, error)
}

/// Builds the dead-letter record for a record consumed earlier, counts it
/// and logs it.
pub fn dead_letter_original(topic: &str, original: &OriginalRecord, reason: &'static str, error: &str) -> Output {
    metrics::dead_lettered(reason);
    warn!(
        reason,
        error,
        topic = original.topic,
        partition = original.partition,
        offset = original.offset,
        "dead-lettered a record"
    );

    let mut headers = OwnedHeaders::new();
    for (key, value) in &original.headers {
        headers = headers.insert(Header { key, value: value.as_deref() });
    }
    let partition = original.partition.to_string();
    let offset = original.offset.to_string();
    headers = headers
        .insert(Header { key: REASON_HEADER, value: Some(reason) })
        .insert(Header { key: ERROR_HEADER, value: Some(error) })
        .insert(Header { key: SOURCE_TOPIC_HEADER, value: Some(&original.topic) })
        .insert(Header { key: SOURCE_PARTITION_HEADER, value: Some(&partition) })
        .insert(Header { key: SOURCE_OFFSET_HEADER, value: Some(&offset) });

    Output {
        topic: topic.to_owned(),
        partition: None,
        key: original.key.clone(),
        payload: original.value.clone(),
        headers: Some(headers),
    }
}

/// Copies what the dead-letter topic needs of a consumed record.
pub fn original_record(record: &BorrowedMessage<'_>) -> OriginalRecord {
    let headers = record
        .headers()
        .map(|headers| headers.iter().map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec))).collect())
        .unwrap_or_default();
    OriginalRecord {
        key: record.key().map(<[u8]>::to_vec),
        value: record.payload().map(<[u8]>::to_vec),
        headers,
        topic: record.topic().to_owned(),
        partition: record.partition(),
        offset: record.offset(),
    }
}
