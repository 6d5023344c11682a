//! The worker's settings, checked once at start-up.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use smsfold_smpp::StateTable;
use smsfold_wire::Format;

/// Pipelines per process unless configured.
pub const DEFAULT_PIPELINES: usize = 1;

/// Maximum pipelines per process, because each has a consumer, a producer
/// and a thread.
pub const MAX_PIPELINES: usize = 64;

/// Topic names. Inputs belong to the platform; outputs and internal topics
/// to smsfold, which creates them when they are missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// Input: message events keyed by message id.
    pub message_events: String,
    /// Input: campaign events keyed by campaign id.
    pub campaign_events: String,
    /// Output: message status changes keyed by message id.
    pub message_changes: String,
    /// Output: campaign status changes keyed by campaign id.
    pub campaign_changes: String,
    /// Output: records that could not be decoded or applied.
    pub dead_letter: String,
    /// Internal: campaign events and message updates re-keyed by campaign id.
    pub campaign_stage: String,
    /// Internal: campaign cancellations, one copy per partition, and
    /// receipts matched by carrier id, for the message stage. Has as many
    /// partitions as `message_events`.
    pub message_commands: String,
    /// Internal: carrier ids of sent messages and receipts that name only a
    /// carrier id, keyed by carrier key, for the carrier join stage.
    pub carrier_join: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            message_events: "message-events".to_owned(),
            campaign_events: "campaign-events".to_owned(),
            message_changes: "message-status-changes".to_owned(),
            campaign_changes: "campaign-status-changes".to_owned(),
            dead_letter: "smsfold-dead-letter".to_owned(),
            campaign_stage: "smsfold-campaign-stage".to_owned(),
            message_commands: "smsfold-message-commands".to_owned(),
            carrier_join: "smsfold-carrier-join".to_owned(),
        }
    }
}

impl Topics {
    /// Returns the default names, each preceded by `prefix`: fresh topics for
    /// a demo or a test run on a shared cluster.
    pub fn with_prefix(prefix: &str) -> Self {
        let defaults = Topics::default();
        let with = |name: &str| format!("{prefix}{name}");
        Topics {
            message_events: with(&defaults.message_events),
            campaign_events: with(&defaults.campaign_events),
            message_changes: with(&defaults.message_changes),
            campaign_changes: with(&defaults.campaign_changes),
            dead_letter: with(&defaults.dead_letter),
            campaign_stage: with(&defaults.campaign_stage),
            message_commands: with(&defaults.message_commands),
            carrier_join: with(&defaults.carrier_join),
        }
    }

    /// Names every topic with the setting that sets it.
    pub fn named(&self) -> [(&'static str, &str); 8] {
        [
            ("topics.message_events", &self.message_events),
            ("topics.campaign_events", &self.campaign_events),
            ("topics.message_changes", &self.message_changes),
            ("topics.campaign_changes", &self.campaign_changes),
            ("topics.dead_letter", &self.dead_letter),
            ("topics.campaign_stage", &self.campaign_stage),
            ("topics.message_commands", &self.message_commands),
            ("topics.carrier_join", &self.carrier_join),
        ]
    }
}

/// How the worker commits its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Outputs, changelog entries and consumed offsets commit in one Kafka
    /// transaction (exactly_once_v2): each change is published exactly once.
    ExactlyOnce,
    /// Offsets are committed after the outputs are acknowledged, without
    /// transactions: after a crash some outputs are published again.
    AtLeastOnce,
}

/// The consumer group protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The consumer group protocol of KIP-848 (Kafka 4): the broker assigns
    /// partitions and rebalances incrementally.
    Consumer,
    /// The classic protocol with the eager range assignor, for brokers
    /// before Kafka 4 and for librdkafka's mock cluster.
    Classic,
}

