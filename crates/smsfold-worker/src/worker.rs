//! The worker loop: consume, fold, publish, commit.
//!
//! Delivery guarantee: at least once. Records are processed in batches. A
//! batch's offsets are committed only after the broker acknowledges every
//! output the batch caused: status changes, internal records and dead letters
//! (`acks=all`, idempotent producer). A crash before the commit makes the
//! next owner process the batch again, so its outputs may appear twice.
//! A delivery that fails after the producer's own retries stops the worker
//! with an error and without committing.
//!
//! NOTE: the projections live in memory. A restarted worker resumes from the
//! committed offsets with empty projections, so it does not know messages it
//! folded before; durable state comes with the changelog.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::join_all;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::WorkerConfig;
use crate::context::WorkerContext;
use crate::error::WorkerError;
use crate::metrics;
use crate::output::{Output, Outputs};
use crate::processor::Processor;
use crate::projections::Projections;
use crate::topics;

/// A configured worker, ready to run.
pub struct Worker {
    config: WorkerConfig,
    projections: Arc<Mutex<Projections>>,
    ready: Arc<AtomicBool>,
}

impl Worker {
    /// Checks the configuration; connects nothing yet.
    pub fn new(config: WorkerConfig) -> Result<Self, WorkerError> {
        config.validate()?;
        Ok(Worker { config, projections: Arc::default(), ready: Arc::default() })
    }

    /// Returns the projections, shared with the running worker.
    pub fn projections(&self) -> Arc<Mutex<Projections>> {
        Arc::clone(&self.projections)
    }

    /// Returns the flag that turns true once partitions are assigned.
    pub fn ready(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// Runs until `shutdown` turns true, then commits the open batch and
    /// returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let config = &self.config;
        let layout = topics::prepare(config, &self.client_config()).await?;
        info!(
            message_partitions = layout.message_events,
            group_id = %config.group_id,
            "topics ready"
        );

        let context = WorkerContext { ready: Arc::clone(&self.ready), ..WorkerContext::default() };
        let consumer: StreamConsumer<WorkerContext> =
            self.consumer_config().create_with_context(context).map_err(WorkerError::Kafka)?;
        let producer: FutureProducer = self.producer_config().create().map_err(WorkerError::Kafka)?;
        let topics = &config.topics;
        consumer
            .subscribe(&[
                &topics.message_events,
                &topics.message_commands,
                &topics.campaign_events,
                &topics.campaign_stage,
            ])
            .map_err(WorkerError::Kafka)?;

        let processor = Processor {
            topics: topics.clone(),
            output_format: config.output_format,
            max_record_bytes: config.max_record_bytes,
            message_command_partitions: layout.message_commands,
        };
        let mut batch = Batch::default();
        loop {
            let wait = batch.time_left(config.batch_max_wait);
            let received = tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
                received = tokio::time::timeout(wait, consumer.recv()) => received,
            };
            match received {
                Ok(Ok(record)) => {
                    self.apply_assignment(&consumer);
                    batch.start();
                    let mut outputs = Outputs::default();
                    {
                        let mut projections = self.projections.lock().unwrap_or_else(|e| e.into_inner());
                        processor.process(&record, &mut projections, &mut outputs);
                    }
                    for output in outputs.records {
                        batch.deliveries.push(send(&producer, output).await?);
                    }
                    batch.offsets.push((record.topic().to_owned(), record.partition(), record.offset() + 1));
                }
                Ok(Err(error)) => warn!(%error, "consumer error"),
                Err(_elapsed) => {}
            }
            if batch.is_due(config.batch_max_records, config.batch_max_wait) {
                self.commit(&consumer, &mut batch).await?;
            }
        }

