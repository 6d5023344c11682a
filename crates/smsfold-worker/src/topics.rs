//! Start-up checks of the topics: inputs must exist; outputs and internal
//! topics are created when missing, with the partitions the flow needs.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;
use tracing::info;

use crate::config::WorkerConfig;
use crate::error::WorkerError;

/// Settings of the changelog topics the worker creates. The log cleaner
/// never compacts a partition's active segment, so segments roll every
/// 16 MiB or hour. A changelog then shrinks towards one record per key soon
/// after it is written, and a restore reads little more than the live state.
pub const CHANGELOG_TOPIC_CONFIG: [(&str, &str); 3] =
    [("cleanup.policy", "compact"), ("segment.bytes", "16777216"), ("segment.ms", "3600000")];

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Partition counts the worker runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub message_events: i32,
    pub message_commands: i32,
    pub campaign_stage: i32,
    pub carrier_join: i32,
}

/// Checks the input topics and creates the missing output and internal ones.
pub async fn prepare(config: &WorkerConfig, client_config: &ClientConfig) -> Result<Layout, WorkerError> {
    let admin: AdminClient<DefaultClientContext> = client_config.create().map_err(WorkerError::Kafka)?;
    let topics = &config.topics;

    let message_events = partitions(&admin, &topics.message_events)?.ok_or_else(|| missing_input("topics.message_events", &topics.message_events))?;
    partitions(&admin, &topics.campaign_events)?.ok_or_else(|| missing_input("topics.campaign_events", &topics.campaign_events))?;

    let stage_partitions = config.campaign_stage_partitions.unwrap_or(message_events);
    let message_changelog = config.message_changelog();
    let campaign_changelog = config.campaign_changelog();
    let carrier_changelog = config.carrier_changelog();
    // (topic, partitions, compacted)
    let required = [
        (topics.message_commands.as_str(), message_events, false),
        (topics.campaign_stage.as_str(), stage_partitions, false),
        (topics.carrier_join.as_str(), message_events, false),
        (topics.message_changes.as_str(), message_events, false),
        (topics.campaign_changes.as_str(), stage_partitions, false),
        (topics.dead_letter.as_str(), message_events, false),
        (message_changelog.as_str(), message_events, true),
        (campaign_changelog.as_str(), stage_partitions, true),
        (carrier_changelog.as_str(), message_events, true),
    ];
    let mut missing = Vec::new();
    for (topic, count, compacted) in required {
        if partitions(&admin, topic)?.is_none() {
            let mut new = NewTopic::new(topic, count, TopicReplication::Fixed(config.replication_factor));
            if compacted {
                for (key, value) in CHANGELOG_TOPIC_CONFIG {
                    new = new.set(key, value);
                }
            }
            missing.push(new);
        }
    }
    if !missing.is_empty() {
        let results = admin.create_topics(&missing, &AdminOptions::new()).await.map_err(WorkerError::Kafka)?;
        for result in results {
            match result {
                Ok(topic) => info!(topic, "created topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(WorkerError::Topic(format!("could not create topic {topic:?}: {code}")));
                }
            }
        }
    }

    // Each changelog must match its stage partition for partition, or a
    // restore reads another partition's state.
    let campaign_stage = wait_for_partitions(&admin, &topics.campaign_stage).await?;
    let carrier_join = wait_for_partitions(&admin, &topics.carrier_join).await?;
    for (changelog, expected, setting) in [
        (&message_changelog, message_events, "group_id"),
        (&campaign_changelog, campaign_stage, "group_id"),
        (&carrier_changelog, carrier_join, "group_id"),
    ] {
        let actual = wait_for_partitions(&admin, changelog).await?;
        if actual != expected {
            return Err(WorkerError::Config(crate::config::ConfigError::new(
                setting,
                format!(
                    "changelog topic {changelog:?} has {actual} partitions but its stage has {expected}; \
                     use a new group id or recreate the changelog"
                ),
            )));
        }
    }

    // The message commands topic must match the message events topic
    // partition for partition, or cancellations reach the wrong stage.
    let message_commands = wait_for_partitions(&admin, &topics.message_commands).await?;
    if message_commands != message_events {
        return Err(WorkerError::Config(crate::config::ConfigError::new(
            "topics.message_commands",
            format!(
                "topic {:?} has {message_commands} partitions but {:?} has {message_events}; \
                 delete it so smsfold recreates it, or name a new topic",
                topics.message_commands, topics.message_events
            ),
        )));
    }
    Ok(Layout { message_events, message_commands, campaign_stage, carrier_join })
}

fn missing_input(setting: &'static str, topic: &str) -> WorkerError {
    WorkerError::Config(crate::config::ConfigError::new(
        setting,
        format!("input topic {topic:?} does not exist; create it, or set {setting} to the platform's topic"),
    ))
}

/// Returns a topic's partition count, or `None` when it does not exist.
fn partitions(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<Option<i32>, WorkerError> {
    let metadata = admin.inner().fetch_metadata(Some(topic), METADATA_TIMEOUT).map_err(|error| {
        WorkerError::Topic(format!(
            "could not read the metadata of topic {topic:?}: {error}; check that bootstrap_servers names a running broker"
        ))
    })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    if found.error().is_some() || found.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(found.partitions().len() as i32))
}

async fn wait_for_partitions(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Result<i32, WorkerError> {
    for _ in 0..50 {
        if let Some(count) = partitions(admin, topic)? {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(WorkerError::Topic(format!("topic {topic:?} has no partitions 5 s after it was created")))
}
