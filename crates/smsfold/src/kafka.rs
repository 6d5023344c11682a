//! Kafka clients for `produce`, `tail` and `report`: the settings every
//! client shares, topic metadata and reading whole topics.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use smsfold_worker::WorkerConfig;
use tracing::warn;

use crate::progress::Progress;
use crate::settings;

/// Maximum wait for topic metadata and watermarks.
const METADATA_TIMEOUT: Duration = Duration::from_secs(15);
/// Maximum wait for the next record or end-of-partition while reading a
/// topic to its end. After it the broker is taken to be unreachable.
const READ_STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Converts a client creation error, with no secret in its message.
pub fn client_error(error: KafkaError, action: &str) -> anyhow::Error {
    match settings::config_error(&error) {
        Some((setting, problem)) => anyhow::anyhow!("{action}: invalid setting {setting}: {problem}"),
        None => anyhow::Error::new(error).context(action.to_owned()),
    }
}

/// Returns a client configuration with the bootstrap servers and the
/// librdkafka properties of the settings.
pub fn client_config(config: &WorkerConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    for (key, value) in &config.kafka_properties {
        client.set(key, value);
    }
    client
}

/// The consumer of `tail` and `report`.
pub type Reader = StreamConsumer<ReaderContext>;

/// Logs client errors as warnings, except the end-of-partition events that
/// `report` enables, which librdkafka also reports as errors.
pub struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if !matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            warn!(%error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for ReaderContext {}

/// Builds a consumer for assigned partitions. It joins no consumer group and
/// commits nothing, reads only committed records (read_committed), and with
/// `partition_eof` reports the end of each partition.
pub fn reader(config: &WorkerConfig, partition_eof: bool) -> anyhow::Result<Reader> {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        // librdkafka needs a group id to assign partitions; without
        // subscribe() or commits the group is never joined or written.
        .set("group.id", "smsfold-cli")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .set("allow.auto.create.topics", "false")
        .set("enable.partition.eof", if partition_eof { "true" } else { "false" })
        // Return an empty fetch after 100 ms instead of 500 ms, so that the
        // end of each partition is reached sooner.
        .set("fetch.wait.max.ms", "100");
    for (key, value) in &config.kafka_properties {
        client.set(key, value);
    }
    client
        .create_with_context(ReaderContext)
        .map_err(|error| client_error(error, "could not create the Kafka consumer"))
}

/// Builds a consumer handle for metadata requests, which must not create
/// topics as a side effect.
pub fn metadata_client(config: &WorkerConfig) -> anyhow::Result<BaseConsumer> {
    let mut client = client_config(config);
    client.set("allow.auto.create.topics", "false");
    client.create().map_err(|error| client_error(error, "could not create the Kafka client"))
}

/// Returns the partition count of `topic`, with an error naming `setting`
/// when the topic does not exist.
pub fn partition_count<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    client: &C,
    topic: &str,
    setting: &str,
) -> anyhow::Result<i32> {
    let metadata =
        tokio::task::block_in_place(|| client.fetch_metadata(Some(topic), METADATA_TIMEOUT)).with_context(|| {
            format!(
                "could not read the metadata of topic {topic:?}; check that bootstrap_servers names a running broker"
            )
        })?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(found) if found.error().is_none() && !found.partitions().is_empty() => Ok(found.partitions().len() as i32),
        _ => bail!("topic {topic:?} ({setting}) does not exist; create it, or set {setting} to an existing topic"),
    }
}

/// Returns the number of records between the low and high watermarks of
/// every partition: an upper bound of what reading the topic returns.
pub fn record_count<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    client: &C,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<u64> {
    let mut total = 0;
    for partition in 0..partitions {
        let (low, high) = tokio::task::block_in_place(|| watermarks(client, topic, partition))
            .with_context(|| format!("could not read the offsets of {topic}[{partition}]"))?;
        total += u64::try_from(high - low).unwrap_or(0);
    }
    Ok(total)
}

/// Returns a partition's low and high watermarks. A partition whose leader
/// was elected a moment ago can still return "not leader" or "leader not
/// available". Those two errors are retried until `METADATA_TIMEOUT` passes.
fn watermarks<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(
    client: &C,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), KafkaError> {
    let deadline = Instant::now() + METADATA_TIMEOUT;
    loop {
        let result = client.fetch_watermarks(topic, partition, METADATA_TIMEOUT);
        let code = result.as_ref().err().and_then(KafkaError::rdkafka_error_code);
        let electing =
            matches!(code, Some(RDKafkaErrorCode::NotLeaderForPartition | RDKafkaErrorCode::LeaderNotAvailable));
        if !electing || Instant::now() >= deadline {
            return result;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Assigns every partition of every topic to `consumer`, starting at `start`.
pub fn assign_all(consumer: &Reader, topics: &[(&str, i32)], start: Offset) -> anyhow::Result<()> {
    let mut assignment = TopicPartitionList::new();
    for (topic, partitions) in topics {
        for partition in 0..*partitions {
            assignment.add_partition_offset(topic, partition, start)?;
        }
    }
    consumer.assign(&assignment).context("could not assign the topics' partitions")
}

/// Reads `topic` from its beginning to its current end, calling `on_record`
/// for each record.
///
/// The end is where each partition stood when reading reached it: its last
/// committed record (read_committed). Records written later are not read.
pub async fn read_to_end(
    config: &WorkerConfig,
    topic: &str,
    partitions: i32,
    progress: &mut Progress,
    mut on_record: impl FnMut(&BorrowedMessage<'_>),
) -> anyhow::Result<()> {
    let consumer = reader(config, true)?;
    assign_all(&consumer, &[(topic, partitions)], Offset::Beginning)?;
    let mut open: BTreeSet<i32> = (0..partitions).collect();
    while !open.is_empty() {
        let received = tokio::time::timeout(READ_STALL_TIMEOUT, consumer.recv()).await.map_err(|_| {
            anyhow::anyhow!(
                "reading topic {topic:?} timed out: no record for {} s, with partitions {open:?} not at their end; \
                 check that the brokers are reachable",
                READ_STALL_TIMEOUT.as_secs()
            )
        })?;
        match received {
            Ok(record) => {
                on_record(&record);
                progress.inc(1);
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                open.remove(&partition);
            }
            // librdkafka retries broker errors itself; they are reported for
            // information, and the stall timeout bounds the wait.
            Err(error) => warn!(%error, topic, "Kafka consumer error; retrying"),
        }
    }
    Ok(())
}

/// Returns the value of a record's header, if it has it.
pub fn header<'a>(record: &'a BorrowedMessage<'_>, name: &str) -> Option<&'a [u8]> {
    record.headers()?.iter().find(|header| header.key == name)?.value
}

/// Returns a record's header value as text.
pub fn header_text(record: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    header(record, name).map(|value| String::from_utf8_lossy(value).into_owned())
}