/// Everything the worker needs to run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// Consumer group id; instances with the same id share the partitions.
    pub group_id: String,
    /// Stable name of this instance within the group; the transactional id
    /// is `{group_id}-{instance_id}`, so a restarted instance fences its own
    /// zombie at once. Instances of one group need distinct ids.
    pub instance_id: String,
    pub guarantee: Guarantee,
    /// Pipelines this process runs, each a group member with its own
    /// producer and transactional id (`instance_id`, then
    /// `{instance_id}-pipeline-{n}`), so that they commit in parallel.
    pub pipelines: usize,
    pub group_protocol: GroupProtocol,
    pub topics: Topics,
    /// Format of the status changes smsfold publishes.
    pub output_format: Format,
    /// Records whose value is larger are dead-lettered as `too_large`.
    pub max_record_bytes: usize,
    /// Records processed before their outputs are flushed and offsets committed.
    pub batch_max_records: usize,
    /// Maximum time a batch stays open before it is committed.
    pub batch_max_wait: Duration,
    /// An open batch commits when no record arrives for this long, so at low
    /// load a change is published within about this time plus one commit.
    /// Exactly-once, a batch this old also commits as soon as no commit of
    /// an earlier batch is running.
    pub batch_idle: Duration,
    /// How long a settled message, or an ended campaign, stays in the live
    /// state after its last status change, in event time.
    pub retention: Duration,
    /// Wall-clock time between two eviction passes.
    pub eviction_interval: Duration,
    /// Maps the `stat` of SMPP receipts to outcomes: the defaults and the
    /// carriers' own states.
    pub receipt_states: StateTable,
    /// How long a receipt that names only a carrier id waits for the sent
    /// event with that id, in event time, before it is dead-lettered as
    /// `receipt_unmatched`.
    pub unmatched_receipt_wait: Duration,
    /// Partitions of the internal campaign stage topic when smsfold creates
    /// it; `None` uses the partition count of the message events topic.
    pub campaign_stage_partitions: Option<i32>,
    /// Replication factor for topics smsfold creates.
    pub replication_factor: i32,
    /// Address of the HTTP server for `/metrics`, `/healthz`, `/readyz` and
    /// the projection queries; `None` serves nothing.
    pub http_addr: Option<SocketAddr>,
    /// librdkafka properties passed to every client as they are (TLS, SASL,
    /// timeouts); they override smsfold's own defaults.
    pub kafka_properties: BTreeMap<String, String>,
}

