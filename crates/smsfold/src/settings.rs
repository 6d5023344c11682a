//! Settings from flags, `SMSFOLD_*` environment variables and the
//! configuration file, combined into the worker's configuration.
//!
//! Precedence, highest first: a command-line flag, its environment variable,
//! the configuration file, the default. clap already prefers a flag to its
//! variable. This module lays the result over the file's values and records
//! the source of each value, so that an error can name it and `smsfold
//! config` can show it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::parser::ValueSource;
use clap::ArgMatches;
use rdkafka::error::KafkaError;
use smsfold_smpp::StateTable;
use smsfold_wire::Format;
use smsfold_worker::{GroupProtocol, Guarantee, Topics, WorkerConfig};

use crate::cli::{CommonArgs, GroupProtocolArg, GuaranteeArg, LogFormat, OutputFormat, WorkerArgs};
use crate::config_file::{self, FileSettings};

/// Address of the HTTP endpoints of `smsfold run`.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);
/// Maximum wait for the worker to stop after a shutdown signal, in milliseconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u64 = 30_000;
/// Environment variables with this prefix set librdkafka properties:
/// `SMSFOLD_KAFKA_PROPERTY_SASL_PASSWORD` sets `sasl.password`.
pub const KAFKA_PROPERTY_ENV_PREFIX: &str = "SMSFOLD_KAFKA_PROPERTY_";

/// The topic flags' argument ids and the settings they set.
pub const TOPIC_ARGS: [(&str, &str); 8] = [
    ("message_events_topic", "topics.message_events"),
    ("campaign_events_topic", "topics.campaign_events"),
    ("message_changes_topic", "topics.message_changes"),
    ("campaign_changes_topic", "topics.campaign_changes"),
    ("dead_letter_topic", "topics.dead_letter"),
    ("campaign_stage_topic", "topics.campaign_stage"),
    ("message_commands_topic", "topics.message_commands"),
    ("carrier_join_topic", "topics.carrier_join"),
];

/// The source of a setting's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

impl Origin {
    /// Returns the source as the error messages write it after the setting's
    /// name: ` in /etc/smsfold.toml`, ` (from SMSFOLD_GROUP_ID)`.
    fn in_message(&self) -> String {
        match self {
            Origin::Default => String::new(),
            Origin::File(path) => format!(" in {}", path.display()),
            Origin::Env(name) | Origin::Flag(name) => format!(" (from {name})"),
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Env(name) | Origin::Flag(name) => f.write_str(name),
        }
    }
}

/// The parsed command line of one subcommand, to tell a value given as a
/// flag from one read from its environment variable.
pub struct ArgSources<'a> {
    pub command: &'a clap::Command,
    pub matches: &'a ArgMatches,
}

impl ArgSources<'_> {
    /// Returns the flag or variable that set argument `id`, or `None` when
    /// neither did.
    fn origin(&self, id: &str) -> Option<Origin> {
        let arg = self.command.get_arguments().find(|arg| arg.get_id() == id)?;
        match self.matches.value_source(id)? {
            ValueSource::CommandLine => Some(Origin::Flag(format!("--{}", arg.get_long().unwrap_or(id)))),
            ValueSource::EnvVariable => Some(Origin::Env(arg.get_env()?.to_string_lossy().into_owned())),
            _ => None,
        }
    }
}

/// The settings of one command after every source is applied.
#[derive(Debug)]
pub struct Resolved {
    /// The winning value of each setting; `None` leaves the default.
    pub settings: FileSettings,
    /// The source of every setting not left at its default, by name
    /// (`group_id`, `topics.dead_letter`, `kafka.sasl.password`).
    origins: BTreeMap<String, Origin>,
}

