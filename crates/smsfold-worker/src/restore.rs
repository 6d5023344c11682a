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
use smsfold_wire::changelog::{self, CarrierEntryKey, ChangelogEntry};
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
    // own consumer and thread. The threads log in the caller's span, which
    // names the pipeline.
    let span = tracing::Span::current();
    let parts: Vec<Result<Restored, WorkerError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = stages
            .iter()
            .map(|stage| {
                let span = span.clone();
                scope.spawn(move || {
                    let _entered = span.enter();
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

    let mut remaining: Vec<i32> = partitions.to_vec();
    let mut last_report = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(record)) => {
                restored.records += 1;
                let partition = record.partition();
                apply_record(restored, stage, partition, record.key().unwrap_or_default(), record.payload());
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
// NOTE: a transaction that the broker no longer ends (a hanging
// transaction) keeps the restore waiting forever; it only warns, every minute.
fn wait_until_stable(
    probe: &BaseConsumer<RestoreContext>,
    committed: &BaseConsumer<RestoreContext>,
    topic: &str,
    partition: i32,
) -> Result<i64, WorkerError> {
    let timeout = Duration::from_secs(30);
    let started = Instant::now();
    let mut last_warning = None;
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
        let waited = started.elapsed();
        let warn_due = last_warning.is_none_or(|at: Instant| at.elapsed() >= Duration::from_secs(60));
        if waited >= Duration::from_secs(60) && warn_due {
            last_warning = Some(Instant::now());
            warn!(
                topic,
                partition,
                stable,
                seconds = waited.as_secs(),
                "an open transaction has held the changelog back longer than the transaction timeout; if it never \
                 ends, find and abort it with kafka-transactions.sh find-hanging and abort"
            );
        } else if waited >= Duration::from_secs(2) {
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

/// Applies one changelog record, in the order the records are read, so
/// that the last record of each key decides its entry.
///
/// A carrier join tombstone (a matched or expired receipt, an evicted link)
/// removes the entry its key names. Tombstones of the other stages decode
/// to nothing and change no fold.
fn apply_record(restored: &mut Restored, stage: Stage, partition: i32, key: &[u8], value: Option<&[u8]>) {
    if stage == Stage::Carrier && value.is_none() {
        remove_carrier_entry(restored, partition, key);
    } else {
        apply(restored, stage, partition, changelog::decode(key, value));
    }
}

/// Removes the carrier link or pending receipt that a tombstone's key names.
///
/// The join's watermark stays where the entry's earlier record raised it.
/// The partition saw that event before the entry was removed, so the live
/// join's watermark had reached its time too. So the restored watermark is
/// never above the live one, though it can be higher than when only the
/// last record of each key is applied, and it depends on which records
/// compaction has deleted.
fn remove_carrier_entry(restored: &mut Restored, partition: i32, key: &[u8]) {
    let join = restored.carriers.entry(partition).or_default();
    match changelog::decode_carrier_key(key) {
        Ok(CarrierEntryKey::Link { join_key, spelling }) => {
            join.remove_link(join_key, spelling);
        }
        Ok(CarrierEntryKey::PendingReceipt { join_key, event_id }) => {
            join.remove_pending(join_key, event_id);
        }
        Err(error) => warn!(%error, partition, "skipped an undecodable carrier join changelog tombstone"),
    }
}

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
        ChangelogEntry::Campaign { projection, counts } if campaign_stage => {
            let fold = restored.campaigns.entry(partition).or_default();
            fold.restore_campaign(&projection);
            if let Some(counts) = counts {
                fold.restore_counts(&projection.campaign_id, counts);
            }
        }
        ChangelogEntry::CampaignMessage { campaign_id, message_id, status, segments, counted } if campaign_stage => {
            let fold = restored.campaigns.entry(partition).or_default();
            fold.restore_message(&campaign_id, &message_id, status, segments, counted);
        }
        ChangelogEntry::RetiredMessage { key, retired_at } if message_stage => {
            restored.messages.entry(partition).or_default().restore_retired(key, retired_at);
        }
        ChangelogEntry::RetiredCampaign { campaign_id, retired_at } if campaign_stage => {
            restored.campaigns.entry(partition).or_default().restore_retired(&campaign_id, retired_at);
        }
        ChangelogEntry::CarrierLink(link) if stage == Stage::Carrier => {
            let target = LinkTarget {
                message_id: link.message_id.into_boxed_str(),
                segment: link.segment,
                message_partition: link.message_partition,
            };
            let restored_link = Link {
                carrier_id: link.carrier_id,
                sent_at: link.sent_at.as_millis(),
                sent_event_id: link.sent_event_id,
                data: target,
            };
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

#[cfg(test)]
mod tests {
    use smsfold_domain::{ReceiptOutcome, Segment, Timestamp};
    use smsfold_smpp::{carrier_spelling, receipt_join_key, Joined};
    use smsfold_wire::carrier_join::{CarrierLinkRecord, OriginalRecord, PendingReceiptRecord, ReadReceipt};

    use super::*;

    /// A changelog record's key and value, `None` for a tombstone.
    type Record = (Vec<u8>, Option<Vec<u8>>);

    fn link(carrier_id: &str, message_id: &str, sent_at: i64) -> CarrierLinkRecord {
        CarrierLinkRecord {
            join_key: receipt_join_key(carrier_id).expect("a carrier id with keys"),
            carrier_id: carrier_id.into(),
            message_id: message_id.into(),
            segment: Segment { index: 0, count: 1 },
            sent_at: Timestamp::from_millis(sent_at),
            sent_event_id: format!("sent-{message_id}"),
            message_partition: 1,
        }
    }

    fn link_put(link: &CarrierLinkRecord) -> Record {
        let (key, value) = changelog::carrier_link_record(link, &carrier_spelling(&link.carrier_id));
        (key, Some(value))
    }

    fn link_tombstone(link: &CarrierLinkRecord) -> Record {
        (changelog::carrier_link_key(&link.join_key, &carrier_spelling(&link.carrier_id)), None)
    }

    fn pending(carrier_id: &str, event_id: &str, occurred_at: i64) -> PendingReceiptRecord {
        PendingReceiptRecord {
            join_key: receipt_join_key(carrier_id).expect("a carrier id with keys"),
            carrier_id: carrier_id.into(),
            receipt: ReadReceipt {
                event_id: event_id.into(),
                occurred_at: Timestamp::from_millis(occurred_at),
                outcome: ReceiptOutcome::Delivered,
                error_code: 0,
                done_at: None,
                carrier: None,
            },
            original: OriginalRecord::default(),
        }
    }

    fn pending_put(pending: &PendingReceiptRecord) -> Record {
        let (key, value) = changelog::pending_receipt_record(pending);
        (key, Some(value))
    }

    fn pending_tombstone(pending: &PendingReceiptRecord) -> Record {
        (changelog::pending_receipt_key(&pending.join_key, &pending.receipt.event_id), None)
    }

    fn restore_in_place(records: &[Record]) -> Restored {
        let mut restored = Restored::default();
        for (key, value) in records {
            apply_record(&mut restored, Stage::Carrier, 0, key, value.as_deref());
        }
        restored
    }

    /// Restores as before records were applied in place: only the last
    /// record of each key, applied after every record is read.
    fn restore_last_per_key(records: &[Record]) -> Restored {
        let mut latest: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
        for (key, value) in records {
            latest.insert(key, value.as_deref());
        }
        let mut restored = Restored::default();
        for (key, value) in latest {
            apply(&mut restored, Stage::Carrier, 0, changelog::decode(key, value));
        }
        restored
    }

    /// The links as (join key, spelling, sent time, sent event id, message
    /// id) and the pending receipts as (join key, event id), both sorted.
    type Snapshot = (Vec<(String, String, i64, String, String)>, Vec<(String, String)>);

    fn snapshot(restored: &Restored) -> Snapshot {
        let Some(join) = restored.carriers.get(&0) else { return Snapshot::default() };
        let mut links: Vec<_> = join
            .links()
            .map(|link| {
                let (join_key, spelling) = (link.join_key().into_owned(), link.spelling().to_owned());
                let message_id = link.data().message_id.to_string();
                (join_key, spelling, link.sent_at(), link.sent_event_id().into_owned(), message_id)
            })
            .collect();
        links.sort();
        let mut pending: Vec<_> =
            join.pending().map(|(join_key, pending)| (join_key.to_owned(), pending.event_id.clone())).collect();
        pending.sort();
        (links, pending)
    }

    #[test]
    fn carrier_records_apply_in_place() {
        let first_send = link("4F2A", "m-1", 1);
        let second_send = link("4F2A", "m-2", 5);
        let decimal = link("169552957", "m-3", 2);
        let reused = link("carrier3-0a1b", "m-4", 3);
        let reused_later = link("carrier3-0a1b", "m-5", 4);
        let evicted = link("77AB", "m-6", 2);
        let waiting = pending("55", "r-1", 2);
        let matched = pending("56", "r-2", 3);
        let records = [
            link_tombstone(&link("99", "m-0", 1)),
            link_put(&first_send),
            pending_put(&waiting),
            link_put(&decimal),
            link_tombstone(&first_send),
            pending_tombstone(&waiting),
            link_put(&second_send),
            pending_put(&waiting),
            pending_put(&matched),
            link_put(&reused),
            link_put(&evicted),
            pending_tombstone(&matched),
            link_put(&reused_later),
            link_tombstone(&evicted),
        ];

        let in_place = restore_in_place(&records);
        let last_per_key = restore_last_per_key(&records);

        assert_eq!(snapshot(&in_place), snapshot(&last_per_key));
        let (links, pending) = snapshot(&in_place);
        let message_ids: Vec<&str> = links.iter().map(|link| link.4.as_str()).collect();
        assert_eq!(message_ids, ["m-2", "m-3", "m-5"], "links sorted by join key");
        assert_eq!(pending, [(waiting.join_key.clone(), "r-1".to_owned())]);
    }

    /// Builds a campaign entry as smsfold wrote them before they contained counts.
    fn campaign_without_counts(projection: &smsfold_domain::CampaignProjection) -> Record {
        use prost::Message as _;
        let (key, value) = changelog::campaign_record(projection);
        let mut state = smsfold_wire::proto::internal::CampaignState::decode(value.as_slice()).expect("a campaign entry");
        state.counts = None;
        (key, Some(state.encode_to_vec()))
    }

    #[test]
    fn campaign_counts_follow_entries_and_counted_records() {
        use smsfold_domain::{CampaignFold, CampaignProjection, MessageStatus, MessageUpdate};

        let entry = |message_id: &str, status| {
            let (key, value) = changelog::campaign_message_record("c-1", message_id, status, 1, None);
            (key, Some(value))
        };
        let update = |message_id: &'static str, second: i64| MessageUpdate {
            campaign_id: "c-1",
            message_id,
            status: MessageStatus::Sent,
            segments: 1,
            at: Timestamp::from_millis(second),
            previous: Some((MessageStatus::Queued, 1)),
        };
        // At-least-once, or before this format: an entry per message and a
        // campaign entry without counts.
        let mut fold = CampaignFold::new();
        for message_id in ["m-1", "m-2"] {
            fold.record(&MessageUpdate { previous: None, status: MessageStatus::Queued, ..update(message_id, 1) });
        }
        let old_campaign: CampaignProjection = fold.get("c-1").expect("the campaign");
        // Then exactly-once: m-1 is counted by its entry, which the campaign
        // stage writes again, and a new message m-3, which has no entry, by
        // its previous status. The campaign entry contains the counts.
        fold.count(&update("m-1", 2));
        assert_eq!(fold.message("c-1", "m-1"), Some((MessageStatus::Sent, 1)));
        fold.count(&MessageUpdate { previous: None, status: MessageStatus::Queued, ..update("m-3", 3) });
        fold.count(&update("m-3", 4));
        let counted = fold.get("c-1").expect("the campaign");
        let (key, value) = changelog::campaign_record(&counted);
        let records = [
            entry("m-1", MessageStatus::Queued),
            entry("m-2", MessageStatus::Queued),
            campaign_without_counts(&old_campaign),
            entry("m-1", MessageStatus::Sent),
            (key, Some(value)),
        ];

        let mut restored = Restored::default();
        for (key, value) in &records {
            apply_record(&mut restored, Stage::Campaign, 0, key, value.as_deref());
        }
        let restored_fold = restored.campaigns.get_mut(&0).expect("the partition's fold");
        assert_eq!(restored_fold.get("c-1").map(|c| c.counts), Some(counted.counts));
        assert_eq!(counted.counts.count(MessageStatus::Sent), 2);
        assert_eq!(counted.counts.count(MessageStatus::Queued), 1);

        // m-2 still has its entry, so a repeated update of it counts once.
        restored_fold.count(&update("m-2", 5));
        restored_fold.count(&update("m-2", 5));
        let after = restored_fold.get("c-1").expect("the campaign").counts;
        assert_eq!((after.count(MessageStatus::Sent), after.count(MessageStatus::Queued)), (3, 0));

        // m-1 is counted by its restored entry too. The campaign stage
        // writes the entries of each change, then the counts; a second
        // restore of the longer changelog then agrees with the fold.
        let delivered = MessageUpdate { previous: Some((MessageStatus::Sent, 1)), status: MessageStatus::Delivered, ..update("m-1", 6) };
        restored_fold.count(&delivered);
        assert_eq!(restored_fold.message("c-1", "m-1"), Some((MessageStatus::Delivered, 1)));
        let sent = restored_fold.get("c-1").expect("the campaign").counts;
        assert_eq!((sent.count(MessageStatus::Sent), sent.count(MessageStatus::Delivered)), (2, 1));
        let (counts_key, counts_value) = changelog::campaign_record(&restored_fold.get("c-1").expect("the campaign"));
        let written = [entry("m-2", MessageStatus::Sent), entry("m-1", MessageStatus::Delivered), (counts_key, Some(counts_value))];
        let mut again = Restored::default();
        let longer = records.into_iter().chain(written);
        for (key, value) in longer {
            apply_record(&mut again, Stage::Campaign, 0, &key, value.as_deref());
        }
        let again_fold = again.campaigns.get_mut(&0).expect("the partition's fold");
        assert_eq!(again_fold.get("c-1").map(|c| c.counts), restored_fold.get("c-1").map(|c| c.counts));
        let final_update = MessageUpdate { previous: Some((MessageStatus::Delivered, 1)), status: MessageStatus::Delivered, segments: 2, ..update("m-1", 7) };
        again_fold.count(&final_update);
        let counts = again_fold.get("c-1").expect("the campaign").counts;
        assert_eq!(counts.count(MessageStatus::Delivered), 1);
        assert_eq!(counts.messages(), 3);
    }

    #[test]
    fn late_message_entries_move_counts() {
        use smsfold_domain::{CampaignFold, MessageStatus, MessageUpdate};

        let update = |message_id: &'static str, status, previous| MessageUpdate {
            campaign_id: "c-1",
            message_id,
            status,
            segments: 1,
            at: Timestamp::from_millis(1),
            previous,
        };
        // Exactly-once counts m-1 and m-2 as queued, without entries.
        let mut fold = CampaignFold::new();
        for message_id in ["m-1", "m-2"] {
            fold.count(&update(message_id, MessageStatus::Queued, None));
        }
        let (counts_key, counts_value) = changelog::campaign_record(&fold.get("c-1").expect("the campaign"));
        // Then at-least-once: m-1 is sent and gets an entry; m-3 is new. The
        // worker stops before the counts entry that would follow them.
        let queued = Some((MessageStatus::Queued, 1));
        let (m1_key, m1_value) = changelog::campaign_message_record("c-1", "m-1", MessageStatus::Sent, 1, queued);
        let (m3_key, m3_value) = changelog::campaign_message_record("c-1", "m-3", MessageStatus::Queued, 1, None);
        fold.record(&update("m-1", MessageStatus::Sent, queued));
        fold.record(&update("m-3", MessageStatus::Queued, None));
        let records = [(counts_key, Some(counts_value)), (m1_key, Some(m1_value)), (m3_key, Some(m3_value))];

        let mut restored = Restored::default();
        for (key, value) in &records {
            apply_record(&mut restored, Stage::Campaign, 0, key, value.as_deref());
        }

        let restored_counts = restored.campaigns.get(&0).and_then(|fold| fold.get("c-1")).map(|c| c.counts);
        let counts = fold.get("c-1").expect("the campaign").counts;
        assert_eq!(restored_counts, Some(counts));
        assert_eq!((counts.count(MessageStatus::Queued), counts.count(MessageStatus::Sent), counts.messages()), (2, 1, 3));
    }

    #[test]
    fn lost_counts_entry_after_rewritten_entries() {
        use smsfold_domain::{CampaignFold, MessageStatus, MessageUpdate};

        use crate::changelog_buffer::ChangelogBuffer;
        use crate::output::Output;

        let put = |buffer: &mut ChangelogBuffer, (key, value): (Vec<u8>, Vec<u8>)| {
            buffer.put(Output { topic: "log".to_owned(), partition: Some(0), key: Some(key), payload: Some(value), headers: None });
        };
        // Records an update at least once and writes its entry, as the
        // campaign stage does, into the batch's buffer.
        let record = |fold: &mut CampaignFold,
                      buffer: &mut ChangelogBuffer,
                      message_id: &'static str,
                      status: MessageStatus,
                      previous: Option<MessageStatus>| {
            let update = MessageUpdate {
                campaign_id: "c-1",
                message_id,
                status,
                segments: 2,
                at: Timestamp::from_millis(1),
                previous: previous.map(|status| (status, 2)),
            };
            let counted = fold.message("c-1", message_id).or(update.previous);
            fold.record(&update);
            let (status, segments) = fold.message("c-1", message_id).expect("an entry");
            put(buffer, changelog::campaign_message_record("c-1", message_id, status, segments, counted));
        };
        let drain = |buffer: &mut ChangelogBuffer| -> Vec<Record> {
            buffer.drain().into_iter().map(|output| (output.key.unwrap_or_default(), output.payload)).collect()
        };
        use MessageStatus::{Accepted, Queued, Sending, Sent};
        let mut fold = CampaignFold::new();
        let mut buffer = ChangelogBuffer::default();
        // The first batch commits: m-1 and m-2 accepted, then the counts.
        record(&mut fold, &mut buffer, "m-1", Accepted, None);
        record(&mut fold, &mut buffer, "m-2", Accepted, None);
        put(&mut buffer, changelog::campaign_record(&fold.get("c-1").expect("the campaign")));
        let mut records = drain(&mut buffer);
        // The second batch moves m-1 three times and writes m-3 twice; the
        // worker stops before its counts entry is stored.
        record(&mut fold, &mut buffer, "m-1", Queued, Some(Accepted));
        record(&mut fold, &mut buffer, "m-1", Sending, Some(Queued));
        record(&mut fold, &mut buffer, "m-3", Accepted, None);
        record(&mut fold, &mut buffer, "m-1", Sent, Some(Sending));
        record(&mut fold, &mut buffer, "m-3", Queued, Some(Accepted));
        let second = drain(&mut buffer);
        assert_eq!(second.len(), 2, "one entry per message");
        records.extend(second);

        let mut restored = Restored::default();
        for (key, value) in &records {
            apply_record(&mut restored, Stage::Campaign, 0, key, value.as_deref());
        }

        let counts = fold.get("c-1").expect("the campaign").counts;
        let restored_counts = restored.campaigns.get(&0).and_then(|fold| fold.get("c-1")).map(|c| c.counts);
        assert_eq!(restored_counts, Some(counts));
        assert_eq!((counts.count(Accepted), counts.count(Queued), counts.count(Sent)), (1, 1, 1));
        assert_eq!(counts.segments, 6);
    }

    #[test]
    fn restored_link_matches_receipt() {
        let first_send = link("4F2A", "m-1", 1);
        let second_send = link("4F2A", "m-2", 5);
        let records = [link_put(&first_send), link_tombstone(&first_send), link_put(&second_send)];
        let mut restored = restore_in_place(&records);
        let join = restored.carriers.get_mut(&0).expect("the partition's join");

        let receipt = pending("4f2a", "r-1", 6);
        let joined = join.add_receipt(&receipt.join_key, smsfold_smpp::Pending::new("4f2a", "r-1", 6, receipt.clone()));

        assert!(matches!(joined, Joined::Matched { link, .. } if &*link.message_id == "m-2"));
    }

    #[test]
    fn removed_entry_keeps_watermark() {
        let evicted = link("77AB", "m-6", 9);
        let records = [link_put(&link("4F2A", "m-1", 1)), link_put(&evicted), link_tombstone(&evicted)];

        let in_place = restore_in_place(&records);
        let last_per_key = restore_last_per_key(&records);

        assert_eq!(in_place.carriers[&0].watermark(), 9, "the removed link's time was seen");
        assert_eq!(last_per_key.carriers[&0].watermark(), 1);
    }
}