impl WorkerConfig {
    /// Builds a configuration with every default and the given broker.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        WorkerConfig {
            bootstrap_servers: bootstrap_servers.into(),
            group_id: "smsfold".to_owned(),
            instance_id: default_instance_id(),
            guarantee: Guarantee::ExactlyOnce,
            pipelines: DEFAULT_PIPELINES,
            group_protocol: GroupProtocol::Consumer,
            topics: Topics::default(),
            output_format: Format::Json,
            max_record_bytes: 1024 * 1024,
            batch_max_records: 5_000,
            batch_max_wait: Duration::from_millis(100),
            batch_idle: Duration::from_millis(5),
            retention: Duration::from_secs(7 * 24 * 3600),
            eviction_interval: Duration::from_secs(60),
            receipt_states: StateTable::new(),
            unmatched_receipt_wait: Duration::from_secs(3600),
            campaign_stage_partitions: None,
            replication_factor: 1,
            http_addr: None,
            kafka_properties: BTreeMap::new(),
        }
    }

    /// Returns the message stage's changelog topic, named after the group
    /// because its contents belong to the group's state.
    pub fn message_changelog(&self) -> String {
        format!("{}-message-changelog", self.group_id)
    }

    /// Returns the campaign stage's changelog topic.
    pub fn campaign_changelog(&self) -> String {
        format!("{}-campaign-changelog", self.group_id)
    }

    /// Returns the carrier join stage's changelog topic.
    pub fn carrier_changelog(&self) -> String {
        format!("{}-carrier-changelog", self.group_id)
    }

    /// Checks the settings, naming the first invalid one and how to fix it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(ConfigError::new("bootstrap_servers", "is empty; set it to host:port of a Kafka broker"));
        }
        if self.group_id.trim().is_empty() {
            return Err(ConfigError::new("group_id", "is empty; set a consumer group id such as \"smsfold\""));
        }
        if self.instance_id.trim().is_empty() {
            return Err(ConfigError::new("instance_id", "is empty; set a name unique within the group, such as the host name"));
        }
        validate_topic_name("group_id", &self.message_changelog())?;
        let named = self.topics.named();
        for (setting, topic) in named {
            validate_topic_name(setting, topic)?;
        }
        for (index, (setting, topic)) in named.iter().enumerate() {
            if let Some((other, _)) = named[..index].iter().find(|(_, earlier)| earlier == topic) {
                return Err(ConfigError::new(
                    setting,
                    format!("names topic {topic:?}, which {other} uses too; give each topic its own name"),
                ));
            }
        }
        if !(1..=MAX_PIPELINES).contains(&self.pipelines) {
            return Err(ConfigError::new(
                "pipelines",
                format!("is {}; set a number from 1 to {MAX_PIPELINES}, e.g. the number of CPUs", self.pipelines),
            ));
        }
        if self.max_record_bytes == 0 {
            return Err(ConfigError::new("max_record_bytes", "is 0; set a positive size in bytes, e.g. 1048576"));
        }
        if self.batch_max_records == 0 {
            return Err(ConfigError::new("batch_max_records", "is 0; set a positive number of records, e.g. 5000"));
        }
        if self.batch_max_wait.is_zero() {
            return Err(ConfigError::new("batch_max_wait_ms", "is 0; set a positive time in milliseconds, e.g. 100"));
        }
        if self.retention.is_zero() {
            return Err(ConfigError::new("retention_hours", "is 0; set how long settled messages stay, e.g. 168 (7 days)"));
        }
        if self.unmatched_receipt_wait.is_zero() {
            return Err(ConfigError::new(
                "unmatched_receipt_wait_ms",
                "is 0; set how long a receipt waits for its sent event in milliseconds, e.g. 3600000 (1 hour)",
            ));
        }
        if self.campaign_stage_partitions.is_some_and(|n| n < 1) {
            return Err(ConfigError::new("campaign_stage_partitions", "must be at least 1"));
        }
        if self.replication_factor < 1 {
            return Err(ConfigError::new("replication_factor", "must be at least 1"));
        }
        Ok(())
    }
}

/// Returns the host name, which is stable across restarts of one pod or
/// machine, or "smsfold" when it cannot be read.
fn default_instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "smsfold".to_owned())
}

fn validate_topic_name(setting: &'static str, topic: &str) -> Result<(), ConfigError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > 249 || topic == "." || topic == ".." || !topic.chars().all(legal) {
        return Err(ConfigError::new(
            setting,
            format!("{topic:?} is not a valid Kafka topic name; use 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-'"),
        ));
    }
    Ok(())
}

/// An invalid setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, problem: impl Into<String>) -> Self {
        ConfigError { setting, problem: problem.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(WorkerConfig::new("127.0.0.1:9092").validate(), Ok(()));
    }

    #[test]
    fn shared_topic_names_rejected() {
        let mut config = WorkerConfig::new("127.0.0.1:9092");
        config.topics.dead_letter = config.topics.message_events.clone();
        let error = config.validate().unwrap_err();
        assert_eq!(error.setting, "topics.dead_letter");
        assert!(error.problem.contains("topics.message_events"), "{}", error.problem);
    }

    #[test]
    fn illegal_topic_name_rejected() {
        let mut config = WorkerConfig::new("127.0.0.1:9092");
        config.topics.message_changes = "changes/v1".to_owned();
        assert_eq!(config.validate().unwrap_err().setting, "topics.message_changes");
    }

    #[test]
    fn empty_bootstrap_rejected() {
        let error = WorkerConfig::new(" ").validate().unwrap_err();
        assert_eq!(error.setting, "bootstrap_servers");
    }
}