/// Combines the configuration file, the environment and the flags of one
/// command. `worker` is `None` for commands without the worker's flags, and
/// `env` is the process environment (a parameter, for tests).
pub fn resolve(
    common: &CommonArgs,
    worker: Option<&WorkerArgs>,
    sources: &ArgSources<'_>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Resolved> {
    let mut settings = FileSettings::default();
    let mut origins = BTreeMap::new();
    if let Some(path) = &common.config {
        let file = config_file::load(path)?;
        settings = file.settings;
        for key in file.keys {
            origins.insert(key, Origin::File(path.clone()));
        }
    }

    let mut overlay = Overlay { sources, origins: &mut origins };
    overlay.apply(&mut settings.bootstrap_servers, &common.bootstrap_servers, "bootstrap_servers");
    overlay.apply(&mut settings.log_format, &common.log_format, "log_format");
    let topics = &common.topics;
    let topic_values = [
        (&mut settings.topics.message_events, &topics.message_events_topic),
        (&mut settings.topics.campaign_events, &topics.campaign_events_topic),
        (&mut settings.topics.message_changes, &topics.message_changes_topic),
        (&mut settings.topics.campaign_changes, &topics.campaign_changes_topic),
        (&mut settings.topics.dead_letter, &topics.dead_letter_topic),
        (&mut settings.topics.campaign_stage, &topics.campaign_stage_topic),
        (&mut settings.topics.message_commands, &topics.message_commands_topic),
        (&mut settings.topics.carrier_join, &topics.carrier_join_topic),
    ];
    for ((slot, value), (arg_id, setting)) in topic_values.into_iter().zip(TOPIC_ARGS) {
        overlay.apply_arg(slot, value, setting, arg_id);
    }
    overlay.apply_arg(&mut settings.topics.prefix, &topics.topic_prefix, "topics.prefix", "topic_prefix");
    if let Some(worker) = worker {
        overlay.apply(&mut settings.group_id, &worker.group_id, "group_id");
        overlay.apply(&mut settings.instance_id, &worker.instance_id, "instance_id");
        overlay.apply(&mut settings.group_protocol, &worker.group_protocol, "group_protocol");
        overlay.apply(&mut settings.guarantee, &worker.guarantee, "guarantee");
        overlay.apply(&mut settings.pipelines, &worker.pipelines, "pipelines");
        overlay.apply(&mut settings.output_format, &worker.output_format, "output_format");
        overlay.apply(&mut settings.max_record_bytes, &worker.max_record_bytes, "max_record_bytes");
        overlay.apply(&mut settings.batch_max_records, &worker.batch_max_records, "batch_max_records");
        overlay.apply(&mut settings.batch_max_wait_ms, &worker.batch_max_wait_ms, "batch_max_wait_ms");
        overlay.apply(&mut settings.retention_hours, &worker.retention_hours, "retention_hours");
        overlay.apply(
            &mut settings.unmatched_receipt_wait_ms,
            &worker.unmatched_receipt_wait_ms,
            "unmatched_receipt_wait_ms",
        );
        overlay.apply(
            &mut settings.campaign_stage_partitions,
            &worker.campaign_stage_partitions,
            "campaign_stage_partitions",
        );
        overlay.apply(&mut settings.replication_factor, &worker.replication_factor, "replication_factor");
        overlay.apply(&mut settings.http_addr, &worker.http_addr, "http_addr");
        overlay.apply(&mut settings.shutdown_timeout_ms, &worker.shutdown_timeout_ms, "shutdown_timeout_ms");
        // New settings of the worker's flags: one `overlay.apply` line each.

        // Receipt states layer per state, like the Kafka properties below.
        let origin = sources.origin("receipt_states").unwrap_or_else(|| Origin::Flag("--receipt-state".to_owned()));
        for pair in &worker.receipt_states {
            let Some((state, outcome)) = pair.split_once('=') else {
                bail!(
                    "invalid setting receipt_states{}: {pair:?} is not STAT=OUTCOME; write it as e.g. NOROUTE=undelivered",
                    origin.in_message()
                );
            };
            let state = state.trim().to_owned();
            settings.receipt_states.retain(|known, _| !known.eq_ignore_ascii_case(&state));
            origins.insert(format!("receipt_states.{state}"), origin.clone());
            settings.receipt_states.insert(state, outcome.trim().to_owned());
        }
    }

    for (name, value) in env {
        let Some(property) = name.strip_prefix(KAFKA_PROPERTY_ENV_PREFIX) else { continue };
        let key = property.to_ascii_lowercase().replace('_', ".");
        origins.insert(format!("kafka.{key}"), Origin::Env(name.clone()));
        settings.kafka.insert(key, value);
    }
    for pair in &common.kafka_properties {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid setting --kafka-property {pair:?}: write it as KEY=VALUE, e.g. security.protocol=SSL");
        };
        let key = key.trim().to_owned();
        origins.insert(format!("kafka.{key}"), Origin::Flag("--kafka-property".to_owned()));
        settings.kafka.insert(key, value.to_owned());
    }

    let resolved = Resolved { settings, origins };
    resolved.check()?;
    Ok(resolved)
}

