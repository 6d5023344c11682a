//! The worker loop: consume, fold, publish, commit.
//!
//! Exactly-once (the default): records are processed in batches, and each
//! batch is one Kafka transaction holding its status changes, internal
//! records, dead letters, changelog entries and consumed offsets (sent with
//! the consumer group metadata, as in exactly_once_v2). Consumers read with
//! read_committed. When a commit fails, the transaction is aborted, the
//! state is restored from the changelogs, and the consumer goes back to the
//! committed offsets, so the work is redone from the last committed point.
//!
//! At-least-once: a batch's changelog entries are written once the broker
//! has acknowledged its outputs, and its offsets are committed once the
//! entries are acknowledged too. After a crash some outputs appear twice.
//!
//! Partitions newly assigned to the worker are restored from their changelog
//! partitions before any of their records is applied; the open batch is
//! committed before partitions are revoked.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer;
use futures::FutureExt;
use rdkafka::{Message, Offset};
use tokio::sync::watch;
use tracing::{error, info, warn};

use smsfold_domain::Timestamp;
use smsfold_wire::changelog;

use crate::config::{GroupProtocol, Guarantee, WorkerConfig};
use crate::context::{Assignment, WorkerContext, COMMIT_TIMEOUT};
use crate::error::WorkerError;
use crate::metrics;
use crate::output::{Output, Outputs};
use crate::partition_map::PartitionMap;
use crate::pipelines::{ProcessView, Share};
use crate::processor::Processor;
use crate::publisher::{self, Publisher};
use crate::replay::Replay;
use crate::projections::Projections;
use crate::restore::{self, Partitions, Stage};
use crate::topics;

/// How long the worker keeps retrying to abort a transaction, for example
/// while the broker restarts, before it gives up and stops.
const ABORT_RETRY_LIMIT: Duration = Duration::from_secs(180);

/// How long the worker waits before it joins the group again while a killed
/// predecessor with the same instance id is still a member.
const REJOIN_BACKOFF: Duration = Duration::from_millis(500);

/// Prefetch of all the consumers of one process together, in KiB.
const PROCESS_PREFETCH_KBYTES: usize = 4096;

/// Minimum prefetch of one pipeline's consumer, in KiB.
const MIN_PREFETCH_KBYTES: usize = 1024;

/// Returns the prefetch of each consumer of a process with `pipelines`
/// pipelines: an even share of [`PROCESS_PREFETCH_KBYTES`], but at least
/// [`MIN_PREFETCH_KBYTES`].
fn prefetch_kbytes(pipelines: usize) -> usize {
    (PROCESS_PREFETCH_KBYTES / pipelines.max(1)).max(MIN_PREFETCH_KBYTES)
}

/// A configured worker, ready to run.
pub struct Worker {
    config: WorkerConfig,
    /// Input offsets below which outputs were published before a rebuild.
    replay: Replay,
    /// This pipeline's projections and readiness.
    share: Share,
    /// Every pipeline of the process, for the gauges.
    view: ProcessView,
}

/// The stage partitions whose state this worker holds.
#[derive(Debug, Default)]
struct Held {
    messages: BTreeSet<i32>,
    campaigns: BTreeSet<i32>,
    carriers: BTreeSet<i32>,
    /// Every partition assigned to this worker.
    assigned: BTreeSet<(String, i32)>,
    /// Assigned partitions paused because their records cannot be applied
    /// yet: message commands whose message events partition is not ours.
    paused: BTreeSet<(String, i32)>,
}

impl Worker {
    /// Checks the configuration and creates one pipeline, ignoring
    /// `config.pipelines`; [`crate::Pipelines`] runs several. Connects
    /// nothing yet.
    pub fn new(mut config: WorkerConfig) -> Result<Self, WorkerError> {
        config.pipelines = 1;
        let share = Share::default();
        let view = ProcessView::new(vec![share.clone()]);
        Worker::sharing(config, share, view)
    }

    /// Creates a worker that is one of the pipelines in `view`.
    pub(crate) fn sharing(config: WorkerConfig, share: Share, view: ProcessView) -> Result<Self, WorkerError> {
        config.validate()?;
        Ok(Worker { config, replay: Replay::default(), share, view })
    }

