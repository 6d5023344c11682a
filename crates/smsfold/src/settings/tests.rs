use clap::{CommandFactory, FromArgMatches};

use smsfold_smpp::Outcome;

use super::*;
use crate::cli::{Cli, Command};

/// Resolves `smsfold config ARGS` with `env` as the extra environment.
fn resolve_config(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Resolved> {
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(["smsfold", "config"].iter().chain(args))?;
    let Command::Config(run) = Cli::from_arg_matches(&matches)?.command else { panic!("not the config command") };
    let (name, subcommand_matches) = matches.subcommand().unwrap();
    let subcommand = command.find_subcommand(name).unwrap();
    let sources = ArgSources { command: subcommand, matches: subcommand_matches };
    let env = env.iter().map(|(name, value)| (name.to_string(), value.to_string()));
    resolve(&run.common, Some(&run.worker), &sources, env)
}

fn config_file(text: &str) -> tempfile_path::TempPath {
    tempfile_path::TempPath::with(text)
}

/// A file under the system's temporary directory, removed when dropped.
mod tempfile_path {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    pub struct TempPath(pub PathBuf);

    impl TempPath {
        pub fn with(text: &str) -> Self {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let name =
                format!("smsfold-settings-{}-{}.toml", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, text).expect("write the test configuration file");
            TempPath(path)
        }

        pub fn arg(&self) -> &str {
            self.0.to_str().expect("a UTF-8 temporary path")
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn value(rows: &[Row], key: &str) -> Option<String> {
    rows.iter().find(|row| row.key == key).unwrap_or_else(|| panic!("no row {key}")).value.clone()
}

#[test]
fn flag_beats_file() {
    let file =
        config_file("bootstrap_servers = \"127.0.0.1:19092\"\ngroup_id = \"from-file\"\nbatch_max_records = 7\n");
    let resolved = resolve_config(&["--config", file.arg(), "--group-id", "from-flag"], &[]).unwrap();
    let config = resolved.worker_config().unwrap();

    assert_eq!(config.group_id, "from-flag");
    assert_eq!(config.batch_max_records, 7);
    assert_eq!(resolved.origin("group_id"), Origin::Flag("--group-id".to_owned()));
    assert_eq!(resolved.origin("batch_max_records"), Origin::File(file.0.clone()));
    assert_eq!(resolved.origin("batch_max_wait_ms"), Origin::Default);
}

#[test]
fn topic_flag_named_as_setting() {
    let resolved =
        resolve_config(&["--bootstrap-servers", "127.0.0.1:19092", "--dead-letter-topic", "dlq"], &[]).unwrap();
    let config = resolved.worker_config().unwrap();

    assert_eq!(config.topics.dead_letter, "dlq");
    assert_eq!(resolved.origin("topics.dead_letter"), Origin::Flag("--dead-letter-topic".to_owned()));
}

#[test]
fn topic_prefix_names_unset_topics() {
    let file = config_file("bootstrap_servers = \"127.0.0.1:19092\"\n[topics]\nprefix = \"stg-\"\n");
    let resolved = resolve_config(&["--config", file.arg(), "--dead-letter-topic", "dlq"], &[]).unwrap();
    let config = resolved.worker_config().unwrap();
    let rows = resolved.rows(&config);

    assert_eq!(config.topics.message_events, "stg-message-events");
    assert_eq!(config.topics.campaign_stage, "stg-smsfold-campaign-stage");
    assert_eq!(config.topics.dead_letter, "dlq");
    let origin = |key: &str| rows.iter().find(|row| row.key == key).map(|row| row.origin.clone());
    assert_eq!(origin("topics.message_events"), Some(Origin::File(file.0.clone())));
    assert_eq!(origin("topics.dead_letter"), Some(Origin::Flag("--dead-letter-topic".to_owned())));
}

#[test]
fn invalid_topic_prefix_named() {
    let error = resolve_config(&["--bootstrap-servers", "127.0.0.1:19092", "--topic-prefix", "a/b"], &[]).unwrap_err();

    assert!(error.to_string().starts_with("invalid setting topics.prefix (from --topic-prefix)"), "{error}");
    assert!(error.to_string().contains("\"a/b\""), "{error}");
}

#[test]
fn kafka_properties_layered_per_key() {
    let file = config_file(
        "bootstrap_servers = \"127.0.0.1:19092\"\n[kafka]\n\"security.protocol\" = \"SSL\"\n\"sasl.username\" = \"file\"\n\"client.id\" = \"file\"\n",
    );
    let env = [("SMSFOLD_KAFKA_PROPERTY_SASL_USERNAME", "env"), ("SMSFOLD_KAFKA_PROPERTY_CLIENT_ID", "env")];
    let resolved = resolve_config(&["--config", file.arg(), "--kafka-property", "client.id=flag"], &env).unwrap();
    let properties = &resolved.worker_config().unwrap().kafka_properties;

    assert_eq!(properties["security.protocol"], "SSL");
    assert_eq!(properties["sasl.username"], "env");
    assert_eq!(properties["client.id"], "flag");
    assert_eq!(resolved.origin("kafka.sasl.username"), Origin::Env("SMSFOLD_KAFKA_PROPERTY_SASL_USERNAME".to_owned()));
}

#[test]
fn receipt_states_layered_per_state() {
    let file = config_file(
        "bootstrap_servers = \"127.0.0.1:19092\"\n[receipt_states]\nNOROUTE = \"undelivered\"\nPENDING = \"unknown\"\n",
    );
    let args = ["--config", file.arg(), "--receipt-state", "pending=intermediate", "--receipt-state", "ACCEPTD=delivered"];
    let resolved = resolve_config(&args, &[]).unwrap();
    let table = resolved.worker_config().unwrap().receipt_states;

    assert_eq!(table.outcome_of_stat("NOROUTE"), Outcome::Undelivered);
    assert_eq!(table.outcome_of_stat("PENDING"), Outcome::Intermediate, "the flag replaces the file's state in any case");
    assert_eq!(table.outcome_of_stat("ACCEPTD"), Outcome::Delivered);
    assert_eq!(table.outcome_of_stat("DELIVRD"), Outcome::Delivered, "defaults stay");
    assert_eq!(resolved.origin("receipt_states.NOROUTE"), Origin::File(file.0.clone()));
    assert_eq!(resolved.origin("receipt_states.pending"), Origin::Flag("--receipt-state".to_owned()));
    let rows = resolved.rows(&resolved.worker_config().unwrap());
    assert_eq!(value(&rows, "receipt_states.NOROUTE").as_deref(), Some("\"undelivered\""));
}

#[test]
fn invalid_receipt_outcome_names_state() {
    let file = config_file("bootstrap_servers = \"127.0.0.1:19092\"\n[receipt_states]\nNOROUTE = \"failed\"\n");

    let error = resolve_config(&["--config", file.arg()], &[]).unwrap().worker_config().unwrap_err().to_string();

    let expected = format!("invalid setting receipt_states.NOROUTE in {}: \"failed\" is not one of", file.arg());
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn receipt_states_differing_in_case_rejected() {
    let file = config_file("bootstrap_servers = \"127.0.0.1:19092\"\n[receipt_states]\nNOROUTE = \"undelivered\"\nnoroute = \"unknown\"\n");

    let error = resolve_config(&["--config", file.arg()], &[]).unwrap().worker_config().unwrap_err().to_string();

    assert!(error.contains("states ignore case"), "{error}");
}

#[test]
fn receipt_state_without_equals_rejected() {
    let error = resolve_config(&["--receipt-state", "NOROUTE"], &[]).unwrap_err().to_string();

    assert!(error.starts_with("invalid setting receipt_states (from --receipt-state)"), "{error}");
}

#[test]
fn unmatched_receipt_wait_read() {
    let args = ["--bootstrap-servers", "127.0.0.1:19092", "--unmatched-receipt-wait-ms", "1500", "--carrier-join-topic", "cj"];
    let config = resolve_config(&args, &[]).unwrap().worker_config().unwrap();

    assert_eq!(config.unmatched_receipt_wait, Duration::from_millis(1500));
    assert_eq!(config.topics.carrier_join, "cj");
}

#[test]
fn zero_value_in_file_names_file() {
    let file = config_file("bootstrap_servers = \"127.0.0.1:19092\"\nbatch_max_wait_ms = 0\n");
    let error = resolve_config(&["--config", file.arg()], &[]).unwrap().worker_config().unwrap_err().to_string();

    let expected = format!("invalid setting batch_max_wait_ms in {}: is 0", file.arg());
    assert!(error.starts_with(&expected), "{error}");
}

#[test]
fn zero_value_flag_names_flag() {
    let error = resolve_config(&["--bootstrap-servers", "127.0.0.1:19092", "--batch-max-records", "0"], &[])
        .unwrap()
        .worker_config()
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("invalid setting batch_max_records (from --batch-max-records): is 0"), "{error}");
}

#[test]
fn missing_bootstrap_named() {
    let error = resolve_config(&[], &[]).unwrap().worker_config().unwrap_err().to_string();
    assert!(error.starts_with("missing setting bootstrap_servers"), "{error}");
}

#[test]
fn zero_shutdown_timeout_rejected() {
    let error = resolve_config(&["--shutdown-timeout-ms", "0"], &[]).unwrap_err().to_string();
    assert!(error.starts_with("invalid setting shutdown_timeout_ms (from --shutdown-timeout-ms)"), "{error}");
}

#[test]
fn bootstrap_property_rejected() {
    let error = resolve_config(&["--kafka-property", "bootstrap.servers=127.0.0.1:1"], &[]).unwrap_err().to_string();
    assert!(error.starts_with("invalid setting kafka.bootstrap.servers (from --kafka-property)"), "{error}");
    assert!(error.contains("set bootstrap_servers instead"), "{error}");
}

#[test]
fn property_without_equals_rejected() {
    let error = resolve_config(&["--kafka-property", "security.protocol"], &[]).unwrap_err().to_string();
    assert!(error.contains("write it as KEY=VALUE"), "{error}");
}

#[test]
fn secret_keys_recognized() {
    for key in [
        "sasl.password",
        "ssl.key.password",
        "sasl.jaas.config",
        "ssl.key.pem",
        "SASL.OAUTHBEARER.CLIENT.SECRET",
        "sasl.oauthbearer.token.endpoint.url",
    ] {
        assert!(is_secret(key), "{key} should be a secret");
    }
    for key in ["security.protocol", "sasl.username", "ssl.ca.location", "sasl.mechanisms"] {
        assert!(!is_secret(key), "{key} should not be a secret");
    }
}

#[test]
fn rows_redact_secrets() {
    let resolved = resolve_config(
        &[
            "--bootstrap-servers",
            "127.0.0.1:19092",
            "--kafka-property",
            "sasl.password=hunter2",
            "--kafka-property",
            "sasl.username=ops",
        ],
        &[],
    )
    .unwrap();
    let rows = resolved.rows(&resolved.worker_config().unwrap());

    assert_eq!(value(&rows, "kafka.sasl.password").as_deref(), Some("\"***\""));
    assert_eq!(value(&rows, "kafka.sasl.username").as_deref(), Some("\"ops\""));
    assert!(!render_line(&rows).contains("hunter2"));
    assert!(!render_toml(&rows).contains("hunter2"));
}

#[test]
fn rendered_toml_parses_back() {
    let resolved =
        resolve_config(&["--bootstrap-servers", "127.0.0.1:19092", "--kafka-property", "security.protocol=SSL"], &[])
            .unwrap();
    let rows = resolved.rows(&resolved.worker_config().unwrap());
    let text = render_toml(&rows);

    let parsed = config_file::parse(&text, std::path::Path::new("rendered.toml")).unwrap();
    assert_eq!(parsed.bootstrap_servers.as_deref(), Some("127.0.0.1:19092"));
    assert_eq!(parsed.topics.dead_letter.as_deref(), Some("smsfold-dead-letter"));
    assert_eq!(parsed.kafka["security.protocol"], "SSL");
    assert_eq!(parsed.campaign_stage_partitions, None);
}

/// The help text states each default as `[default: X]`; the defaults
/// themselves live in `WorkerConfig::new` and this module.
#[test]
fn help_defaults_match_effective_defaults() {
    let resolved = resolve_config(&["--bootstrap-servers", "127.0.0.1:19092"], &[]).unwrap();
    let rows = resolved.rows(&resolved.worker_config().unwrap());
    let mut command = Cli::command();
    command.build();
    let run = command.find_subcommand("config").unwrap();

    let mut checked = 0;
    for arg in run.get_arguments() {
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let Some(start) = help.find("[default: ") else { continue };
        let stated = &help[start + "[default: ".len()..help[start..].find(']').unwrap() + start];
        let id = arg.get_id().as_str();
        let setting = TOPIC_ARGS.iter().find(|(arg_id, _)| *arg_id == id).map_or(id, |(_, setting)| setting);
        let effective = value(&rows, setting);
        let effective = effective.as_deref().map(|v| v.trim_matches('"'));
        if setting == "campaign_stage_partitions" {
            assert_eq!(effective, None, "{setting}");
        } else if setting == "instance_id" {
            assert_eq!(stated, "the host name");
        } else {
            assert_eq!(effective, Some(stated), "{setting}: the help says {stated}");
        }
        checked += 1;
    }
    assert_eq!(checked, 24, "settings with a stated default");
}

#[test]
fn example_file_sets_every_setting() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/smsfold.toml");
    let file = config_file::load(&path).unwrap();
    let resolved = resolve_config(&["--bootstrap-servers", "127.0.0.1:19092"], &[]).unwrap();
    let rows = resolved.rows(&resolved.worker_config().unwrap());

    for row in rows.iter().filter(|row| row.value.is_some()) {
        assert!(file.keys.contains(&row.key), "examples/smsfold.toml does not set {}", row.key);
    }
}

#[test]
fn config_error_hides_secret_value() {
    use rdkafka::types::RDKafkaConfRes;

    let error = KafkaError::ClientConfig(
        RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
        "Invalid value \"s3cret\" for configuration property \"sasl.password\"".to_owned(),
        "sasl.password".to_owned(),
        "s3cret".to_owned(),
    );
    let (setting, problem) = config_error(&error).unwrap();

    assert_eq!(setting, "kafka.sasl.password");
    assert!(!problem.contains("s3cret"), "{problem}");
    assert!(problem.contains("Invalid value \"***\""), "{problem}");
}

#[test]
fn config_error_shows_plain_value() {
    use rdkafka::types::RDKafkaConfRes;

    let error = KafkaError::ClientConfig(
        RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
        "Invalid value for configuration property \"socket.timeout.ms\"".to_owned(),
        "socket.timeout.ms".to_owned(),
        "abc".to_owned(),
    );
    let (setting, problem) = config_error(&error).unwrap();

    assert_eq!(setting, "kafka.socket.timeout.ms");
    assert!(problem.ends_with("(value \"abc\")"), "{problem}");
}
