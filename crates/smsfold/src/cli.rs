//! Command-line arguments.
//!
//! Settings shared with the configuration file are `Option`s here, so that
//! `settings` can tell a value given on the command line or in an `SMSFOLD_*`
//! variable from one left out. Their defaults live in `WorkerConfig::new` and
//! `settings`. The help text repeats them as `[default: ...]`, and a unit test
//! in `settings` checks that the two agree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use crate::version;

#[derive(Debug, Parser)]
#[command(
    name = "smsfold",
    version = version::SHORT,
    long_version = version::LONG,
    about = "Folds SMS/MMS message and campaign events from Kafka into status projections"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker against a Kafka cluster.
    Run(RunArgs),
    /// Rebuild the projections from the input topics: drop the state, fold
    /// every input event again and publish nothing that was published
    /// before. Stop every `smsfold run` instance of the group first.
    Rebuild(RunArgs),
    /// Print the effective configuration of `run` and where each value comes
    /// from, with secrets shown as ***, and check it. Exits non-zero when a
    /// setting is invalid.
    Config(RunArgs),
    /// Send message and campaign events from a JSON Lines file to the input
    /// topics, after checking every line.
    Produce(ProduceArgs),
    /// Print the status changes the workers publish, and optionally the dead
    /// letters, as they arrive.
    Tail(TailArgs),
    /// Print a campaign's status and counts, built from the status-change
    /// topics.
    Report(ReportArgs),
    /// Drive a demo campaign through the worker and print what it publishes.
    /// Without --bootstrap-servers it runs on an in-process mock cluster.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The consumer group protocol, as `smsfold_worker::GroupProtocol`
/// describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocolArg {
    Consumer,
    Classic,
}

/// The worker's delivery guarantee, as `smsfold_worker::Guarantee`
/// describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuaranteeArg {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Json,
    Protobuf,
}

