//! Restoring a stage partition's state from its changelog partition before
//! any new event of that partition is applied.
//!
//! The changelogs are written in the same transactions as the outputs and
//! the consumed offsets, and are read here with read_committed up to the end
//! of each partition, so the restored state is exactly the state as of the
//! last committed offsets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use smsfold_domain::{CampaignFold, MessageFold};
use smsfold_wire::changelog::{self, ChangelogEntry};
use tracing::{info, warn};

use crate::error::WorkerError;
use crate::metrics;

/// The folds rebuilt for a set of partitions.
#[derive(Default)]
pub struct Restored {
    pub messages: HashMap<i32, MessageFold>,
    pub campaigns: HashMap<i32, CampaignFold>,
    pub records: u64,
}

/// Reads the message changelog partitions `message_partitions` and the
/// campaign changelog partitions `campaign_partitions` to their ends and
/// rebuilds the folds from them.
pub fn restore(
    client: &ClientConfig,
    message_changelog: &str,
    message_partitions: &[i32],
    campaign_changelog: &str,
    campaign_partitions: &[i32],
) -> Result<Restored, WorkerError> {
    let started = Instant::now();
    let mut restored = Restored::default();
    for &partition in message_partitions {
        restored.messages.insert(partition, MessageFold::new());
    }
    for &partition in campaign_partitions {
        restored.campaigns.insert(partition, CampaignFold::new());
    }
    // The two changelogs are independent: read them side by side, each with
    // its own consumer and thread.
    let (messages, campaigns) = std::thread::scope(|scope| {
        let messages = scope.spawn(|| {
            let mut part = Restored { messages: std::mem::take(&mut restored.messages), ..Restored::default() };
            restore_topic(client, message_changelog, message_partitions, true, &mut part).map(|()| part)
        });
        let mut part = Restored { campaigns: std::mem::take(&mut restored.campaigns), ..Restored::default() };
        let campaigns = restore_topic(client, campaign_changelog, campaign_partitions, false, &mut part).map(|()| part);
        let messages = messages.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (messages, campaigns)
    });
    let (messages, campaigns) = (messages?, campaigns?);
    restored.records = messages.records + campaigns.records;
    restored.messages = messages.messages;
    restored.campaigns = campaigns.campaigns;
    if restored.records > 0 || !message_partitions.is_empty() || !campaign_partitions.is_empty() {
        metrics::restored(restored.records, started.elapsed());
        info!(
            records = restored.records,
            seconds = started.elapsed().as_secs_f64(),
            "restored state from the changelogs"
        );
    }
    Ok(restored)
}

/// Reads `partitions` of one changelog topic from the beginning until each
/// reports its end (the last stable offset, under read_committed).
fn restore_topic(
    client: &ClientConfig,
    topic: &str,
    partitions: &[i32],
    message_stage: bool,
    restored: &mut Restored,
) -> Result<(), WorkerError> {
    if partitions.is_empty() {
        return Ok(());
    }
    let consumer: BaseConsumer<RestoreContext> = client
        .clone()
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "16777216")
        // librdkafka waits fetch.queue.backoff.ms (1 s by default) after a
        // fetch that fills its local queue; a restore reads back to back.
        .set("fetch.queue.backoff.ms", "10")
        .create_with_context(RestoreContext)
        .map_err(WorkerError::Kafka)?;

    let probe: BaseConsumer<RestoreContext> = client
        .clone()
        .set("isolation.level", "read_uncommitted")
        .create_with_context(RestoreContext)
        .map_err(WorkerError::Kafka)?;

    let mut assignment = TopicPartitionList::new();
    let mut high_watermarks = HashMap::new();
    for &partition in partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).map_err(WorkerError::Kafka)?;
        let high = wait_until_stable(&probe, &consumer, topic, partition)?;
        high_watermarks.insert(partition, high);
        metrics::restore_remaining(topic, partition, high);
    }
    consumer.assign(&assignment).map_err(WorkerError::Kafka)?;
    info!(topic, partitions = partitions.len(), "restoring state from a changelog");

    let mut remaining: Vec<i32> = partitions.to_vec();
    let mut last_report = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(record)) => {
                restored.records += 1;
                let partition = record.partition();
                let entry = changelog::decode(record.key().unwrap_or_default(), record.payload());
                apply(restored, message_stage, partition, entry);
                if last_report.elapsed() >= Duration::from_secs(1) {
                    last_report = Instant::now();
                    let high = high_watermarks.get(&partition).copied().unwrap_or(0);
                    metrics::restore_remaining(topic, partition, (high - record.offset() - 1).max(0));
                    info!(topic, records = restored.records, "restoring state");
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                remaining.retain(|p| *p != partition);
                metrics::restore_remaining(topic, partition, 0);
            }
            Some(Err(error)) => warn!(%error, topic, "changelog read failed; retrying"),
            None => {}
        }
    }
    Ok(())
}

