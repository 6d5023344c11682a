//! Rebuilding the projections from the input topics.
//!
//! The steps: record the input offsets the group had committed (the
//! outputs below them were published already), drop the state (the group's
//! offsets, the changelogs and the internal topics), then run one worker
//! over the inputs from the beginning in replay mode until it has passed
//! those offsets. The recorded offsets are kept in a topic
//! `{group_id}-rebuild` until the rebuild ends, so a rebuild that is
//! interrupted can be run again without publishing anything twice.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::info;

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::worker::Worker;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Progress of a rebuild's replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildProgress {
    /// Input records folded again so far.
    pub replayed: i64,
    /// Input records to fold again in all.
    pub total: i64,
}

/// Rebuilds the projections of `config.group_id`; calls `progress` about
/// once a second. Every smsfold instance of the group must be stopped.
pub async fn rebuild(config: WorkerConfig, progress: impl Fn(RebuildProgress)) -> Result<RebuildProgress, WorkerError> {
    config.validate()?;
    let client = client_config(&config);
    let admin: AdminClient<DefaultClientContext> = client.create().map_err(WorkerError::Kafka)?;
    let targets_topic = format!("{}-rebuild", config.group_id);

    let targets = match read_targets(&client, &targets_topic)? {
        Some(targets) => {
            info!(topic = %targets_topic, "resuming an interrupted rebuild");
            targets
        }
        None => {
            let targets = committed_inputs(&config, &client)?;
            save_targets(&admin, &client, &targets_topic, &targets).await?;
            drop_state(&config, &admin).await?;
            targets
        }
    };
    let total: i64 = targets.values().sum();
    info!(records = total, "replaying the input topics");

    let (shutdown_tx, shutdown) = watch::channel(false);
    let worker = Worker::new(config.clone())?.replaying(targets.clone());
    let running = tokio::spawn(worker.run(shutdown));
    let mut last = RebuildProgress { replayed: 0, total };
    let mut caught_up_since: Option<std::time::Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if running.is_finished() {
            break;
        }
        let committed = committed_offsets(&config, &client, targets.keys())?;
        let replayed: i64 =
            targets.iter().map(|(key, target)| committed.get(key).copied().unwrap_or(0).min(*target)).sum();
        last = RebuildProgress { replayed, total };
        progress(last);
        if replayed >= total {
            // Trailing aborted records can keep the committed offsets of an
            // internal topic short of its end, so waiting is bounded.
            let since = *caught_up_since.get_or_insert_with(std::time::Instant::now);
            if internal_topics_drained(&config, &client)? || since.elapsed() > Duration::from_secs(10) {
                break;
            }
        }
    }
    let _ = shutdown_tx.send(true);
    running.await.map_err(|error| WorkerError::Topic(format!("the rebuild worker failed: {error}")))??;

    admin
        .delete_topics(&[targets_topic.as_str()], &AdminOptions::new())
        .await
        .map_err(WorkerError::Kafka)?;
    info!(records = total, "rebuild finished");
    Ok(last)
}

fn client_config(config: &WorkerConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.bootstrap_servers);
    for (key, value) in &config.kafka_properties {
        client.set(key, value);
    }
    client
}

/// Returns the group's committed offsets of every input partition (0 where
/// nothing was committed).
fn committed_inputs(config: &WorkerConfig, client: &ClientConfig) -> Result<HashMap<(String, i32), i64>, WorkerError> {
    let consumer: BaseConsumer = client.clone().set("group.id", &config.group_id).create().map_err(WorkerError::Kafka)?;
    let mut keys = Vec::new();
    for topic in [&config.topics.message_events, &config.topics.campaign_events] {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(WorkerError::Kafka)?;
        for found in metadata.topics() {
            for partition in found.partitions() {
                keys.push((topic.clone(), partition.id()));
            }
        }
    }
    committed_offsets(config, client, keys.iter())
}

fn committed_offsets<'a>(
    config: &WorkerConfig,
    client: &ClientConfig,
    keys: impl Iterator<Item = &'a (String, i32)>,
) -> Result<HashMap<(String, i32), i64>, WorkerError> {
    let consumer: BaseConsumer = client.clone().set("group.id", &config.group_id).create().map_err(WorkerError::Kafka)?;
    let mut list = TopicPartitionList::new();
    for (topic, partition) in keys {
        list.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(list, TIMEOUT).map_err(WorkerError::Kafka)?;
    Ok(committed
        .elements()
        .iter()
        .map(|element| {
            let offset = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => 0,
            };
            ((element.topic().to_owned(), element.partition()), offset)
        })
        .collect())
}