/// Lays the values of flags and their environment variables over the file's.
struct Overlay<'a> {
    sources: &'a ArgSources<'a>,
    origins: &'a mut BTreeMap<String, Origin>,
}

impl Overlay<'_> {
    /// Replaces `slot` with `value` when the flag of the same name as the
    /// setting, or its variable, set it, and records where it came from.
    fn apply<T: Clone>(&mut self, slot: &mut Option<T>, value: &Option<T>, setting: &str) {
        self.apply_arg(slot, value, setting, setting);
    }

    /// Replaces `slot` with `value` when the flag with argument id `arg_id`,
    /// or its variable, set it, and records where it came from.
    fn apply_arg<T: Clone>(&mut self, slot: &mut Option<T>, value: &Option<T>, setting: &str, arg_id: &str) {
        let Some(value) = value else { return };
        *slot = Some(value.clone());
        let origin =
            self.sources.origin(arg_id).unwrap_or_else(|| Origin::Flag(format!("--{}", arg_id.replace('_', "-"))));
        self.origins.insert(setting.to_owned(), origin);
    }
}

impl Resolved {
    /// Returns where a setting's value comes from.
    pub fn origin(&self, setting: &str) -> Origin {
        self.origins.get(setting).cloned().unwrap_or(Origin::Default)
    }

