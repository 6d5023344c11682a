//! Dead-lettering: a record smsfold cannot decode or apply goes to the
//! dead-letter topic with its original key, value and headers, plus headers
//! naming the reason and the source record.

use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
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
    metrics::dead_lettered(reason);
    warn!(
        reason,
        error,
        topic = record.topic(),
        partition = record.partition(),
        offset = record.offset(),
        "dead-lettered a record"
    );

    let mut headers = OwnedHeaders::new();
    if let Some(original) = record.headers() {
        for header in original.iter() {
            headers = headers.insert(Header { key: header.key, value: header.value });
        }
    }
    let partition = record.partition().to_string();
    let offset = record.offset().to_string();
    headers = headers
        .insert(Header { key: REASON_HEADER, value: Some(reason) })
        .insert(Header { key: ERROR_HEADER, value: Some(error) })
        .insert(Header { key: SOURCE_TOPIC_HEADER, value: Some(record.topic()) })
        .insert(Header { key: SOURCE_PARTITION_HEADER, value: Some(&partition) })
        .insert(Header { key: SOURCE_OFFSET_HEADER, value: Some(&offset) });

    Output {
        topic: topic.to_owned(),
        partition: None,
        key: record.key().map(<[u8]>::to_vec),
        payload: record.payload().map(<[u8]>::to_vec),
        headers: Some(headers),
    }
}