/// Returns true when the group has consumed the internal topics to their end.
fn internal_topics_drained(config: &WorkerConfig, client: &ClientConfig) -> Result<bool, WorkerError> {
    let consumer: BaseConsumer = client
        .clone()
        .set("group.id", &config.group_id)
        .set("isolation.level", "read_committed")
        .create()
        .map_err(WorkerError::Kafka)?;
    let mut keys = Vec::new();
    for topic in [&config.topics.campaign_stage, &config.topics.message_commands, &config.topics.carrier_join] {
        let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(WorkerError::Kafka)?;
        for found in metadata.topics() {
            for partition in found.partitions() {
                keys.push((topic.clone(), partition.id()));
            }
        }
    }
    let committed = committed_offsets(config, client, keys.iter())?;
    for (topic, partition) in &keys {
        let (_, end) = consumer.fetch_watermarks(topic, *partition, TIMEOUT).map_err(WorkerError::Kafka)?;
        // A committed offset can stop short of the end by the last
        // transaction marker.
        if committed.get(&(topic.clone(), *partition)).copied().unwrap_or(0) + 1 < end {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes the group's offsets, the changelogs and the internal topics.
async fn drop_state(config: &WorkerConfig, admin: &AdminClient<DefaultClientContext>) -> Result<(), WorkerError> {
    // Static members leave only when their session times out, so a group
    // whose instances were just stopped stays non-empty for a while.
    let started = std::time::Instant::now();
    loop {
        let results = admin
            .delete_groups(&[config.group_id.as_str()], &AdminOptions::new())
            .await
            .map_err(WorkerError::Kafka)?;
        match results.into_iter().next() {
            Some(Err((_, rdkafka::types::RDKafkaErrorCode::NonEmptyGroup)))
                if started.elapsed() < Duration::from_secs(120) =>
            {
                info!(group = %config.group_id, "waiting for the group's members to leave (session timeout)");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Some(Err((group, code))) if code != rdkafka::types::RDKafkaErrorCode::GroupIdNotFound => {
                return Err(WorkerError::Topic(format!(
                    "could not delete consumer group {group:?}: {code}; stop every smsfold instance of the group first"
                )));
            }
            _ => break,
        }
    }
    let topics = [
        config.message_changelog(),
        config.campaign_changelog(),
        config.carrier_changelog(),
        config.topics.campaign_stage.clone(),
        config.topics.message_commands.clone(),
        config.topics.carrier_join.clone(),
    ];
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    let _ = admin.delete_topics(&names, &AdminOptions::new()).await.map_err(WorkerError::Kafka)?;
    // Deletion completes in the background; wait until the topics are gone.
    for _ in 0..300 {
        let metadata = admin.inner().fetch_metadata(None, TIMEOUT).map_err(WorkerError::Kafka)?;
        if !metadata.topics().iter().any(|topic| names.contains(&topic.name())) {
            info!(topics = ?names, "dropped the state");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(WorkerError::Topic(format!("topics {names:?} still exist 30 s after they were deleted")))
}

async fn save_targets(
    admin: &AdminClient<DefaultClientContext>,
    client: &ClientConfig,
    topic: &str,
    targets: &HashMap<(String, i32), i64>,
) -> Result<(), WorkerError> {
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    for result in admin.create_topics(&[new], &AdminOptions::new()).await.map_err(WorkerError::Kafka)? {
        if let Err((topic, code)) = result {
            if code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists {
                return Err(WorkerError::Topic(format!("could not create topic {topic:?}: {code}")));
            }
        }
    }
    let value = targets
        .iter()
        .map(|((topic, partition), offset)| format!("{topic}\t{partition}\t{offset}"))
        .collect::<Vec<_>>()
        .join("\n");
    let producer: ThreadedProducer<DefaultProducerContext> =
        client.clone().set("acks", "all").create().map_err(WorkerError::Kafka)?;
    producer
        .send(BaseRecord::to(topic).key("targets").payload(&value))
        .map_err(|(error, _)| WorkerError::Kafka(error))?;
    producer.flush(TIMEOUT).map_err(WorkerError::Kafka)?;
    Ok(())
}

/// Reads the offsets an interrupted rebuild saved, if any.
fn read_targets(client: &ClientConfig, topic: &str) -> Result<Option<HashMap<(String, i32), i64>>, WorkerError> {
    let consumer: BaseConsumer = client.clone().set("group.id", format!("{topic}-reader")).create().map_err(WorkerError::Kafka)?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(WorkerError::Kafka)?;
    let exists = metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
    if !exists {
        return Ok(None);
    }
    let (_, end) = consumer.fetch_watermarks(topic, 0, TIMEOUT).map_err(WorkerError::Kafka)?;
    if end == 0 {
        return Ok(None);
    }
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Offset(end - 1)).map_err(WorkerError::Kafka)?;
    consumer.assign(&list).map_err(WorkerError::Kafka)?;
    for _ in 0..300 {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let record = result.map_err(WorkerError::Kafka)?;
            let text = String::from_utf8_lossy(record.payload().unwrap_or_default()).into_owned();
            let mut targets = HashMap::new();
            for line in text.lines() {
                let fields: Vec<&str> = line.split('\t').collect();
                if let [topic, partition, offset] = fields[..] {
                    if let (Ok(partition), Ok(offset)) = (partition.parse(), offset.parse()) {
                        targets.insert((topic.to_owned(), partition), offset);
                    }
                }
            }
            return Ok(Some(targets));
        }
    }
    Err(WorkerError::Topic(format!("could not read the saved rebuild offsets from {topic:?}")))
}