    pub fn log_format(&self) -> LogFormat {
        self.settings.log_format.unwrap_or(LogFormat::Text)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.shutdown_timeout_ms.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_MS))
    }

    /// Builds an error that names the setting and where its value came from.
    pub fn invalid(&self, setting: &str, problem: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("invalid setting {setting}{}: {problem}", self.origin(setting).in_message())
    }

    /// Checks the settings that `WorkerConfig::validate` does not know.
    fn check(&self) -> anyhow::Result<()> {
        if self.settings.shutdown_timeout_ms == Some(0) {
            return Err(self.invalid("shutdown_timeout_ms", "is 0; set a positive time in milliseconds, e.g. 30000"));
        }
        if let Some(prefix) = &self.settings.topics.prefix {
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if !prefix.chars().all(legal) {
                let problem = format!("{prefix:?} has characters Kafka does not allow in a topic name; use a-z, A-Z, 0-9, '.', '_' and '-'");
                return Err(self.invalid("topics.prefix", problem));
            }
        }
        for key in self.settings.kafka.keys() {
            let setting = format!("kafka.{key}");
            if key.is_empty() {
                return Err(self.invalid(&setting, "the property name is empty"));
            }
            let replacement = match key.as_str() {
                "bootstrap.servers" => "bootstrap_servers",
                "group.id" => "group_id",
                _ => continue,
            };
            return Err(
                self.invalid(&setting, format!("set {replacement} instead, which smsfold passes to its clients"))
            );
        }
        Ok(())
    }

    /// Builds the receipt state table: the defaults with the configured
    /// states. An invalid state or outcome names its setting and source.
    fn receipt_states(&self) -> anyhow::Result<StateTable> {
        let mut table = StateTable::new();
        let mut seen: Vec<&str> = Vec::new();
        for (state, outcome) in &self.settings.receipt_states {
            let setting = format!("receipt_states.{state}");
            if let Some(other) = seen.iter().find(|other| other.eq_ignore_ascii_case(state)) {
                let problem = format!("names the state of receipt_states.{other} again; states ignore case, so keep one");
                return Err(self.invalid(&setting, problem));
            }
            seen.push(state);
            let parsed = outcome.parse().map_err(|error| self.invalid(&setting, format!("{outcome:?} is {error}")))?;
            table.insert(state, parsed).map_err(|error| self.invalid(&setting, error))?;
        }
        Ok(table)
    }

    /// Builds the worker's configuration and checks it, naming the first
    /// invalid setting and its source.
    pub fn worker_config(&self) -> anyhow::Result<WorkerConfig> {
        let settings = &self.settings;
        let Some(bootstrap_servers) = settings.bootstrap_servers.clone() else {
            bail!(
                "missing setting bootstrap_servers: set --bootstrap-servers, SMSFOLD_BOOTSTRAP_SERVERS or \
                 bootstrap_servers in the configuration file to host:port of a Kafka broker"
            );
        };
        let mut config = WorkerConfig::new(bootstrap_servers);
        set(&mut config.group_id, &settings.group_id);
        set(&mut config.instance_id, &settings.instance_id);
        set(&mut config.group_protocol, &settings.group_protocol.map(worker_group_protocol));
        set(&mut config.guarantee, &settings.guarantee.map(worker_guarantee));
        set(&mut config.pipelines, &settings.pipelines);
        set(&mut config.output_format, &settings.output_format.map(worker_format));
        set(&mut config.max_record_bytes, &settings.max_record_bytes);
        set(&mut config.batch_max_records, &settings.batch_max_records);
        set(&mut config.batch_max_wait, &settings.batch_max_wait_ms.map(Duration::from_millis));
        set(&mut config.retention, &settings.retention_hours.map(hours));
        set(&mut config.unmatched_receipt_wait, &settings.unmatched_receipt_wait_ms.map(Duration::from_millis));
        config.receipt_states = self.receipt_states()?;
        if settings.campaign_stage_partitions.is_some() {
            config.campaign_stage_partitions = settings.campaign_stage_partitions;
        }
        set(&mut config.replication_factor, &settings.replication_factor);
        config.http_addr = Some(settings.http_addr.unwrap_or(DEFAULT_HTTP_ADDR));
        let topics = &settings.topics;
        if let Some(prefix) = &topics.prefix {
            config.topics = Topics::with_prefix(prefix);
        }
        set(&mut config.topics.message_events, &topics.message_events);
        set(&mut config.topics.campaign_events, &topics.campaign_events);
        set(&mut config.topics.message_changes, &topics.message_changes);
        set(&mut config.topics.campaign_changes, &topics.campaign_changes);
        set(&mut config.topics.dead_letter, &topics.dead_letter);
        set(&mut config.topics.campaign_stage, &topics.campaign_stage);
        set(&mut config.topics.message_commands, &topics.message_commands);
        set(&mut config.topics.carrier_join, &topics.carrier_join);
        config.kafka_properties = settings.kafka.clone();

        // ----- New WorkerConfig fields -------------------------------------
        // Wire each new field with one line here, leaving the default of
        // `WorkerConfig::new` when the setting is not given, as
        // `set(&mut config.instance_id, &settings.instance_id)` above does.
        // The setting itself needs a field in `FileSettings` (its file key),
        // one in `WorkerArgs` (flag and SMSFOLD_* variable), an
        // `overlay.apply` line in `resolve` and a line in `rows`.
        // --------------------------------------------------------------------

        config.validate().map_err(|error| self.invalid(error.setting, &error.problem))?;
        Ok(config)
    }

    /// Lists every setting with its effective value and source, secrets
    /// shown as `***`, in the order of docs/configuration.md.
    pub fn rows(&self, config: &WorkerConfig) -> Vec<Row> {
        let mut rows = Vec::new();
        // A topic named by the prefix comes from where the prefix does.
        let prefix_origin = self.settings.topics.prefix.as_ref().map(|_| self.origin("topics.prefix"));
        let mut row = |key: &str, value: Option<toml::Value>| {
            let origin = match (self.origin(key), &prefix_origin) {
                (Origin::Default, Some(prefix)) if key.starts_with("topics.") => prefix.clone(),
                (origin, _) => origin,
            };
            rows.push(Row { key: key.to_owned(), value: value.map(|v| v.to_string()), origin });
        };
        row("bootstrap_servers", Some(text(&config.bootstrap_servers)));
        row("group_id", Some(text(&config.group_id)));
        row("instance_id", Some(text(&config.instance_id)));
        row("group_protocol", Some(text(group_protocol_name(config.group_protocol))));
        row("guarantee", Some(text(guarantee_name(config.guarantee))));
        row("pipelines", Some(integer(config.pipelines as u128)));
        row("output_format", Some(text(format_name(config.output_format))));
        row("max_record_bytes", Some(integer(config.max_record_bytes as u128)));
        row("batch_max_records", Some(integer(config.batch_max_records as u128)));
        row("batch_max_wait_ms", Some(integer(config.batch_max_wait.as_millis())));
        row("retention_hours", Some(integer(u128::from(config.retention.as_secs() / 3600))));
        row("unmatched_receipt_wait_ms", Some(integer(config.unmatched_receipt_wait.as_millis())));
        row("campaign_stage_partitions", config.campaign_stage_partitions.map(|n| integer(n as u128)));
        row("replication_factor", Some(integer(config.replication_factor as u128)));
        row("http_addr", config.http_addr.map(|addr| text(&addr.to_string())));
        row("shutdown_timeout_ms", Some(integer(self.shutdown_timeout().as_millis())));
        row("log_format", Some(text(log_format_name(self.log_format()))));
        // New WorkerConfig fields: one `row(...)` line each.
        row("topics.prefix", self.settings.topics.prefix.as_deref().map(text));
        for (setting, topic) in config.topics.named() {
            row(setting, Some(text(topic)));
        }
        for (state, outcome) in &self.settings.receipt_states {
            row(&format!("receipt_states.{state}"), Some(text(outcome)));
        }
        for (key, value) in &config.kafka_properties {
            let displayed = if is_secret(key) { "***" } else { value.as_str() };
            row(&format!("kafka.{key}"), Some(text(displayed)));
        }
        rows
    }
}