    /// Makes the worker replay: status changes and dead letters caused by
    /// input records below `until` (offsets per input topic and partition)
    /// were published before, so they are not published again, while the
    /// state, the changelogs and the internal records are rebuilt.
    pub fn replaying(mut self, until: HashMap<(String, i32), i64>) -> Self {
        self.replay = Replay { until };
        self
    }

    /// Returns the projections, shared with the running worker.
    pub fn projections(&self) -> Arc<Mutex<Projections>> {
        Arc::clone(&self.share.projections)
    }

    /// Returns the flag that is true while partitions are assigned and their
    /// state is restored.
    pub fn ready(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.share.ready)
    }

    /// Returns this pipeline's instance id.
    pub fn instance_id(&self) -> &str {
        &self.config.instance_id
    }

    /// Returns the view of every pipeline of the process, for the HTTP
    /// server.
    pub fn view(&self) -> ProcessView {
        self.view.clone()
    }

    /// Records whether this pipeline is ready, and exports the process's
    /// readiness.
    fn set_ready(&self, ready: bool) {
        self.share.ready.store(ready, Ordering::Release);
        self.view.export_readiness();
    }

    /// Runs until `shutdown` turns true, then commits the open batch and
    /// returns.
    // One worker has one transactional producer, so one transaction at a
    // time; `Pipelines` runs several workers in one process to commit in
    // parallel.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let config = &self.config;
        let exactly_once = config.guarantee == Guarantee::ExactlyOnce;
        let layout = topics::prepare(config, &self.client_config()).await?;
        info!(
            message_partitions = layout.message_events,
            group_id = %config.group_id,
            instance_id = %config.instance_id,
            exactly_once,
            "topics ready"
        );

        // NOTE: a commit waits mostly for the acknowledgement of one
        // produce request per partition the batch wrote (about 36 in the
        // comparison), which the broker serves one at a time on this
        // producer's connection. Two pipelines, each with its own
        // connection and half the partitions, did not shorten that wait on
        // two cores (BENCHMARKS.md, "Pipelines"), so the latency target is
        // still missed.
        let producer = Arc::new(publisher::create(&self.producer_config()).map_err(WorkerError::Kafka)?);
        if exactly_once {
            producer.init_transactions(COMMIT_TIMEOUT).map_err(WorkerError::Kafka)?;
        }
        let mut consumer = self.subscribe(&producer, exactly_once)?;
        let topics = &config.topics;

        let processor = Processor {
            topics: topics.clone(),
            output_format: config.output_format,
            max_record_bytes: config.max_record_bytes,
            message_command_partitions: layout.message_commands,
            message_changelog: config.message_changelog(),
            campaign_changelog: config.campaign_changelog(),
            carrier_changelog: config.carrier_changelog(),
            campaign_message_entries: !exactly_once,
            receipt_states: config.receipt_states.clone(),
            unmatched_receipt_wait_ms: i64::try_from(config.unmatched_receipt_wait.as_millis()).unwrap_or(i64::MAX),
            metrics: metrics::EventMetrics::register(),
        };
        let mut held = Held::default();
        let mut batch_started: Option<Instant> = None;
        let mut last_timestamps = PartitionMap::default();
        let mut last_eviction = Instant::now();
        loop {
            // An open batch waits at most `batch_idle` for the next record:
            // when input pauses the batch commits at once, and under load it
            // grows towards `batch_max_records` or `batch_max_wait`.
            let wait = match batch_started {
                Some(started) => config
                    .batch_max_wait
                    .saturating_sub(started.elapsed())
                    .min(config.batch_idle)
                    .max(Duration::from_millis(1)),
                None => config.batch_max_wait,
            };
            // Under load the next record is usually fetched already: take
            // it without arming a timer.
            let ready = consumer.recv().now_or_never();
            let received = match ready {
                Some(received) => Ok(received),
                None => tokio::select! {
                    changed = shutdown.changed() => {
                        if changed.is_err() || *shutdown.borrow() {
                            break;
                        }
                        continue;
                    }
                    received = tokio::time::timeout(wait, consumer.recv()) => received,
                },
            };

            // A commit made by the revoke callback may have failed, and the
            // assignment may have changed, during that receive.
            let mut failed = consumer.context().batch().failed.take();
            if failed.is_none() && consumer.context().commit_ended() {
                // The previous batch is committed: the open one's
                // transaction can begin.
                let context = consumer.context();
                failed = context.finish_inflight().and_then(|()| context.begin(&mut context.batch())).err();
            }
            if let Some(error) = failed {
                self.abort_and_rewind(&consumer, &mut held, &error).await?;
                batch_started = None;
                continue;
            }
            let assignment = consumer.context().assigned.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(assignment) = assignment {
                self.adopt(&assignment, &mut held)?;
                self.release_held_back(&consumer, &mut held)?;
            }
            if !consumer.context().batch().open {
                batch_started = None;
            }

            let mut idle = false;
            match received {
                Ok(Ok(record)) => {
                    let topic = record.topic();
                    if !self.holds(&held, topic, record.partition()) {
                        let key = (topic.to_owned(), record.partition());
                        // Its state partition is not ours yet: hold the
                        // partition back at its first such record until it is.
                        // Records fetched after that one are dropped here and
                        // fetched again on resume.
                        if held.assigned.contains(&key) && !held.paused.contains(&key) {
                            self.hold_back(&consumer, &key, record.offset())?;
                            held.paused.insert(key);
                        }
                        // Otherwise it was fetched before a rebalance took the
                        // partition away.
                        continue;
                    }
                    let context = consumer.context();
                    if !context.batch().open {
                        context.batch().open = true;
                        batch_started = Some(Instant::now());
                        if !context.commit_running() {
                            let begun = context.finish_inflight().and_then(|()| context.begin(&mut context.batch()));
                            if let Err(error) = begun {
                                self.abort_and_rewind(&consumer, &mut held, &error).await?;
                                batch_started = None;
                                continue;
                            }
                        }
                    }
                    let mut outputs = Outputs::default();
                    {
                        let mut projections = self.share.projections.lock().unwrap_or_else(|e| e.into_inner());
                        processor.process(&record, &mut projections, &mut outputs);
                    }
                    if self.replay.is_replayed(&record) {
                        self.replay.suppress(&mut outputs, topics);
                    }
                    if let Some(timestamp) = record.timestamp().to_millis() {
                        last_timestamps.set(topic, record.partition(), timestamp);
                    }
                    {
                        let mut batch = context.batch();
                        let delivery = |(topic, error)| WorkerError::Delivery { topic, error };
                        for output in outputs.records {
                            // A forwarded campaign event follows the updates
                            // of its campaign that came before it.
                            if output.topic == topics.campaign_stage {
                                for pack in batch.updates.take(output.key.as_deref().unwrap_or_default()) {
                                    context.publish(&mut batch, pack).map_err(delivery)?;
                                }
                            }
                            context.publish(&mut batch, output).map_err(delivery)?;
                        }
                        for update in outputs.updates {
                            for pack in batch.updates.put(&topics.campaign_stage, update, outputs.replayed) {
                                context.publish(&mut batch, pack).map_err(delivery)?;
                            }
                        }
                        for output in outputs.changelog {
                            batch.changelog.put(output);
                        }
                        batch.offsets.set(topic, record.partition(), record.offset() + 1);
                        batch.records += 1;
                    }

                    // Eviction writes tombstones, so it runs inside a batch.
                    if last_eviction.elapsed() >= config.eviction_interval {
                        last_eviction = Instant::now();
                        let evicted = self.evict();
                        let mut batch = consumer.context().batch();
                        for output in evicted {
                            batch.changelog.put(output);
                        }
                    }
                }
                Ok(Err(KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::UnreleasedInstanceId)))
                    if held.assigned.is_empty() && !consumer.context().batch().open =>
                {
                    // A previous incarnation of this instance id, killed
                    // without leaving the group, is still a member until the
                    // broker's session timeout. Nothing was consumed yet, so
                    // join again with a new consumer once it is gone, rather
                    // than exit into a supervisor's crash-loop back-off.
                    warn!(
                        instance_id = %config.instance_id,
                        "a previous member with this instance id has not left the group yet; joining again shortly"
                    );
                    metrics::rejoin_attempted();
                    let _ = consumer.context().finish_inflight();
                    // NOTE: rdkafka logs an error when it closes this
                    // consumer, whose group membership failed, on drop. The
                    // context logs librdkafka's own fatal error at debug
                    // level, but that line of rdkafka's stays at each try.
                    drop(consumer);
                    tokio::select! {
                        _ = shutdown.changed() => {}
                        () = tokio::time::sleep(REJOIN_BACKOFF) => {}
                    }
                    consumer = self.subscribe(&producer, exactly_once)?;
                    // The wait above took the change of `shutdown`, so the
                    // receive at the top of the loop would not see it.
                    if *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
                Ok(Err(KafkaError::MessageConsumptionFatal(code))) => {
                    // For example UnreleasedInstanceId: a previous incarnation
                    // of this instance id has not timed out of the group yet.
                    error!(%code, "the consumer failed fatally; stopping so a supervisor restarts the worker");
                    return Err(WorkerError::Kafka(KafkaError::MessageConsumptionFatal(code)));
                }
                Ok(Err(error)) => warn!(%error, "consumer error"),
                Err(_elapsed) => idle = true,
            }

            // A batch closes after `batch_max_wait`, at `batch_max_records`,
            // or when input pauses for `batch_idle`. Exactly-once it also
            // closes once it is `batch_idle` old while no commit runs: under
            // load a batch then lasts as long as the previous commit took,
            // which keeps the latency low at moderate rates and batches
            // large at saturation.
            let due = batch_started.is_some_and(|started| {
                let elapsed = started.elapsed();
                idle || elapsed >= config.batch_max_wait
                    || consumer.context().batch().records >= config.batch_max_records
                    || (exactly_once && elapsed >= config.batch_idle && !consumer.context().commit_running())
            });
            if due {
                let started = batch_started.take().unwrap_or_else(Instant::now);
                let committed = if exactly_once {
                    let context = consumer.context();
                    context.finish_inflight().and_then(|()| context.start_commit(&consumer, started))
                } else {
                    consumer.context().commit_open_batch(&consumer).map(|()| metrics::batch_committed(started.elapsed()))
                };
                if let Err(error) = committed {
                    self.abort_and_rewind(&consumer, &mut held, &error).await?;
                    continue;
                }
                self.export_gauges(&mut last_timestamps);
            }
        }

        if let Err(error) = consumer.context().commit_open_batch(&consumer) {
            warn!(%error, "could not commit the last batch; it is aborted and will be redone by the next owner");
            let _ = consumer.context().abort();
        }
        self.set_ready(false);
        info!("worker stopped");
        Ok(())
    }

    /// Creates the group consumer and subscribes it to the worker's inputs.
    fn subscribe(
        &self,
        producer: &Arc<Publisher>,
        exactly_once: bool,
    ) -> Result<StreamConsumer<WorkerContext>, WorkerError> {
        let context = WorkerContext {
            assigned: Mutex::default(),
            owned: Mutex::default(),
            batch: Arc::default(),
            producer: Arc::clone(producer),
            inflight: Mutex::default(),
            exactly_once,
            ready: Arc::clone(&self.share.ready),
        };
        let consumer: StreamConsumer<WorkerContext> =
            self.consumer_config().create_with_context(context).map_err(WorkerError::Kafka)?;
        let topics = &self.config.topics;
        consumer
            .subscribe(&[
                &topics.message_events,
                &topics.message_commands,
                &topics.campaign_events,
                &topics.campaign_stage,
                &topics.carrier_join,
            ])
            .map_err(WorkerError::Kafka)?;
        Ok(consumer)
    }

    fn holds(&self, held: &Held, topic: &str, partition: i32) -> bool {
        let topics = &self.config.topics;
        if topic == topics.message_events || topic == topics.message_commands {
            held.messages.contains(&partition)
        } else if topic == topics.campaign_stage {
            held.campaigns.contains(&partition)
        } else if topic == topics.carrier_join {
            held.carriers.contains(&partition)
        } else {
            // Campaign events are only checked and forwarded: no state.
            true
        }
    }

    /// Takes over a new assignment: drops the state of partitions no longer
    /// owned and restores the state of newly owned ones from the changelogs.
    fn adopt(&self, assignment: &Assignment, held: &mut Held) -> Result<(), WorkerError> {
        // From here on the process waits for this pipeline's restore before
        // it reports ready.
        self.share.assigned.store(true, Ordering::Release);
        let topics = &self.config.topics;
        let owned = |topic: &str| -> BTreeSet<i32> {
            assignment.iter().filter(|(t, _)| t == topic).map(|(_, p)| *p).collect()
        };
        let messages = owned(&topics.message_events);
        let campaigns = owned(&topics.campaign_stage);
        let carriers = owned(&topics.carrier_join);
        let commands = owned(&topics.message_commands);
        // Start-up checks that the two topics have the same partitions, and
        // the range assignor gives them out together. In between they can
        // differ: an assignment made before the broker knew a newly created
        // commands topic lacks it, and an incremental rebalance moves one
        // partition at a time. Records of a missing commands partition wait
        // in the topic. A commands partition without its message events
        // partition is held back, because its records cannot be applied here.
        if !commands.is_subset(&messages) {
            info!(
                message_events = ?messages,
                message_commands = ?commands,
                "message commands partitions are assigned before their message events partitions; holding them back"
            );
        } else if commands != messages {
            info!(
                message_events = ?messages,
                message_commands = ?commands,
                "some message commands partitions are not assigned yet; their records wait until they are"
            );
        }
        let new_messages: Vec<i32> = messages.difference(&held.messages).copied().collect();
        let new_campaigns: Vec<i32> = campaigns.difference(&held.campaigns).copied().collect();
        let new_carriers: Vec<i32> = carriers.difference(&held.carriers).copied().collect();
        if !(new_messages.is_empty() && new_campaigns.is_empty() && new_carriers.is_empty()) {
            // An incremental assignment revokes nothing first, so readiness
            // drops here for the restore.
            self.set_ready(false);
        }
        {
            let mut projections = self.share.projections.lock().unwrap_or_else(|e| e.into_inner());
            projections.messages.retain(|partition, _| messages.contains(partition));
            projections.campaigns.retain(|partition, _| campaigns.contains(partition));
            projections.carriers.retain(|partition, _| carriers.contains(partition));
        }
        self.restore_into(&new_messages, &new_campaigns, &new_carriers)?;
        held.messages = messages;
        held.campaigns = campaigns;
        held.carriers = carriers;
        held.assigned = assignment.iter().cloned().collect();
        self.set_ready(true);
        // No batch may commit soon to export the restored state.
        self.export_state_gauges();
        Ok(())
    }

    /// Pauses a partition and rewinds it to `offset`.
    fn hold_back(
        &self,
        consumer: &StreamConsumer<WorkerContext>,
        (topic, partition): &(String, i32),
        offset: i64,
    ) -> Result<(), WorkerError> {
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(topic, *partition);
        consumer.pause(&list).map_err(WorkerError::Kafka)?;
        consumer.seek(topic, *partition, Offset::Offset(offset), COMMIT_TIMEOUT).map_err(WorkerError::Kafka)?;
        warn!(topic, partition, offset, "holding back a partition until its state partition is assigned here");
        Ok(())
    }

    /// Resumes held-back partitions whose records can now be applied.
    fn release_held_back(&self, consumer: &StreamConsumer<WorkerContext>, held: &mut Held) -> Result<(), WorkerError> {
        let paused = std::mem::take(&mut held.paused);
        let mut resume = rdkafka::TopicPartitionList::new();
        for key in paused {
            if !held.assigned.contains(&key) {
                continue;
            }
            if self.holds(held, &key.0, key.1) {
                resume.add_partition(&key.0, key.1);
            } else {
                held.paused.insert(key);
            }
        }
        if resume.count() > 0 {
            consumer.resume(&resume).map_err(WorkerError::Kafka)?;
        }
        Ok(())
    }

    fn restore_into(&self, messages: &[i32], campaigns: &[i32], carriers: &[i32]) -> Result<(), WorkerError> {
        if messages.is_empty() && campaigns.is_empty() && carriers.is_empty() {
            return Ok(());
        }
        let client = self.restore_config();
        let (message_changelog, campaign_changelog, carrier_changelog) =
            (self.config.message_changelog(), self.config.campaign_changelog(), self.config.carrier_changelog());
        let stages = [
            Partitions { stage: Stage::Message, changelog: &message_changelog, partitions: messages },
            Partitions { stage: Stage::Campaign, changelog: &campaign_changelog, partitions: campaigns },
            Partitions { stage: Stage::Carrier, changelog: &carrier_changelog, partitions: carriers },
        ];
        let restored = restore::restore(&client, &stages)?;
        let mut projections = self.share.projections.lock().unwrap_or_else(|e| e.into_inner());
        projections.messages.extend(restored.messages);
        projections.campaigns.extend(restored.campaigns);
        projections.carriers.extend(restored.carriers);
        Ok(())
    }

    /// Aborts the open batch and returns to the last committed point: the
    /// state of every held partition is restored from the changelogs and
    /// the consumer seeks back to the committed offsets.
    async fn abort_and_rewind(
        &self,
        consumer: &StreamConsumer<WorkerContext>,
        held: &mut Held,
        cause: &str,
    ) -> Result<(), WorkerError> {
        warn!(error = cause, "aborting the open batch and rewinding to the last commit");
        metrics::transaction_aborted("commit_failed");
        self.set_ready(false);

        let context = consumer.context();
        let started = Instant::now();
        loop {
            match context.abort() {
                Ok(()) => break,
                Err(KafkaError::Transaction(error)) if error.is_fatal() => {
                    error!(%error, "the producer was fenced or failed fatally; stopping");
                    return Err(WorkerError::Kafka(KafkaError::Transaction(error)));
                }
                Err(error) if started.elapsed() < ABORT_RETRY_LIMIT => {
                    warn!(%error, "could not abort the transaction; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(WorkerError::Kafka(error)),
            }
        }
        // The aborted records' reports, purged or not, belong to this batch,
        // so their failures are cleared once all are in.
        if let Err(error) = publisher::wait_reported(&context.producer, COMMIT_TIMEOUT) {
            warn!(%error, "an aborted batch's records are still unreported");
        }
        publisher::reset(&context.producer);

        // Seek back to the committed offsets of everything assigned.
        let mut positions = consumer.committed(COMMIT_TIMEOUT).map_err(WorkerError::Kafka)?;
        for element in positions.clone().elements() {
            if !matches!(element.offset(), Offset::Offset(_)) {
                positions
                    .set_partition_offset(element.topic(), element.partition(), Offset::Beginning)
                    .map_err(WorkerError::Kafka)?;
            }
        }
        consumer.seek_partitions(positions, COMMIT_TIMEOUT).map_err(WorkerError::Kafka)?;

        let messages: Vec<i32> = held.messages.iter().copied().collect();
        let campaigns: Vec<i32> = held.campaigns.iter().copied().collect();
        let carriers: Vec<i32> = held.carriers.iter().copied().collect();
        {
            let mut projections = self.share.projections.lock().unwrap_or_else(|e| e.into_inner());
            projections.messages.clear();
            projections.campaigns.clear();
            projections.carriers.clear();
        }
        self.restore_into(&messages, &campaigns, &carriers)?;
        self.set_ready(true);
        // No batch may commit soon to export the restored state.
        self.export_state_gauges();
        Ok(())
    }

    /// Evicts settled messages, ended campaigns and carrier links older than
    /// the retention from every held partition; returns the changelog
    /// records that record it.
    fn evict(&self) -> Vec<Output> {
        let config = &self.config;
        let mut outputs = Vec::new();
        let changelog_record = |topic: &str, partition: i32, key: Vec<u8>, value: Option<Vec<u8>>| Output {
            topic: topic.to_owned(),
            partition: Some(partition),
            key: Some(key),
            payload: value,
            headers: None,
        };
        let message_changelog = config.message_changelog();
        let campaign_changelog = config.campaign_changelog();
        let mut projections = self.share.projections.lock().unwrap_or_else(|e| e.into_inner());
        let mut evicted_messages = 0;
        for (&partition, fold) in projections.messages.iter_mut() {
            let eviction = fold.evict(config.retention);
            evicted_messages += eviction.evicted.len();
            for message_id in &eviction.evicted {
                outputs.push(changelog_record(&message_changelog, partition, changelog::message_key(message_id), None));
            }
            for (key, retired_at) in eviction.retired {
                let (key, value) = changelog::retired_message_record(key, Timestamp::from_millis(retired_at));
                outputs.push(changelog_record(&message_changelog, partition, key, Some(value)));
            }
            for (key, _) in eviction.forgotten {
                outputs.push(changelog_record(&message_changelog, partition, changelog::retired_message_key(key), None));
            }
        }
        let mut evicted_campaigns = 0;
        for (&partition, fold) in projections.campaigns.iter_mut() {
            let (evicted, forgotten) = fold.evict(config.retention);
            evicted_campaigns += evicted.len();
            for campaign in evicted {
                let id = &campaign.campaign_id;
                outputs.push(changelog_record(&campaign_changelog, partition, changelog::campaign_key(id), None));
                for message in campaign.messages {
                    let key = changelog::campaign_message_key(id, message);
                    outputs.push(changelog_record(&campaign_changelog, partition, key, None));
                }
                let (key, value) = changelog::retired_campaign_record(id, fold.watermark());
                outputs.push(changelog_record(&campaign_changelog, partition, key, Some(value)));
            }
            for campaign_id in forgotten {
                let key = changelog::retired_campaign_key(&campaign_id);
                outputs.push(changelog_record(&campaign_changelog, partition, key, None));
            }
        }
        let carrier_changelog = config.carrier_changelog();
        let retention_ms = i64::try_from(config.retention.as_millis()).unwrap_or(i64::MAX);
        let mut evicted_links = 0;
        for (&partition, join) in projections.carriers.iter_mut() {
            for (join_key, spelling) in join.evict_links(retention_ms) {
                evicted_links += 1;
                let key = changelog::carrier_link_key(&join_key, &spelling);
                outputs.push(changelog_record(&carrier_changelog, partition, key, None));
            }
        }
        if evicted_messages > 0 || evicted_campaigns > 0 || evicted_links > 0 {
            info!(
                messages = evicted_messages,
                campaigns = evicted_campaigns,
                carrier_links = evicted_links,
                "evicted settled state older than the retention"
            );
            metrics::evicted(evicted_messages, evicted_campaigns);
        }
        outputs
    }

    fn export_gauges(&self, last_timestamps: &mut PartitionMap) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        for (topic, partition, timestamp) in last_timestamps.drain() {
            metrics::consumer_lag_seconds(&topic, partition, (now - timestamp) as f64 / 1000.0);
        }
        self.export_state_gauges();
    }

    /// Exports the size of the state. Each pipeline exports the totals of
    /// all, so the gauges are the process's whichever pipeline wrote them
    /// last.
    fn export_state_gauges(&self) {
        metrics::live_messages(self.view.live_messages());
        let (pending_receipts, carrier_links) = self.view.carrier_join_sizes();
        metrics::carrier_join_state(pending_receipts, carrier_links);
        for (status, count) in self.view.campaigns_by_status() {
            metrics::campaigns_in_status(status.as_str(), count);
        }
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.config.bootstrap_servers);
        for (key, value) in &self.config.kafka_properties {
            config.set(key, value);
        }
        config
    }

    fn restore_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config.set("group.id", format!("{}-restore", self.config.group_id));
        config
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("group.id", &self.config.group_id)
            // Static membership: a restarted instance takes its partitions
            // back without a rebalance if it returns within the session
            // timeout.
            .set("group.instance.id", &self.config.instance_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "5000")
            // librdkafka delays a full queue's next fetch by
            // `fetch.queue.backoff.ms` (1 s by default), which stalls a
            // worker that drains it faster. A 4 MiB queue per process,
            // shared out among up to four pipelines and topped up every
            // 10 ms, measured best (BENCHMARKS.md, "The consumer's fetch
            // back-off" and "Pipelines").
            .set("queued.max.messages.kbytes", prefetch_kbytes(self.config.pipelines).to_string())
            .set("fetch.queue.backoff.ms", "10");
        // Range assignment gives each member the same partition numbers of
        // topics with equal partition counts, which keeps the message
        // commands partitions with their message events partitions. Under
        // the consumer group protocol (KIP-848) the broker's range assignor
        // does this and rebalances incrementally.
        match self.config.group_protocol {
            GroupProtocol::Consumer => {
                config.set("group.protocol", "consumer").set("group.remote.assignor", "range");
            }
            GroupProtocol::Classic => {
                config.set("partition.assignment.strategy", "range");
            }
        }
        for (key, value) in &self.config.kafka_properties {
            config.set(key, value);
        }
        config
    }

    fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // murmur2 places keyed records where Java clients would.
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000");
        if self.config.guarantee == Guarantee::ExactlyOnce {
            config
                .set("transactional.id", format!("{}-{}", self.config.group_id, self.config.instance_id))
                // A dead instance's open transaction holds back what others
                // can read (and restore) until it times out, so keep it short.
                .set("transaction.timeout.ms", "10000");
        }
        for (key, value) in &self.config.kafka_properties {
            config.set(key, value);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::prefetch_kbytes;

    #[test]
    fn prefetch_shared_among_pipelines() {
        assert_eq!(prefetch_kbytes(1), 4096);
        assert_eq!(prefetch_kbytes(2), 2048);
        assert_eq!(prefetch_kbytes(3), 1365);
        assert_eq!(prefetch_kbytes(8), 1024);
    }
}