/// The settings every command that talks to Kafka shares.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// TOML configuration file; flags and SMSFOLD_* variables override its
    /// values.
    #[arg(long, env = "SMSFOLD_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, host:port[,host:port...]. Required here, in
    /// the environment or in the configuration file.
    #[arg(long, env = "SMSFOLD_BOOTSTRAP_SERVERS", value_name = "HOST:PORT,...")]
    pub bootstrap_servers: Option<String>,
    /// librdkafka property for every Kafka client, as KEY=VALUE (repeatable),
    /// e.g. security.protocol=SASL_SSL. Overrides the same key from an
    /// SMSFOLD_KAFKA_PROPERTY_* variable or the file's [kafka] table.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Log format on stderr [default: text]
    #[arg(long, env = "SMSFOLD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Put before the default name of every topic not named by its own
    /// setting, e.g. staging- for staging-message-events (none by default)
    #[arg(long, env = "SMSFOLD_TOPIC_PREFIX", value_name = "PREFIX")]
    pub topic_prefix: Option<String>,
    /// Input topic of message events, keyed by message id [default: message-events]
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_EVENTS", value_name = "TOPIC")]
    pub message_events_topic: Option<String>,
    /// Input topic of campaign events, keyed by campaign id [default: campaign-events]
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_EVENTS", value_name = "TOPIC")]
    pub campaign_events_topic: Option<String>,
    /// Output topic of message status changes, keyed by message id
    /// [default: message-status-changes]
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_CHANGES", value_name = "TOPIC")]
    pub message_changes_topic: Option<String>,
    /// Output topic of campaign status changes, keyed by campaign id
    /// [default: campaign-status-changes]
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_CHANGES", value_name = "TOPIC")]
    pub campaign_changes_topic: Option<String>,
    /// Output topic of records that could not be decoded or applied
    /// [default: smsfold-dead-letter]
    #[arg(long, env = "SMSFOLD_TOPIC_DEAD_LETTER", value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// Internal topic: campaign events and message updates keyed by campaign
    /// id [default: smsfold-campaign-stage]
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_STAGE", value_name = "TOPIC")]
    pub campaign_stage_topic: Option<String>,
    /// Internal topic: campaign cancellations and receipts matched by
    /// carrier id, for the message stage [default: smsfold-message-commands]
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_COMMANDS", value_name = "TOPIC")]
    pub message_commands_topic: Option<String>,
    /// Internal topic: carrier ids of sent events and receipts that name only
    /// a carrier id, keyed by carrier key [default: smsfold-carrier-join]
    #[arg(long, env = "SMSFOLD_TOPIC_CARRIER_JOIN", value_name = "TOPIC")]
    pub carrier_join_topic: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// The settings only the worker uses.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Consumer group id; instances with the same id share the partitions
    /// [default: smsfold]
    #[arg(long, env = "SMSFOLD_GROUP_ID")]
    pub group_id: Option<String>,
    /// Name of this instance, unique within the group and stable across its
    /// restarts; the transactional id is GROUP_ID-INSTANCE_ID [default: the
    /// host name]
    #[arg(long, env = "SMSFOLD_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Consumer group protocol: consumer (KIP-848, Kafka 4 brokers) or
    /// classic (older brokers) [default: consumer]
    #[arg(long, env = "SMSFOLD_GROUP_PROTOCOL", value_enum)]
    pub group_protocol: Option<GroupProtocolArg>,
    /// Delivery guarantee of the published changes [default: exactly-once]
    #[arg(long, env = "SMSFOLD_GUARANTEE", value_enum)]
    pub guarantee: Option<GuaranteeArg>,
    /// Pipelines in this process, each a group member with its own
    /// transactional producer, committing in parallel [default: 1]
    #[arg(long, env = "SMSFOLD_PIPELINES", value_name = "COUNT")]
    pub pipelines: Option<usize>,
    /// Format of the published status changes [default: json]
    #[arg(long, env = "SMSFOLD_OUTPUT_FORMAT", value_enum)]
    pub output_format: Option<OutputFormat>,
    /// Largest record value accepted, in bytes; larger ones are dead-lettered
    /// as too_large [default: 1048576]
    #[arg(long, env = "SMSFOLD_MAX_RECORD_BYTES", value_name = "BYTES")]
    pub max_record_bytes: Option<usize>,
    /// Records per batch; a batch's outputs are flushed and its offsets
    /// committed together [default: 5000]
    #[arg(long, env = "SMSFOLD_BATCH_MAX_RECORDS", value_name = "RECORDS")]
    pub batch_max_records: Option<usize>,
    /// Maximum time a batch stays open, in milliseconds [default: 100]
    #[arg(long, env = "SMSFOLD_BATCH_MAX_WAIT_MS", value_name = "MS")]
    pub batch_max_wait_ms: Option<u64>,
    /// Hours a settled message or an ended campaign stays in the live state
    /// after its last status change, in event time [default: 168]
    #[arg(long, env = "SMSFOLD_RETENTION_HOURS", value_name = "HOURS")]
    pub retention_hours: Option<u64>,
    /// Outcome of an SMPP receipt state, as STAT=OUTCOME with OUTCOME one of
    /// delivered, undelivered, intermediate or unknown (repeatable, or
    /// comma-separated in the variable), e.g. NOROUTE=undelivered. Adds to
    /// or replaces the default table
    #[arg(long = "receipt-state", env = "SMSFOLD_RECEIPT_STATES", value_name = "STAT=OUTCOME", value_delimiter = ',')]
    pub receipt_states: Vec<String>,
    /// Maximum wait of a receipt that names only a carrier id for the sent
    /// event with that id, in milliseconds of event time; it is then
    /// dead-lettered as receipt_unmatched [default: 3600000]
    #[arg(long, env = "SMSFOLD_UNMATCHED_RECEIPT_WAIT_MS", value_name = "MS")]
    pub unmatched_receipt_wait_ms: Option<u64>,
    /// Partitions of the internal campaign stage topic when smsfold creates
    /// it [default: the partition count of the message events topic]
    #[arg(long, env = "SMSFOLD_CAMPAIGN_STAGE_PARTITIONS", value_name = "PARTITIONS")]
    pub campaign_stage_partitions: Option<i32>,
    /// Replication factor of the topics smsfold creates [default: 1]
    #[arg(long, env = "SMSFOLD_REPLICATION_FACTOR", value_name = "REPLICAS")]
    pub replication_factor: Option<i32>,
    /// Address for /metrics, /healthz, /readyz and the projection queries
    /// [default: 127.0.0.1:9464]
    #[arg(long, env = "SMSFOLD_HTTP_ADDR", value_name = "IP:PORT")]
    pub http_addr: Option<SocketAddr>,
    /// Maximum wait, in milliseconds, for the worker to commit its open batch
    /// and stop after SIGTERM or SIGINT; after it smsfold exits with an error
    /// [default: 30000]
    #[arg(long, env = "SMSFOLD_SHUTDOWN_TIMEOUT_MS", value_name = "MS")]
    pub shutdown_timeout_ms: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// JSON Lines file of events, one event per line, or - for stdin. A line
    /// with message_id goes to the message events topic, a line with only
    /// campaign_id to the campaign events topic.
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
    /// Report invalid lines on stderr and send the valid ones. Without it, an
    /// invalid line stops the command before anything is sent.
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TailOutput {
    /// One readable line per record.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also print the dead-letter topic.
    #[arg(long)]
    pub dead_letters: bool,
    /// Start at the oldest retained records instead of the end of each topic.
    #[arg(long)]
    pub from_beginning: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub output: TailOutput,
    /// Print only the changes of this campaign and of its messages.
    #[arg(long, value_name = "CAMPAIGN_ID")]
    pub campaign: Option<String>,
    /// Exit after printing this many records.
    #[arg(long, value_name = "RECORDS")]
    pub max_records: Option<u64>,
    /// Exit once no record has arrived for this long, in milliseconds.
    #[arg(long, value_name = "MS")]
    pub idle_exit_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportOutput {
    /// Tables for people.
    Table,
    /// One JSON object.
    Json,
    /// CSV with a header row: the summary, or with --messages one row per
    /// message.
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The campaign id.
    #[arg(value_name = "CAMPAIGN_ID")]
    pub campaign: String,
    /// Add one row per message: its status, since when and its error code.
    #[arg(long)]
    pub messages: bool,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub output: ReportOutput,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// A Kafka cluster to run the demo on; its topics get a unique prefix.
    /// Without it the demo starts an in-process mock cluster.
    #[arg(long, env = "SMSFOLD_DEMO_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}
