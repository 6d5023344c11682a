//! Support for the tests that run the `smsfold` binary: a clean environment,
//! configuration files, and topics on the test broker.
//!
//! Tests that need Kafka read the broker's address from
//! `SMSFOLD_TEST_BOOTSTRAP`, which scripts/test.sh sets after starting a
//! local broker.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

/// Returns the test broker's address.
///
/// # Panics
/// When `SMSFOLD_TEST_BOOTSTRAP` is not set: these tests need a broker.
pub fn bootstrap() -> String {
    std::env::var("SMSFOLD_TEST_BOOTSTRAP").unwrap_or_else(|_| {
        panic!(
            "SMSFOLD_TEST_BOOTSTRAP is not set; run the tests with scripts/test.sh, which starts a local broker, \
             or start one with scripts/kafka-broker.sh start and set SMSFOLD_TEST_BOOTSTRAP=127.0.0.1:19092"
        )
    })
}

/// Returns a name no other test run uses, for topic prefixes, groups and
/// files.
pub fn unique(name: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{name}-{stamp}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Returns a command that runs the `smsfold` binary with no `SMSFOLD_*`
/// variable and no `RUST_LOG` from the test's environment, so that only
/// what a test sets applies.
pub fn smsfold() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smsfold"));
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_str().is_some_and(|name| name.starts_with("SMSFOLD_") || name == "RUST_LOG");
        if inherited {
            command.env_remove(name);
        }
    }
    command
}

/// Returns the output's stdout and stderr as text.
pub fn texts(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A file under the system's temporary directory, removed when dropped.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(unique(name));
        std::fs::write(&path, text).expect("write a temporary file");
        TempFile { path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The eight topic names of one test, all under one fresh prefix.
pub struct TestTopics {
    pub prefix: String,
}

impl TestTopics {
    pub fn new(test: &str) -> Self {
        TestTopics { prefix: format!("{}-", unique(test)) }
    }

    pub fn name(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// Returns the `[topics]` table of a configuration file, with the
    /// default names under this prefix.
    pub fn toml_table(&self) -> String {
        let mut table = String::from("[topics]\n");
        for (key, name) in [
            ("message_events", "message-events"),
            ("campaign_events", "campaign-events"),
            ("message_changes", "message-status-changes"),
            ("campaign_changes", "campaign-status-changes"),
            ("dead_letter", "smsfold-dead-letter"),
            ("campaign_stage", "smsfold-campaign-stage"),
            ("message_commands", "smsfold-message-commands"),
            ("carrier_join", "smsfold-carrier-join"),
        ] {
            table.push_str(&format!("{key} = \"{}\"\n", self.name(name)));
        }
        table
    }

    /// Creates the two input topics, as the platform would.
    pub async fn create_inputs(&self, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
        let names = [self.name("message-events"), self.name("campaign-events")];
        let topics: Vec<NewTopic<'_>> =
            names.iter().map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(1))).collect();
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create topics") {
            result.unwrap_or_else(|(topic, code)| panic!("could not create topic {topic}: {code}"));
        }
        for name in &names {
            partition_count(name);
        }
    }
}

/// Returns the partition count of a topic, waiting up to 10 s for a topic
/// created a moment ago to appear in the broker's metadata with a leader for
/// every partition.
pub fn partition_count(topic: &str) -> i32 {
    let consumer = metadata_client();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
        let partitions = metadata.topics()[0].partitions();
        let leaders_ready = partitions.iter().all(|partition| partition.error().is_none() && partition.leader() >= 0);
        if !partitions.is_empty() && leaders_ready {
            return partitions.len() as i32;
        }
        assert!(Instant::now() < deadline, "topic {topic} does not exist or has a partition without a leader");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns the number of records in a topic: the sum over its partitions of
/// the high watermark minus the low one.
pub fn record_count(topic: &str) -> i64 {
    let consumer = metadata_client();
    (0..partition_count(topic)).map(|partition| {
        let (low, high) = watermarks(&consumer, topic, partition);
        high - low
    }).sum()
}

/// Returns the low and high watermarks of a partition. A broker that has
/// just elected the partition's leader can still return "not leader" for a
/// moment, so errors are retried for up to 10 s.
fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)) {
            Ok(watermarks) => return watermarks,
            Err(error) if Instant::now() < deadline => {
                eprintln!("could not read the watermarks of {topic}[{partition}], retrying: {error}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("could not read the watermarks of {topic}[{partition}] within 10 s: {error}"),
        }
    }
}

fn metadata_client() -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("allow.auto.create.topics", "false")
        .create()
        .expect("consumer")
}

/// Returns the value of header `name` of the first record read from `topic`,
/// waiting up to 10 s for a record.
pub fn first_header(topic: &str, name: &str) -> Option<String> {
    use rdkafka::message::{Headers, Message};
    use rdkafka::{Offset, TopicPartitionList};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", unique("smsfold-test-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partition_count(topic) {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("assignment");
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(Ok(record)) = consumer.poll(Duration::from_millis(100)) {
            let headers = record.headers()?;
            let value = headers.iter().find(|header| header.key == name)?.value?;
            return Some(String::from_utf8_lossy(value).into_owned());
        }
    }
    None
}
