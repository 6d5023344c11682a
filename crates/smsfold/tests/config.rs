//! The configuration as the `smsfold` binary reads it: precedence of flags,
//! environment variables and the file, rejected files and values, secrets
//! in the start-up log, and `--version`.

mod common;

use common::{smsfold, texts, TempFile, TestTopics};

/// Returns the line of `smsfold config` output that sets `key`.
fn line_of<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no line sets {key} in:\n{stdout}"))
}

#[test]
fn precedence_is_flag_env_file_default() {
    let file = TempFile::new(
        "precedence.toml",
        "bootstrap_servers = \"127.0.0.1:19092\"\n\
         group_id = \"file-group\"\n\
         batch_max_records = 11\n\
         batch_max_wait_ms = 22\n\
         [topics]\n\
         dead_letter = \"file-dlq\"\n",
    );
    let output = smsfold()
        .args(["config", "--config", file.arg(), "--group-id", "flag-group"])
        .env("SMSFOLD_GROUP_ID", "env-group")
        .env("SMSFOLD_BATCH_MAX_RECORDS", "33")
        .output()
        .expect("smsfold runs");
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");

    let group = line_of(&stdout, "group_id");
    assert!(group.contains("\"flag-group\""), "{group}");
    assert!(group.ends_with("# --group-id"), "{group}");
    let records = line_of(&stdout, "batch_max_records");
    assert!(records.contains("= 33"), "{records}");
    assert!(records.ends_with("# SMSFOLD_BATCH_MAX_RECORDS"), "{records}");
    let wait = line_of(&stdout, "batch_max_wait_ms");
    assert!(wait.contains("= 22"), "{wait}");
    assert!(wait.ends_with(&format!("# {}", file.arg())), "{wait}");
    let dead_letter = line_of(&stdout, "dead_letter");
    assert!(dead_letter.contains("\"file-dlq\""), "{dead_letter}");
    assert!(dead_letter.ends_with(&format!("# {}", file.arg())), "{dead_letter}");
    let max_bytes = line_of(&stdout, "max_record_bytes");
    assert!(max_bytes.contains("= 1048576"), "{max_bytes}");
    assert!(max_bytes.ends_with("# default"), "{max_bytes}");
}

#[test]
fn config_path_read_from_environment() {
    let file = TempFile::new("env-path.toml", "bootstrap_servers = \"127.0.0.1:19092\"\ngroup_id = \"from-file\"\n");
    let output = smsfold().arg("config").env("SMSFOLD_CONFIG", file.arg()).output().expect("smsfold runs");
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");

    assert!(line_of(&stdout, "group_id").contains("\"from-file\""), "{stdout}");
}

#[test]
fn unknown_key_rejected_with_file() {
    let cases = [
        ("bootstrap_servers = \"127.0.0.1:19092\"\nbatch_max_wait = 5\n", "unknown key batch_max_wait"),
        (
            "bootstrap_servers = \"127.0.0.1:19092\"\n[topics]\ndead_letters = \"x\"\n",
            "unknown key topics.dead_letters",
        ),
        ("bootstrap_servers = \"127.0.0.1:19092\"\n[tls]\nca = \"x\"\n", "unknown key tls"),
    ];
    for (text, expected) in cases {
        let file = TempFile::new("unknown.toml", text);
        let output = smsfold().args(["run", "--config", file.arg()]).output().expect("smsfold runs");
        let (_, stderr) = texts(&output);

        assert!(!output.status.success(), "{expected}: exited successfully");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
        assert!(stderr.contains(file.arg()), "{expected}: the file is not named: {stderr}");
    }
}

