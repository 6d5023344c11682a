//! The benchmarks' Kafka clients: topics, a fast producer, a consumer
//! group's progress, and record counts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use super::workload::Encoded;

const METADATA_TIMEOUT: Duration = Duration::from_secs(15);

/// Returns the broker address: `SMSFOLD_TEST_BOOTSTRAP`, or the local
/// broker that `scripts/kafka-broker.sh start` runs.
pub fn bootstrap() -> String {
    std::env::var("SMSFOLD_TEST_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:19092".to_owned())
}

/// The broker, with an admin client for topics.
pub struct Kafka {
    pub bootstrap: String,
    admin: AdminClient<DefaultClientContext>,
    /// Reads watermarks; joins no group.
    probe: BaseConsumer,
    runtime: Handle,
}

impl Kafka {
    /// Connects to the broker and checks that it responds.
    pub fn connect(bootstrap: String, runtime: Handle) -> anyhow::Result<Self> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).create().context("could not create the admin client")?;
        admin.inner().fetch_metadata(None, Duration::from_secs(10)).with_context(|| {
            format!("no Kafka broker responds at {bootstrap}; start one with `scripts/kafka-broker.sh start` or set SMSFOLD_TEST_BOOTSTRAP")
        })?;
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "smsfold-bench-probe")
            .create()
            .context("could not create the watermarks consumer")?;
        Ok(Kafka { bootstrap, admin, probe, runtime })
    }

    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        config
    }

    /// Creates topics of `(name, partitions, compacted)` and waits until
    /// the broker serves every partition.
    pub fn create_topics(&self, topics: &[(&str, i32, bool)]) -> anyhow::Result<()> {
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(name, partitions, compacted)| {
                let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(1));
                if *compacted {
                    // The settings the worker gives the changelogs it creates.
                    smsfold_worker::topics::CHANGELOG_TOPIC_CONFIG.iter().fold(topic, |topic, (key, value)| topic.set(key, value))
                } else {
                    topic
                }
            })
            .collect();
        let results = self.runtime.block_on(self.admin.create_topics(&new, &AdminOptions::new()))?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("could not create topic {topic}: {code}");
            }
        }
        for (name, partitions, _) in topics {
            self.wait_for_leaders(name, *partitions)?;
        }
        Ok(())
    }

    /// Deletes topics, ignoring those that do not exist.
    pub fn delete_topics(&self, topics: &[String]) -> anyhow::Result<()> {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let results = self.runtime.block_on(self.admin.delete_topics(&names, &AdminOptions::new()))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => bail!("could not delete topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    /// Returns a topic's partition count, or `None` when it does not exist.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<Option<i32>> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .with_context(|| format!("could not read the metadata of topic {topic}"))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        Ok(found.filter(|t| t.error().is_none() && !t.partitions().is_empty()).map(|t| t.partitions().len() as i32))
    }

    /// Returns the sum of a topic's high watermarks: the records written to
    /// it, and in a transactional topic one commit marker per partition and
    /// transaction as well.
    // The end-to-end benchmark does not use it; the comparison does.
    #[allow(dead_code)]
    pub fn end_offsets(&self, topic: &str) -> anyhow::Result<i64> {
        let partitions = self.partitions(topic)?.unwrap_or(0);
        let mut sum = 0;
        for partition in 0..partitions {
            let (_, high) = self
                .probe
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .with_context(|| format!("could not read the end of {topic} partition {partition}"))?;
            sum += high;
        }
        Ok(sum)
    }

    /// Waits until the leader of every partition of a new topic returns its
    /// watermarks. The metadata can name a leader shortly before that
    /// broker serves the partition.
    fn wait_for_leaders(&self, topic: &str, expected: i32) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("the metadata lists no partitions yet");
        loop {
            match self.partitions(topic) {
                Ok(Some(count)) if count == expected => {
                    let answered = (0..expected).try_for_each(|partition| {
                        self.probe.fetch_watermarks(topic, partition, Duration::from_secs(5)).map(|_| ())
                    });
                    match answered {
                        Ok(()) => return Ok(()),
                        Err(error) => last_error = error.to_string(),
                    }
                }
                Ok(_) => {}
                Err(error) => last_error = format!("{error:#}"),
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the {expected} partitions of new topic {topic} are not served 60 s after it was created: {last_error}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Produces keyed records with a `content-type: application/x-protobuf`
    /// header, placed by murmur2 as Java clients place them, and waits until
    /// the broker acknowledged each. Returns the number produced.
    pub fn produce(&self, topic: &str, records: impl IntoIterator<Item = Encoded>, timeout: Duration) -> anyhow::Result<u64> {
        let producer: ThreadedProducer<DeliveryCounter> = self
            .client_config()
            .set("partitioner", "murmur2_random")
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .create_with_context(DeliveryCounter::default())
            .context("could not create the producer")?;
        let started = Instant::now();
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/x-protobuf") });
        let mut sent = 0_u64;
        for record in records {
            let mut base = BaseRecord::to(topic).key(&record.key).payload(&record.value).headers(headers.clone());
            loop {
                match producer.send(base) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                        base = returned;
                        if started.elapsed() > timeout {
                            bail!("producing to {topic} timed out after {} s with {sent} records sent", timeout.as_secs());
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((error, _)) => bail!("producing to {topic} failed: {error}"),
                }
            }
            sent += 1;
        }
        let remaining = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(1));
        producer.flush(remaining).with_context(|| format!("flushing the records for {topic} failed"))?;
        let context = producer.context();
        let failed = context.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = context.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
            bail!("{failed} of {sent} records for {topic} were not delivered; the first error: {first}");
        }
        Ok(sent)
    }

    /// Counts the committed records (read_committed) of a topic from the
    /// beginning: until every partition reached its end and at least
    /// `expected` records were read, or until nothing new arrived for `idle`.
    pub fn count_records(&self, topic: &str, expected: u64, idle: Duration) -> anyhow::Result<u64> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", format!("{topic}-counter"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .set("isolation.level", "read_committed")
            .set("fetch.max.bytes", "104857600")
            .create()
            .context("could not create the counting consumer")?;
        let partitions = self.partitions(topic)?.with_context(|| format!("topic {topic} does not exist"))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut count = 0_u64;
        let mut at_end = HashSet::new();
        let mut last_new = Instant::now();
        while count < expected || at_end.len() < partitions as usize {
            if last_new.elapsed() > idle {
                break;
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(record)) => {
                    at_end.remove(&record.partition());
                    count += 1;
                    last_new = Instant::now();
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    at_end.insert(partition);
                }
                Some(Err(error)) => bail!("reading {topic} failed: {error}"),
                None => {}
            }
        }
        Ok(count)
    }
}