        self.commit(&consumer, &mut batch).await?;
        producer.flush(std::time::Duration::from_secs(30)).map_err(WorkerError::Kafka)?;
        info!("worker stopped");
        Ok(())
    }

    /// Drops the folds of partitions this worker no longer owns.
    fn apply_assignment(&self, consumer: &StreamConsumer<WorkerContext>) {
        let Some(assignment) = consumer.context().assigned.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let owned = |topic: &str, partition: i32| assignment.iter().any(|(t, p)| t == topic && *p == partition);
        let topics = &self.config.topics;
        let mut projections = self.projections.lock().unwrap_or_else(|e| e.into_inner());
        projections.messages.retain(|partition, _| owned(&topics.message_events, *partition));
        projections.campaigns.retain(|partition, _| owned(&topics.campaign_stage, *partition));
    }

    /// Waits for every output of the batch, then commits its offsets.
    async fn commit(&self, consumer: &StreamConsumer<WorkerContext>, batch: &mut Batch) -> Result<(), WorkerError> {
        let Some(started) = batch.started.take() else { return Ok(()) };
        for result in join_all(batch.deliveries.drain(..)).await {
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((error, record))) => {
                    return Err(WorkerError::Delivery { topic: record.topic().to_owned(), error });
                }
                Err(_canceled) => {
                    return Err(WorkerError::Delivery { topic: String::new(), error: KafkaError::Canceled });
                }
            }
        }

        let mut offsets = TopicPartitionList::new();
        for (topic, partition, offset) in batch.offsets.drain(..) {
            // Later offsets of a partition replace earlier ones.
            let _ = offsets.add_partition_offset(&topic, partition, Offset::Offset(offset));
        }
        match consumer.commit(&offsets, CommitMode::Sync) {
            Ok(()) => debug!(partitions = offsets.count(), "committed a batch"),
            // The group rebalanced while the batch was open: the partitions'
            // new owners process these records again (at least once).
            Err(error) => warn!(%error, "could not commit offsets; the records will be processed again"),
        }
        metrics::batch_committed(started.elapsed());
        self.export_gauges();
        Ok(())
    }

    fn export_gauges(&self) {
        let projections = self.projections.lock().unwrap_or_else(|e| e.into_inner());
        metrics::live_messages(projections.live_messages());
        for (status, count) in projections.campaigns_by_status() {
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

    fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.config.bootstrap_servers)
            .set("group.id", &self.config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            // Range assignment gives each member the same partition numbers of
            // topics with equal partition counts, which keeps the message
            // commands partitions with their message events partitions.
            .set("partition.assignment.strategy", "range")
            .set("isolation.level", "read_committed")
            .set("statistics.interval.ms", "5000");
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
        for (key, value) in &self.config.kafka_properties {
            config.set(key, value);
        }
        config
    }
}

/// The records processed since the last commit.
#[derive(Default)]
struct Batch {
    started: Option<Instant>,
    deliveries: Vec<DeliveryFuture>,
    offsets: Vec<(String, i32, i64)>,
}

impl Batch {
    fn start(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    fn time_left(&self, max_wait: std::time::Duration) -> std::time::Duration {
        match self.started {
            Some(started) => max_wait.saturating_sub(started.elapsed()).max(std::time::Duration::from_millis(1)),
            None => max_wait,
        }
    }

    fn is_due(&self, max_records: usize, max_wait: std::time::Duration) -> bool {
        self.started.is_some_and(|started| self.offsets.len() >= max_records || started.elapsed() >= max_wait)
    }
}

/// Hands one output to the producer, waiting while its queue is full.
async fn send(producer: &FutureProducer, output: Output) -> Result<DeliveryFuture, WorkerError> {
    loop {
        let mut record = FutureRecord::to(&output.topic);
        if let Some(key) = &output.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &output.payload {
            record = record.payload(payload.as_slice());
        }
        if let Some(partition) = output.partition {
            record = record.partition(partition);
        }
        if let Some(headers) = &output.headers {
            record = record.headers(headers.clone());
        }
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err((error, _)) => return Err(WorkerError::Delivery { topic: output.topic.clone(), error }),
        }
    }
}
