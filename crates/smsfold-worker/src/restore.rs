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
use smsfold_smpp::{Link, Pending};
use smsfold_wire::changelog::{self, ChangelogEntry};
use tracing::{info, warn};

use crate::error::WorkerError;
use crate::metrics;
use crate::projections::{CarrierFold, LinkTarget};

/// The folds rebuilt for a set of partitions.
#[derive(Default)]
pub struct Restored {
    pub messages: HashMap<i32, MessageFold>,
    pub campaigns: HashMap<i32, CampaignFold>,
    pub carriers: HashMap<i32, CarrierFold>,
    pub records: u64,
}

/// The stage whose state a changelog holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Message,
    Campaign,
    Carrier,
}

/// The changelog partitions to restore for one stage.
pub struct Partitions<'a> {
    pub stage: Stage,
    pub changelog: &'a str,
    pub partitions: &'a [i32],
}

/// Reads the given changelog partitions of each stage to their ends and
/// rebuilds the folds from them.
pub fn restore(client: &ClientConfig, stages: &[Partitions<'_>]) -> Result<Restored, WorkerError> {
    let started = Instant::now();
    // The changelogs are independent: read them side by side, each with its
    // own consumer and thread.
    let parts: Vec<Result<Restored, WorkerError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = stages
            .iter()
            .map(|stage| {
                scope.spawn(move || {
                    let mut part = Restored::default();
                    for &partition in stage.partitions {
                        match stage.stage {
                            Stage::Message => {
                                part.messages.insert(partition, MessageFold::new());
                            }
                            Stage::Campaign => {
                                part.campaigns.insert(partition, CampaignFold::new());
                            }
                            Stage::Carrier => {
                                part.carriers.insert(partition, CarrierFold::new());
                            }
                        }
                    }
                    restore_topic(client, stage.changelog, stage.partitions, stage.stage, &mut part).map(|()| part)
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    let mut restored = Restored::default();
    for part in parts {
        let part = part?;
        restored.records += part.records;
        restored.messages.extend(part.messages);
        restored.campaigns.extend(part.campaigns);
        restored.carriers.extend(part.carriers);
    }
    if restored.records > 0 || stages.iter().any(|stage| !stage.partitions.is_empty()) {
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
    stage: Stage,
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

    // The carrier join removes entries (a matched or expired receipt, an
    // evicted link) with tombstones, so its entries are applied only once
    // the last record of each key is known.
    let mut latest: HashMap<(i32, Vec<u8>), Option<Vec<u8>>> = HashMap::new();
    let mut remaining: Vec<i32> = partitions.to_vec();
    let mut last_report = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(record)) => {
                restored.records += 1;
                let partition = record.partition();
                let key = record.key().unwrap_or_default();
                if stage == Stage::Carrier {
                    latest.insert((partition, key.to_vec()), record.payload().map(<[u8]>::to_vec));
                } else {
                    apply(restored, stage, partition, changelog::decode(key, record.payload()));
                }
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
    for ((partition, key), value) in latest {
        apply(restored, stage, partition, changelog::decode(&key, value.as_deref()));
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
    stage: Stage,
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
    let message_stage = stage == Stage::Message;
    let campaign_stage = stage == Stage::Campaign;
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
        ChangelogEntry::Campaign(projection) if campaign_stage => {
            restored.campaigns.entry(partition).or_default().restore_campaign(&projection);
        }
        ChangelogEntry::CampaignMessage { campaign_id, message_id, status, segments } if campaign_stage => {
            let fold = restored.campaigns.entry(partition).or_default();
            fold.restore_message(&campaign_id, &message_id, status, segments);
        }
        ChangelogEntry::RetiredMessage { key, retired_at } if message_stage => {
            restored.messages.entry(partition).or_default().restore_retired(key, retired_at);
        }
        ChangelogEntry::RetiredCampaign { campaign_id, retired_at } if campaign_stage => {
            restored.campaigns.entry(partition).or_default().restore_retired(&campaign_id, retired_at);
        }
        ChangelogEntry::CarrierLink(link) if stage == Stage::Carrier => {
            let target = LinkTarget {
                message_id: link.message_id,
                segment: link.segment,
                message_partition: link.message_partition,
            };
            let restored_link = Link::new(&link.carrier_id, link.sent_at.as_millis(), &link.sent_event_id, target);
            restored.carriers.entry(partition).or_default().restore_link(&link.join_key, restored_link);
        }
        ChangelogEntry::PendingReceipt(pending) if stage == Stage::Carrier => {
            let receipt = &pending.receipt;
            let waiting = Pending::new(&pending.carrier_id, &receipt.event_id, receipt.occurred_at.as_millis(), pending.clone());
            restored.carriers.entry(partition).or_default().restore_pending(&pending.join_key, waiting);
        }
        _ => warn!(partition, "skipped a changelog record of the other stage"),
    }
}
