//! Command-line arguments. Every worker option can also come from an
//! environment variable, named next to it in `--help`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "smsfold", version, about = "Folds SMS/MMS message and campaign events from Kafka into status projections")]
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
    /// Drive a demo campaign through the worker and print what it publishes.
    /// Without --bootstrap-servers it runs on an in-process mock cluster.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GroupProtocolArg {
    Consumer,
    Classic,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GuaranteeArg {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Json,
    Protobuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(long, env = "SMSFOLD_BOOTSTRAP_SERVERS")]
    pub bootstrap_servers: String,
    /// Consumer group id; instances with the same id share the partitions.
    #[arg(long, env = "SMSFOLD_GROUP_ID", default_value = "smsfold")]
    pub group_id: String,
    /// Name of this instance, unique within the group and stable across its
    /// restarts; the transactional id is GROUP_ID-INSTANCE_ID [default: the host name].
    #[arg(long, env = "SMSFOLD_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Consumer group protocol: "consumer" (KIP-848, Kafka 4 brokers) or
    /// "classic" (older brokers).
    #[arg(long, env = "SMSFOLD_GROUP_PROTOCOL", value_enum, default_value = "consumer")]
    pub group_protocol: GroupProtocolArg,
    /// Delivery guarantee of the published changes.
    #[arg(long, env = "SMSFOLD_GUARANTEE", value_enum, default_value = "exactly-once")]
    pub guarantee: GuaranteeArg,
    #[command(flatten)]
    pub topics: TopicArgs,
    /// Format of the published status changes.
    #[arg(long, env = "SMSFOLD_OUTPUT_FORMAT", value_enum, default_value = "json")]
    pub output_format: OutputFormat,
    /// Records with a larger value, in bytes, are dead-lettered as too_large.
    #[arg(long, env = "SMSFOLD_MAX_RECORD_BYTES", default_value_t = 1024 * 1024)]
    pub max_record_bytes: usize,
    /// Records per batch; a batch's outputs are flushed and its offsets committed together.
    #[arg(long, env = "SMSFOLD_BATCH_MAX_RECORDS", default_value_t = 5000)]
    pub batch_max_records: usize,
    /// Maximum time a batch stays open, in milliseconds.
    #[arg(long, env = "SMSFOLD_BATCH_MAX_WAIT_MS", default_value_t = 100)]
    pub batch_max_wait_ms: u64,
    /// Hours a settled message or an ended campaign stays in the live state
    /// after its last status change, in event time.
    #[arg(long, env = "SMSFOLD_RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,
    /// Partitions of the internal campaign stage topic when smsfold creates it
    /// [default: the partition count of the message events topic].
    #[arg(long, env = "SMSFOLD_CAMPAIGN_STAGE_PARTITIONS")]
    pub campaign_stage_partitions: Option<i32>,
    /// Replication factor of the topics smsfold creates.
    #[arg(long, env = "SMSFOLD_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
    /// Address for /metrics, /healthz, /readyz and the projection queries.
    #[arg(long, env = "SMSFOLD_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    pub http_addr: SocketAddr,
    /// librdkafka property passed to every client, as KEY=VALUE (repeatable),
    /// e.g. security.protocol=SASL_SSL.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_properties: Vec<String>,
    /// Log format on stderr.
    #[arg(long, env = "SMSFOLD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct TopicArgs {
    /// Input topic of message events, keyed by message id.
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_EVENTS", default_value = "message-events")]
    pub message_events_topic: String,
    /// Input topic of campaign events, keyed by campaign id.
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_EVENTS", default_value = "campaign-events")]
    pub campaign_events_topic: String,
    /// Output topic of message status changes, keyed by message id.
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_CHANGES", default_value = "message-status-changes")]
    pub message_changes_topic: String,
    /// Output topic of campaign status changes, keyed by campaign id.
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_CHANGES", default_value = "campaign-status-changes")]
    pub campaign_changes_topic: String,
    /// Output topic of records that could not be decoded or applied.
    #[arg(long, env = "SMSFOLD_TOPIC_DEAD_LETTER", default_value = "smsfold-dead-letter")]
    pub dead_letter_topic: String,
    /// Internal topic: campaign events and message updates keyed by campaign id.
    #[arg(long, env = "SMSFOLD_TOPIC_CAMPAIGN_STAGE", default_value = "smsfold-campaign-stage")]
    pub campaign_stage_topic: String,
    /// Internal topic: campaign cancellations for the message stage.
    #[arg(long, env = "SMSFOLD_TOPIC_MESSAGE_COMMANDS", default_value = "smsfold-message-commands")]
    pub message_commands_topic: String,
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