/// Counts failed deliveries of the benchmark's producer.
#[derive(Default)]
struct DeliveryCounter {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| error.to_string());
        }
    }
}

/// A topic a worker group consumes, and whether it is written in Kafka
/// transactions.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    /// A committed transaction ends with a commit marker, one offset past
    /// its last record, which a consumer never receives and so never
    /// commits past. A transactional partition is consumed to its end when
    /// the committed offset is one below the high watermark.
    pub transactional: bool,
}

/// The committed offsets of a consumer group against the ends of the topics
/// it consumes.
pub struct GroupProgress {
    offsets: BaseConsumer,
    watermarks: BaseConsumer,
    topics: Vec<Consumed>,
}

/// The records a group has still to consume, summed over partitions.
#[derive(Debug, Default, Clone)]
pub struct Lag {
    pub remaining: i64,
    /// False while a topic does not exist yet (the worker creates the
    /// internal ones at start-up) or its offsets could not be read.
    pub complete: bool,
    /// The error that kept the offsets from being read, for example a new
    /// partition without a leader yet.
    pub error: Option<String>,
}

impl Lag {
    pub fn done(&self) -> bool {
        self.complete && self.remaining == 0
    }
}

impl GroupProgress {
    /// Creates the clients that read the progress of `group` over `topics`.
    pub fn new(kafka: &Kafka, group: &str, topics: Vec<Consumed>) -> anyhow::Result<Self> {
        // It joins no group and only reads the group's committed offsets.
        let offsets: BaseConsumer = kafka
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .context("could not create the offsets reader")?;
        let watermarks: BaseConsumer = kafka
            .client_config()
            .set("group.id", format!("{group}-watermarks"))
            .set("isolation.level", "read_uncommitted")
            .create()
            .context("could not create the watermarks reader")?;
        Ok(GroupProgress { offsets, watermarks, topics })
    }

    /// Reads the group's lag. The committed offsets are read before the
    /// ends, so once the inputs are committed, the ends of the internal
    /// topics include every record those inputs caused. Broker errors, which
    /// are expected while new topics get their leaders, leave the lag
    /// incomplete.
    pub fn lag(&self, kafka: &Kafka) -> Lag {
        let mut lag = Lag { complete: true, ..Lag::default() };
        if let Err(error) = self.read(kafka, &mut lag) {
            lag.complete = false;
            lag.error = Some(format!("{error:#}"));
        }
        lag
    }

    fn read(&self, kafka: &Kafka, lag: &mut Lag) -> anyhow::Result<()> {
        let mut list = TopicPartitionList::new();
        let mut present = Vec::new();
        for consumed in &self.topics {
            match kafka.partitions(&consumed.topic)? {
                Some(partitions) => {
                    for partition in 0..partitions {
                        list.add_partition(&consumed.topic, partition);
                    }
                    present.push((consumed, partitions));
                }
                None => lag.complete = false,
            }
        }
        let committed = self.offsets.committed_offsets(list, METADATA_TIMEOUT).context("could not read the committed offsets")?;
        for (consumed, partitions) in present {
            for partition in 0..partitions {
                let offset = match committed.find_partition(&consumed.topic, partition).map(|element| element.offset()) {
                    Some(Offset::Offset(offset)) => offset,
                    _ => 0,
                };
                let (_, high) = self
                    .watermarks
                    .fetch_watermarks(&consumed.topic, partition, METADATA_TIMEOUT)
                    .with_context(|| format!("could not read the end of {} partition {partition}", consumed.topic))?;
                let end = if consumed.transactional && high > 0 { high - 1 } else { high };
                lag.remaining += (end - offset).max(0);
            }
        }
        Ok(())
    }
}
