//! The compared traffic: `smsfold-workload` events produced as protobuf,
//! what a pure fold of them gives, and reading a topic back.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use smsfold_domain::{CampaignFold, MessageFold, MessageUpdate};
use smsfold_workload::{encode, Event, Generator, WorkloadConfig};

use crate::support::kafka::Kafka;
use crate::support::workload::Encoded;
use crate::systems::Inputs;

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The result of a pure fold of the traffic, which both folding systems are
/// checked against.
#[derive(Debug, Default)]
pub struct Expected {
    pub message_events: u64,
    pub campaign_events: u64,
    pub message_changes: u64,
    pub live_messages: u64,
    /// Final campaign projections by campaign id.
    pub campaigns: BTreeMap<String, CampaignSummary>,
}

impl Expected {
    pub fn events(&self) -> u64 {
        self.message_events + self.campaign_events
    }
}

/// The compared part of a campaign's final projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSummary {
    pub status: Option<String>,
    pub recipients: Option<u64>,
    pub dispatched: Option<u64>,
    pub messages: u64,
    pub segments: u64,
    pub billable_segments: u64,
    /// Messages per status, in the order of `MessageStatus::ALL`.
    pub by_status: Vec<u64>,
}

/// Returns the workload of the comparison: `smsfold-workload`'s defaults
/// with `messages` messages.
pub fn workload(messages: u64) -> WorkloadConfig {
    WorkloadConfig { messages, ..WorkloadConfig::default() }
}

/// Produces the workload to `inputs`, campaign events first, then message
/// events in arrival order, and folds it as smsfold would.
pub fn produce(kafka: &Kafka, inputs: &Inputs, config: &WorkloadConfig) -> anyhow::Result<Expected> {
    let campaign_events: Vec<Encoded> = Generator::new(config.clone())?
        .filter_map(|generated| match generated.event {
            Event::Campaign(_) => Some(Encoded { key: generated.key().to_owned(), value: encode::protobuf(&generated.event) }),
            Event::Message(_) => None,
        })
        .collect();
    let message_events = Generator::new(config.clone())?.filter_map(|generated| match generated.event {
        Event::Message(_) => Some(Encoded { key: generated.key().to_owned(), value: encode::protobuf(&generated.event) }),
        Event::Campaign(_) => None,
    });
    kafka.produce(&inputs.campaign_events, campaign_events, PRODUCE_TIMEOUT)?;
    kafka.produce(&inputs.message_events, message_events, PRODUCE_TIMEOUT)?;
    expected(config)
}

/// Folds the workload with smsfold's domain folds, in arrival order.
pub fn expected(config: &WorkloadConfig) -> anyhow::Result<Expected> {
    let mut messages = MessageFold::new();
    let mut campaigns = CampaignFold::new();
    let mut expected = Expected::default();
    for generated in Generator::new(config.clone())? {
        match &generated.event {
            Event::Message(event) => {
                expected.message_events += 1;
                let applied = messages.apply(event).map_err(|reject| anyhow::anyhow!("the fold rejected {}: {reject}", event.event_id))?;
                expected.message_changes += u64::from(applied.change.is_some()) + u64::from(applied.canceled.is_some());
                if let Some(link) = applied.campaign {
                    let campaign_id = messages.campaign_id(link.campaign).to_owned();
                    campaigns.record(&MessageUpdate {
                        campaign_id: &campaign_id,
                        message_id: &event.message_id,
                        status: link.status,
                        segments: link.segments,
                        at: link.at,
                        previous: link.previous,
                    });
                }
            }
            Event::Campaign(event) => {
                expected.campaign_events += 1;
                campaigns.apply(event).map_err(|reject| anyhow::anyhow!("the fold rejected {}: {reject}", event.event_id))?;
            }
        }
    }
    expected.live_messages = messages.len() as u64;
    for projection in campaigns.projections() {
        let counts = &projection.counts;
        let summary = CampaignSummary {
            status: projection.status.map(|status| status.as_str().to_owned()),
            recipients: projection.recipients,
            dispatched: projection.dispatched,
            messages: counts.messages(),
            segments: counts.segments,
            billable_segments: counts.billable_segments,
            by_status: smsfold_domain::MessageStatus::ALL.iter().map(|status| counts.count(*status)).collect(),
        };
        expected.campaigns.insert(projection.campaign_id, summary);
    }
    Ok(expected)
}

/// One record read back: its partition and value.
pub struct Read {
    pub partition: i32,
    pub value: Vec<u8>,
}

/// Reads every committed record of `topic` from the beginning, until each
/// partition reached the end it had when the read started.
pub fn read_all(kafka: &Kafka, topic: &str) -> anyhow::Result<Vec<Read>> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "104857600")
        .create()
        .context("could not create the reading consumer")?;
    let partitions = kafka.partitions(topic)?.with_context(|| format!("topic {topic} does not exist"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut records = Vec::new();
    let mut at_end = HashSet::new();
    let started = std::time::Instant::now();
    while at_end.len() < partitions as usize {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("reading {topic} did not reach its end within 600 s");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(record)) => {
                at_end.remove(&record.partition());
                records.push(Read { partition: record.partition(), value: record.payload().unwrap_or_default().to_vec() });
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => bail!("reading {topic} failed: {error}"),
            None => {}
        }
    }
    Ok(records)
}