#[test]
fn invalid_file_value_names_setting() {
    let cases = [
        ("batch_max_wait_ms = 0\n", "invalid setting batch_max_wait_ms in {file}: is 0"),
        ("batch_max_records = \"many\"\n", "invalid setting batch_max_records in {file} (line 2): invalid type"),
        ("output_format = \"xml\"\n", "invalid setting output_format in {file} (line 2): unknown variant `xml`"),
        ("http_addr = \"localhost\"\n", "invalid setting http_addr in {file} (line 2)"),
        ("shutdown_timeout_ms = 0\n", "invalid setting shutdown_timeout_ms in {file}: is 0"),
        (
            "[topics]\ndead_letter = \"bad/name\"\n",
            "invalid setting topics.dead_letter in {file}: \"bad/name\" is not a valid Kafka topic name",
        ),
        ("[kafka]\n\"group.id\" = \"other\"\n", "invalid setting kafka.group.id in {file}: set group_id instead"),
        ("group_id = \"x\"\nbatch_max_records = \n", "invalid configuration file {file} (line 3)"),
    ];
    for (setting, expected) in cases {
        let file = TempFile::new("invalid.toml", &format!("bootstrap_servers = \"127.0.0.1:19092\"\n{setting}"));
        let expected = expected.replace("{file}", file.arg());
        let output = smsfold().args(["run", "--config", file.arg()]).output().expect("smsfold runs");
        let (_, stderr) = texts(&output);

        assert!(!output.status.success(), "{setting}: exited successfully");
        assert!(stderr.contains(&expected), "{setting}: expected {expected:?} in {stderr}");
    }
}

#[test]
fn invalid_env_value_names_variable() {
    let output = smsfold()
        .args(["run", "--bootstrap-servers", "127.0.0.1:19092"])
        .env("SMSFOLD_BATCH_MAX_WAIT_MS", "0")
        .output()
        .expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success());
    assert!(stderr.contains("invalid setting batch_max_wait_ms (from SMSFOLD_BATCH_MAX_WAIT_MS): is 0"), "{stderr}");
}

#[test]
fn unparsable_env_value_names_variable() {
    for (variable, value, expected) in [
        ("SMSFOLD_PIPELINES", "-1", "invalid setting pipelines (from SMSFOLD_PIPELINES): \"-1\" is not valid: invalid digit"),
        ("SMSFOLD_BATCH_MAX_RECORDS", "abc", "invalid setting batch_max_records (from SMSFOLD_BATCH_MAX_RECORDS): \"abc\""),
        ("SMSFOLD_GUARANTEE", "twice", "invalid setting guarantee (from SMSFOLD_GUARANTEE): \"twice\" is not valid: expected one of"),
    ] {
        let output = smsfold()
            .args(["run", "--bootstrap-servers", "127.0.0.1:19092"])
            .env(variable, value)
            .output()
            .expect("smsfold runs");
        let (_, stderr) = texts(&output);

        assert!(!output.status.success(), "{variable}={value}: exited successfully");
        assert!(stderr.contains(expected), "{variable}={value}: expected {expected:?} in {stderr}");
        assert!(stderr.contains(&format!("set {variable} to a value that `smsfold run --help` describes")), "{stderr}");
    }
}

#[test]
fn unparsable_flag_value_names_flag() {
    let output = smsfold()
        .args(["run", "--bootstrap-servers", "127.0.0.1:19092", "--pipelines", "abc"])
        .env("SMSFOLD_PIPELINES", "abc")
        .output()
        .expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success());
    assert!(stderr.contains("invalid value 'abc' for '--pipelines <COUNT>'"), "{stderr}");
}

#[test]
fn missing_bootstrap_named() {
    let output = smsfold().arg("run").output().expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success());
    assert!(stderr.contains("missing setting bootstrap_servers"), "{stderr}");
}

#[test]
fn missing_file_named() {
    let output = smsfold().args(["run", "--config", "/nonexistent/smsfold.toml"]).output().expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success());
    assert!(stderr.contains("could not read the configuration file /nonexistent/smsfold.toml"), "{stderr}");
}

#[test]
fn config_command_redacts_secrets() {
    let file = TempFile::new(
        "secrets.toml",
        "bootstrap_servers = \"127.0.0.1:19092\"\n[kafka]\n\"sasl.password\" = \"file-secret\"\n\"sasl.username\" = \"ops\"\n",
    );
    let output = smsfold()
        .args(["config", "--config", file.arg(), "--kafka-property", "sasl.jaas.config=flag-secret"])
        .env("SMSFOLD_KAFKA_PROPERTY_SSL_KEY_PASSWORD", "env-secret")
        .output()
        .expect("smsfold runs");
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");

    for secret in ["file-secret", "flag-secret", "env-secret"] {
        assert!(!stdout.contains(secret), "{secret} is shown:\n{stdout}");
    }
    assert!(line_of(&stdout, "\"sasl.password\"").contains("\"***\""), "{stdout}");
    assert!(line_of(&stdout, "\"sasl.jaas.config\"").contains("\"***\""), "{stdout}");
    assert!(
        line_of(&stdout, "\"ssl.key.password\"").ends_with("# SMSFOLD_KAFKA_PROPERTY_SSL_KEY_PASSWORD"),
        "{stdout}"
    );
    assert!(line_of(&stdout, "\"sasl.username\"").contains("\"ops\""), "{stdout}");
}