/// Splits a client configuration error into the setting it names
/// (`kafka.KEY`) and the problem, with the value shown as `***` when the
/// property is a secret. Returns `None` for other errors.
///
/// rdkafka's own message ends with the value, secrets included.
pub fn config_error(error: &KafkaError) -> Option<(String, String)> {
    let KafkaError::ClientConfig(_, description, key, value) = error else { return None };
    let problem = if is_secret(key) {
        let description =
            if value.is_empty() { description.clone() } else { description.replace(value.as_str(), "***") };
        format!("{description} (value ***)")
    } else {
        format!("{description} (value {value:?})")
    };
    Some((format!("kafka.{key}"), problem))
}

/// Replaces a default with the setting's value, if it has one.
fn set<T: Clone>(field: &mut T, value: &Option<T>) {
    if let Some(value) = value {
        *field = value.clone();
    }
}

fn hours(hours: u64) -> Duration {
    Duration::from_secs(hours.saturating_mul(3600))
}

fn worker_format(format: OutputFormat) -> Format {
    match format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Protobuf => Format::Protobuf,
    }
}

fn worker_group_protocol(protocol: GroupProtocolArg) -> GroupProtocol {
    match protocol {
        GroupProtocolArg::Consumer => GroupProtocol::Consumer,
        GroupProtocolArg::Classic => GroupProtocol::Classic,
    }
}