/// Waits until no open transaction holds back the partition's committed
/// end, and returns its high watermark.
///
/// A read_committed consumer stops at the last stable offset (LSO), the
/// start of the oldest open transaction. If a previous owner died with a
/// transaction open, records committed after that transaction began sit
/// beyond the LSO, and a restore that stopped there would miss them. Such a
/// transaction ends when its owner restarts (init_transactions aborts it)
/// or when `transaction.timeout.ms` passes, so the wait is bounded.
fn wait_until_stable(
    probe: &BaseConsumer<RestoreContext>,
    committed: &BaseConsumer<RestoreContext>,
    topic: &str,
    partition: i32,
) -> Result<i64, WorkerError> {
    let timeout = Duration::from_secs(30);
    let started = Instant::now();
    loop {
        // The probe reads uncommitted, so its "high" is the high watermark;
        // the read_committed consumer's "high" is the LSO. A just-created
        // partition may have no leader yet, so errors are retried for a while.
        let watermarks = probe
            .fetch_watermarks(topic, partition, timeout)
            .and_then(|(_, high)| committed.fetch_watermarks(topic, partition, timeout).map(|(_, stable)| (high, stable)));
        let (high, stable) = match watermarks {
            Ok(watermarks) => watermarks,
            Err(error) if started.elapsed() < Duration::from_secs(60) => {
                warn!(%error, topic, partition, "could not read changelog watermarks; retrying");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
            Err(error) => return Err(WorkerError::Kafka(error)),
        };
        if stable >= high {
            return Ok(high);
        }
        if started.elapsed() >= Duration::from_secs(2) {
            info!(topic, partition, stable, high, "waiting for an open transaction on the changelog to end");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Client callbacks of the restore consumer: the end-of-partition events it
/// requests are expected, so they are not logged as errors.
struct RestoreContext;

impl ClientContext for RestoreContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let end_of_partition = matches!(
            error,
            KafkaError::PartitionEOF(_) | KafkaError::Global(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        );
        if !end_of_partition {
            warn!(%error, reason, "changelog consumer error");
        }
    }
}

impl ConsumerContext for RestoreContext {}

fn apply(
    restored: &mut Restored,
    message_stage: bool,
    partition: i32,
    entry: Result<Option<ChangelogEntry>, smsfold_wire::DecodeError>,
) {
    let entry = match entry {
        Ok(Some(entry)) => entry,
        Ok(None) => return,
        Err(error) => {
            warn!(%error, partition, "skipped an undecodable changelog record");
            return;
        }
    };
    match entry {
        ChangelogEntry::Message(projection) if message_stage => {
            let fold = restored.messages.entry(partition).or_default();
            if let Err(error) = fold.restore(&projection) {
                warn!(%error, partition, "skipped a changelog message");
            }
        }
        ChangelogEntry::Cancellation { campaign_id, cause_event_id, occurred_at } if message_stage => {
            let fold = restored.messages.entry(partition).or_default();
            fold.restore_cancellation(&campaign_id, &cause_event_id, occurred_at);
        }
        ChangelogEntry::Campaign(projection) if !message_stage => {
            restored.campaigns.entry(partition).or_default().restore_campaign(&projection);
        }
        ChangelogEntry::CampaignMessage { campaign_id, message_id, status, segments } if !message_stage => {
            let fold = restored.campaigns.entry(partition).or_default();
            fold.restore_message(&campaign_id, &message_id, status, segments);
        }
        ChangelogEntry::RetiredMessage { key, retired_at } if message_stage => {
            restored.messages.entry(partition).or_default().restore_retired(key, retired_at);
        }
        ChangelogEntry::RetiredCampaign { campaign_id, retired_at } if !message_stage => {
            restored.campaigns.entry(partition).or_default().restore_retired(&campaign_id, retired_at);
        }
        _ => warn!(partition, "skipped a changelog record of the other stage"),
    }
}