/// `run` logs its effective configuration before it connects. librdkafka
/// builds without OAuth support reject the OAuth property, and the error
/// must not show its value either.
#[test]
fn start_log_redacts_secrets() {
    let topics = TestTopics::new("start-log");
    let file = TempFile::new(
        "start-log.toml",
        &format!(
            "bootstrap_servers = \"{}\"\nhttp_addr = \"127.0.0.1:0\"\n{}\n[kafka]\n\"sasl.password\" = \"file-secret-1\"\n\"client.id\" = \"visible-client\"\n",
            common::bootstrap(),
            topics.toml_table()
        ),
    );
    let output = smsfold()
        .args(["run", "--config", file.arg(), "--kafka-property", "ssl.key.password=flag-secret-2"])
        .env("SMSFOLD_KAFKA_PROPERTY_SASL_OAUTHBEARER_CLIENT_SECRET", "env-secret-3")
        .output()
        .expect("smsfold runs");
    let (_, stderr) = texts(&output);

    let log =
        stderr.lines().find(|line| line.contains("effective configuration")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(log.contains("kafka.sasl.password=\"***\""), "{log}");
    assert!(log.contains("kafka.ssl.key.password=\"***\""), "{log}");
    assert!(log.contains("kafka.sasl.oauthbearer.client.secret=\"***\""), "{log}");
    assert!(log.contains("kafka.client.id=\"visible-client\""), "{log}");
    for secret in ["file-secret-1", "flag-secret-2", "env-secret-3"] {
        assert!(!stderr.contains(secret), "{secret} is logged:\n{stderr}");
    }

    assert!(!output.status.success(), "the worker ran without its input topics");
}

#[test]
fn missing_input_topic_names_setting() {
    let topics = TestTopics::new("missing-input");
    let file = TempFile::new(
        "missing-input.toml",
        &format!(
            "bootstrap_servers = \"{}\"\nhttp_addr = \"127.0.0.1:0\"\n{}",
            common::bootstrap(),
            topics.toml_table()
        ),
    );
    let output = smsfold().args(["run", "--config", file.arg()]).output().expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success(), "the worker ran without its input topics");
    let expected = format!("invalid setting topics.message_events in {}: input topic", file.arg());
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn version_names_build() {
    let output = smsfold().arg("--version").output().expect("smsfold runs");
    let (stdout, _) = texts(&output);
    assert!(output.status.success());

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("smsfold {}", env!("CARGO_PKG_VERSION")));
    let commit = lines[1].strip_prefix("commit: ").unwrap_or_else(|| panic!("{stdout}"));
    let hex = !commit.is_empty() && commit.chars().all(|c| c.is_ascii_hexdigit());
    assert!(hex || commit == "unknown", "commit {commit:?}");
    assert!(lines[2].starts_with("rustc: rustc 1."), "{stdout}");
    assert!(lines[3].starts_with("target: "), "{stdout}");
}

#[test]
fn http_addr_in_use_stops_worker() {
    let topics = TestTopics::new("http-in-use");
    tokio::runtime::Runtime::new().expect("a tokio runtime").block_on(topics.create_inputs(1));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = taken.local_addr().expect("the port's address").to_string();
    let file = TempFile::new(
        "http-in-use.toml",
        &format!(
            "bootstrap_servers = \"{}\"\ngroup_id = \"{}group\"\n{}",
            common::bootstrap(),
            topics.prefix,
            topics.toml_table()
        ),
    );

    let output = smsfold().args(["run", "--config", file.arg(), "--http-addr", &addr]).output().expect("smsfold runs");
    let (_, stderr) = texts(&output);

    assert!(!output.status.success(), "the worker ran without its HTTP server");
    let expected = format!("invalid setting http_addr (from --http-addr): HTTP server on {addr} failed");
    assert!(stderr.contains(&expected), "{stderr}");
}
