//! Support code for the integration suite under `tests/`: the broker address,
//! fresh topics per test, producing and reading records, and workers run in
//! the test's process.
//!
//! The suite runs against a real Kafka broker whose address comes from
//! `SMSFOLD_TEST_BOOTSTRAP` (set by `scripts/test.sh`, which starts one).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use smsfold_worker::{Projections, Worker, WorkerConfig};
use tokio::sync::watch;

pub mod process;

/// Returns the test broker's address.
///
/// # Panics
/// When `SMSFOLD_TEST_BOOTSTRAP` is not set: these tests need a broker.
pub fn bootstrap() -> String {
    std::env::var("SMSFOLD_TEST_BOOTSTRAP").unwrap_or_else(|_| {
        panic!("SMSFOLD_TEST_BOOTSTRAP is not set; run the suite with scripts/test.sh, which starts a local broker")
    })
}

/// Returns a name no other test run uses, for topics and groups.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{name}-{stamp}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Creates topics with the given partition counts.
pub async fn create_topics(topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
    let new: Vec<NewTopic<'_>> =
        topics.iter().map(|(name, partitions)| NewTopic::new(name, *partitions, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&new, &AdminOptions::new()).await.expect("create topics") {
        result.unwrap_or_else(|(topic, code)| panic!("could not create topic {topic}: {code}"));
    }
}

/// One record to produce.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// `None` sends no content-type header.
    pub content_type: Option<&'static str>,
}

/// Produces records in order, keyed records placed by murmur2 as Java
/// clients place them, and waits until every one is acknowledged.
pub async fn produce(records: &[Record]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let mut future = FutureRecord::to(&record.topic).payload(&record.value);
        if let Some(key) = &record.key {
            future = future.key(key);
        }
        if let Some(content_type) = record.content_type {
            future = future.headers(OwnedHeaders::new().insert(Header { key: "content-type", value: Some(content_type) }));
        }
        loop {
            match producer.send_result(future) {
                Ok(delivery) => {
                    deliveries.push(delivery);
                    break;
                }
                Err((_, returned)) => {
                    future = returned;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for delivery in deliveries {
        delivery.await.expect("delivery canceled").expect("delivery failed");
    }
}

/// Reads every record of `topic` from the beginning, read_committed, until
/// every partition reached its end and at least `expected` records were
/// read, or until nothing new arrived for `idle`.
pub fn read_topic(topic: &str, expected: usize, idle: Duration) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("suite-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");

    let mut records = Vec::new();
    let mut at_end = std::collections::HashSet::new();
    let mut last_new = Instant::now();
    while records.len() < expected || at_end.len() < partitions as usize {
        if last_new.elapsed() > idle {
            break;
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(record)) => {
                at_end.remove(&record.partition());
                records.push(record.detach());
                last_new = Instant::now();
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("reading {topic} failed: {error}"),
            None => {}
        }
    }
    records
}

/// Returns a record's header value as text.
pub fn header_text(record: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let headers = record.headers()?;
    headers.iter().find(|header| header.key == name)?.value.map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Returns a record's key as text.
pub fn key_text(record: &OwnedMessage) -> String {
    String::from_utf8_lossy(record.key().unwrap_or_default()).into_owned()
}

/// A worker running in this process, with its shared state.
pub struct Instance {
    pub projections: Arc<Mutex<Projections>>,
    pub ready: Arc<std::sync::atomic::AtomicBool>,
    pub task: tokio::task::JoinHandle<Result<(), smsfold_worker::WorkerError>>,
}

/// Starts a worker of `config` named `instance` on the current runtime.
pub fn start_worker(config: &WorkerConfig, instance: &str, shutdown: &watch::Receiver<bool>) -> Instance {
    let mut config = config.clone();
    config.instance_id = instance.to_owned();
    let worker = Worker::new(config).expect("valid config");
    Instance {
        projections: worker.projections(),
        ready: worker.ready(),
        task: tokio::spawn(worker.run(shutdown.clone())),
    }
}

/// Waits until `done` holds, polling; panics with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns a message's status in whichever instance contains it.
pub fn message_status(instances: &[Instance], message_id: &str) -> Option<String> {
    instances.iter().find_map(|instance| {
        let projections = instance.projections.lock().unwrap();
        projections.message(message_id).map(|p| p.status.as_str().to_owned())
    })
}
