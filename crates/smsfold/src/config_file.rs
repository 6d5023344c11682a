//! The TOML configuration file: its keys and how it is read.
//!
//! Every key is optional. Unknown keys are rejected, so that a misspelt
//! setting stops start-up instead of being ignored. docs/configuration.md
//! lists the keys, and examples/smsfold.toml sets each of them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{anyhow, Context};
use serde::Deserialize;

use crate::cli::{GroupProtocolArg, GuaranteeArg, LogFormat, OutputFormat};

/// The settings a configuration file can hold; `None` where it leaves one out.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub bootstrap_servers: Option<String>,
    pub group_id: Option<String>,
    pub instance_id: Option<String>,
    pub group_protocol: Option<GroupProtocolArg>,
    pub guarantee: Option<GuaranteeArg>,
    pub pipelines: Option<usize>,
    pub output_format: Option<OutputFormat>,
    pub max_record_bytes: Option<usize>,
    pub batch_max_records: Option<usize>,
    pub batch_max_wait_ms: Option<u64>,
    pub retention_hours: Option<u64>,
    pub unmatched_receipt_wait_ms: Option<u64>,
    pub campaign_stage_partitions: Option<i32>,
    pub replication_factor: Option<i32>,
    pub http_addr: Option<SocketAddr>,
    pub shutdown_timeout_ms: Option<u64>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub topics: TopicSettings,
    /// Outcomes of SMPP receipt states, by state: the `[receipt_states]` table.
    #[serde(default)]
    pub receipt_states: BTreeMap<String, String>,
    /// librdkafka properties, passed to every Kafka client as they are.
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
}

/// The `[topics]` table.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    pub message_events: Option<String>,
    pub campaign_events: Option<String>,
    pub message_changes: Option<String>,
    pub campaign_changes: Option<String>,
    pub dead_letter: Option<String>,
    pub campaign_stage: Option<String>,
    pub message_commands: Option<String>,
    pub carrier_join: Option<String>,
    /// Put before the default name of every topic not named here.
    pub prefix: Option<String>,
}

/// A configuration file that was read and checked.
#[derive(Debug)]
pub struct LoadedFile {
    pub settings: FileSettings,
    /// The settings the file sets, as `group_id`, `topics.dead_letter` or
    /// `kafka.sasl.password`.
    pub keys: Vec<String>,
}

/// Reads and checks the configuration file at `path`.
pub fn load(path: &Path) -> anyhow::Result<LoadedFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the configuration file {}", path.display()))?;
    let settings = parse(&text, path)?;
    // `parse` accepted the text, so it is a valid TOML table.
    let table: toml::Table = text.parse().unwrap_or_default();
    Ok(LoadedFile { settings, keys: keys(&table) })
}

/// Lists the settings in a table, naming those of [topics], [receipt_states]
/// and [kafka] with the table's name in front.
fn keys(table: &toml::Table) -> Vec<String> {
    let mut keys = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) => keys.extend(inner.keys().map(|inner_key| format!("{key}.{inner_key}"))),
            _ => keys.push(key.clone()),
        }
    }
    keys
}

/// Parses a configuration file's text; `path` only names the file in errors.
///
/// Errors name the file, the line and, where the value is wrong, the
/// setting: `invalid setting batch_max_wait_ms in /etc/smsfold.toml (line
/// 3): invalid type: string "fast", expected u64`.
pub fn parse(text: &str, path: &Path) -> anyhow::Result<FileSettings> {
    let file = path.display();
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        anyhow!("invalid configuration file {file}{}: {}", at_line(text, &error), error.message().trim())
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let setting = error.path().to_string();
        let error = error.into_inner();
        let message = error.message().trim();
        let line = at_line(text, &error);
        if let Some(key) = unknown_key(message) {
            let key = qualified(&setting, &key);
            let known = message.split_once(", expected ").map_or(String::new(), |(_, known)| {
                format!("; the keys here are {}", known.trim_start_matches("one of ").replace('`', ""))
            });
            anyhow!("invalid configuration file {file}{line}: unknown key {key}{known} (see docs/configuration.md)")
        } else {
            anyhow!("invalid setting {setting} in {file}{line}: {}", plain_types(message))
        }
    })
}

/// Replaces Rust's integer type names in serde's messages with words.
fn plain_types(message: &str) -> String {
    message
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected i32", "expected an integer")
}