fn group_protocol_name(protocol: GroupProtocol) -> &'static str {
    match protocol {
        GroupProtocol::Consumer => "consumer",
        GroupProtocol::Classic => "classic",
    }
}

fn worker_guarantee(guarantee: GuaranteeArg) -> Guarantee {
    match guarantee {
        GuaranteeArg::ExactlyOnce => Guarantee::ExactlyOnce,
        GuaranteeArg::AtLeastOnce => Guarantee::AtLeastOnce,
    }
}

fn guarantee_name(guarantee: Guarantee) -> &'static str {
    match guarantee {
        Guarantee::ExactlyOnce => "exactly-once",
        Guarantee::AtLeastOnce => "at-least-once",
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Protobuf => "protobuf",
    }
}

fn log_format_name(format: LogFormat) -> &'static str {
    match format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    }
}

fn text(value: &str) -> toml::Value {
    toml::Value::String(value.to_owned())
}

/// Builds a TOML integer; the values here are far below `i64::MAX`.
fn integer(value: u128) -> toml::Value {
    toml::Value::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Returns true for librdkafka properties whose values must not be shown:
/// those whose name contains `password`, `secret`, `sasl.jaas`, `ssl.key` or
/// `token`, in any case.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "sasl.jaas", "ssl.key", "token"].iter().any(|word| key.contains(word))
}

/// One setting as `smsfold config` and the start-up log show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The setting's name, as in the configuration file.
    pub key: String,
    /// The value as a TOML literal; `None` when the setting is not set.
    pub value: Option<String>,
    pub origin: Origin,
}

/// Renders rows as a configuration file, each value followed by its source.
/// Unset settings are comments, and secrets are `***`.
pub fn render_toml(rows: &[Row]) -> String {
    let mut top = Vec::new();
    let mut sections: BTreeMap<&str, Vec<(String, &Row)>> = BTreeMap::new();
    for row in rows {
        match row.key.split_once('.') {
            Some((table, key)) => sections.entry(table).or_default().push((toml_key(key), row)),
            None => top.push((row.key.clone(), row)),
        }
    }

    let mut out = String::from("# The effective configuration of `smsfold run`; each value's source follows it.\n");
    write_lines(&mut out, &top);
    for table in ["topics", "receipt_states", "kafka"] {
        if let Some(lines) = sections.get(table) {
            out.push_str(&format!("\n[{table}]\n"));
            write_lines(&mut out, lines);
        }
    }
    out
}

fn write_lines(out: &mut String, lines: &[(String, &Row)]) {
    let assignments: Vec<String> = lines
        .iter()
        .map(|(key, row)| match &row.value {
            Some(value) => format!("{key} = {value}"),
            None => format!("# {key} is not set"),
        })
        .collect();
    let width = assignments.iter().map(String::len).max().unwrap_or(0);
    for (assignment, (_, row)) in assignments.iter().zip(lines) {
        out.push_str(&format!("{assignment:<width$}  # {}\n", row.origin));
    }
}

/// Quotes a TOML key unless it is a bare key.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        toml::Value::String(key.to_owned()).to_string()
    }
}

/// Renders rows on one line as `key=value` pairs, for the start-up log.
pub fn render_line(rows: &[Row]) -> String {
    let pairs: Vec<String> =
        rows.iter().filter_map(|row| row.value.as_ref().map(|value| format!("{}={value}", row.key))).collect();
    pairs.join(" ")
}

#[cfg(test)]
mod tests;