/// Returns " (line N)" for an error with a position.
fn at_line(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

/// Returns the key of serde's "unknown field `key`, expected ..." message.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// Joins the path of the table that contains an unknown key with the key,
/// unless the path already ends with it.
fn qualified(path: &str, key: &str) -> String {
    if path == key || path.ends_with(&format!(".{key}")) {
        path.to_owned()
    } else if path.is_empty() || path == "." {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_error(text: &str) -> String {
        parse(text, Path::new("/etc/smsfold.toml")).unwrap_err().to_string()
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
            bootstrap_servers = "127.0.0.1:19092"
            group_id = "billing"
            instance_id = "billing-1"
            group_protocol = "classic"
            guarantee = "at-least-once"
            output_format = "protobuf"
            max_record_bytes = 2048
            batch_max_records = 10
            batch_max_wait_ms = 20
            retention_hours = 24
            unmatched_receipt_wait_ms = 60000
            campaign_stage_partitions = 3
            replication_factor = 2
            http_addr = "127.0.0.1:9000"
            shutdown_timeout_ms = 5000
            log_format = "json"

            [topics]
            message_events = "a"
            campaign_events = "b"
            message_changes = "c"
            campaign_changes = "d"
            dead_letter = "e"
            campaign_stage = "f"
            message_commands = "g"
            carrier_join = "h"

            [receipt_states]
            NOROUTE = "undelivered"

            [kafka]
            "security.protocol" = "SASL_SSL"
        "#;
        let settings = parse(text, Path::new("test.toml")).unwrap();
        assert_eq!(settings.group_id.as_deref(), Some("billing"));
        assert_eq!(settings.instance_id.as_deref(), Some("billing-1"));
        assert_eq!(settings.group_protocol, Some(GroupProtocolArg::Classic));
        assert_eq!(settings.guarantee, Some(GuaranteeArg::AtLeastOnce));
        assert_eq!(settings.output_format, Some(OutputFormat::Protobuf));
        assert_eq!(settings.batch_max_wait_ms, Some(20));
        assert_eq!(settings.retention_hours, Some(24));
        assert_eq!(settings.campaign_stage_partitions, Some(3));
        assert_eq!(settings.http_addr, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(settings.log_format, Some(LogFormat::Json));
        assert_eq!(settings.topics.message_commands.as_deref(), Some("g"));
        assert_eq!(settings.topics.carrier_join.as_deref(), Some("h"));
        assert_eq!(settings.unmatched_receipt_wait_ms, Some(60_000));
        assert_eq!(settings.receipt_states["NOROUTE"], "undelivered");
        assert_eq!(settings.kafka["security.protocol"], "SASL_SSL");
    }

    #[test]
    fn keys_name_nested_settings() {
        let table: toml::Table =
            "group_id = \"g\"\n[topics]\ndead_letter = \"d\"\n[kafka]\n\"sasl.password\" = \"p\"\n".parse().unwrap();
        assert_eq!(keys(&table), ["group_id", "kafka.sasl.password", "topics.dead_letter"]);
    }

    #[test]
    fn empty_file_sets_nothing() {
        assert_eq!(parse("", Path::new("empty.toml")).unwrap(), FileSettings::default());
    }

    #[test]
    fn unknown_top_level_key_named() {
        let error = parse_error("group_id = \"x\"\nbatch_wait = 5\n");
        assert!(error.contains("unknown key batch_wait"), "{error}");
        assert!(error.contains("/etc/smsfold.toml (line 2)"), "{error}");
    }

    #[test]
    fn unknown_key_lists_known_keys() {
        let error = parse_error("[topics]\ndead_letters = \"x\"\n");
        assert!(error.contains("the keys here are message_events, campaign_events,"), "{error}");
    }

    #[test]
    fn negative_count_explained() {
        let error = parse_error("batch_max_records = -5\n");
        assert!(error.ends_with("invalid value: integer `-5`, expected a non-negative integer"), "{error}");
    }

    #[test]
    fn unknown_topic_key_named() {
        let error = parse_error("[topics]\ndead_letters = \"x\"\n");
        assert!(error.contains("unknown key topics.dead_letters"), "{error}");
    }

    #[test]
    fn wrong_type_names_setting() {
        let error = parse_error("batch_max_wait_ms = \"fast\"\n");
        assert!(error.starts_with("invalid setting batch_max_wait_ms in /etc/smsfold.toml (line 1)"), "{error}");
    }

    #[test]
    fn wrong_nested_type_names_setting() {
        let error = parse_error("[topics]\ndead_letter = 5\n");
        assert!(error.starts_with("invalid setting topics.dead_letter in /etc/smsfold.toml"), "{error}");
    }

    #[test]
    fn kafka_value_must_be_string() {
        let error = parse_error("[kafka]\n\"socket.timeout.ms\" = 5000\n");
        assert!(error.contains("invalid setting kafka.socket.timeout.ms"), "{error}");
    }

    #[test]
    fn unknown_enum_value_names_setting() {
        let error = parse_error("output_format = \"xml\"\n");
        assert!(error.starts_with("invalid setting output_format"), "{error}");
        assert!(error.contains("protobuf"), "{error}");
    }

    #[test]
    fn bad_address_names_setting() {
        let error = parse_error("http_addr = \"localhost\"\n");
        assert!(error.starts_with("invalid setting http_addr"), "{error}");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let error = parse_error("group_id = \"x\"\nbatch_max_records = \n");
        assert!(error.starts_with("invalid configuration file /etc/smsfold.toml (line 2)"), "{error}");
    }
}
