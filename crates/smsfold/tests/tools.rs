//! `produce`, `run`, `report` and `tail` on the test broker: events go in
//! through `produce`, a worker started as `smsfold run` folds them, and the
//! report and the tailed changes must match what the events imply.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{record_count, smsfold, texts, TempFile, TestTopics};
use serde_json::Value;

/// A campaign of six messages and one message outside any campaign.
///
/// - m1 to m4 go the usual way: delivered, delivered (2 segments),
///   undelivered (30003) and failed (30001).
/// - m5's sent event comes before its accepted event, so its first change
///   does not name the campaign; its delivered change does.
/// - m6's receipt comes before its accepted event, so none of its changes
///   names the campaign: the report counts it as unattributed.
/// - m7 belongs to no campaign; its inbound event is dead-lettered as
///   direction_conflict.
const CAMPAIGN_EVENTS: &str = r#"{"event_id":"c-1","occurred_at":"2024-03-15T09:00:00Z","campaign_id":"cmp-e2e","kind":"created","account_id":"acct-1","name":"E2E"}
{"event_id":"c-2","occurred_at":"2024-03-15T09:01:00Z","campaign_id":"cmp-e2e","kind":"scheduled","send_at":"2024-03-15T10:00:00Z"}
{"event_id":"c-3","occurred_at":"2024-03-15T10:00:00Z","campaign_id":"cmp-e2e","kind":"started_sending","recipients":6}
{"event_id":"m1-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m1","kind":"accepted","campaign_id":"cmp-e2e","segments":1}
{"event_id":"m1-2","occurred_at":"2024-03-15T10:00:02Z","message_id":"m1","kind":"queued"}
{"event_id":"m1-3","occurred_at":"2024-03-15T10:00:03Z","message_id":"m1","kind":"sent"}
{"event_id":"m1-4","occurred_at":"2024-03-15T10:00:04Z","message_id":"m1","kind":"delivery_receipt","outcome":"delivered"}
{"event_id":"m2-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m2","kind":"accepted","campaign_id":"cmp-e2e","segments":2}
{"event_id":"m2-2","occurred_at":"2024-03-15T10:00:03Z","message_id":"m2","kind":"sent"}
{"event_id":"m2-3","occurred_at":"2024-03-15T10:00:05Z","message_id":"m2","kind":"delivery_receipt","outcome":"delivered"}

{"event_id":"m3-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m3","kind":"accepted","campaign_id":"cmp-e2e"}
{"event_id":"m3-2","occurred_at":"2024-03-15T10:00:03Z","message_id":"m3","kind":"sent"}
{"event_id":"m3-3","occurred_at":"2024-03-15T10:00:06Z","message_id":"m3","kind":"delivery_receipt","outcome":"undelivered","error_code":30003}
{"event_id":"m4-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m4","kind":"accepted","campaign_id":"cmp-e2e"}
{"event_id":"m4-2","occurred_at":"2024-03-15T10:00:02Z","message_id":"m4","kind":"failed","error_code":30001}
{"event_id":"m5-2","occurred_at":"2024-03-15T10:00:03Z","message_id":"m5","kind":"sent"}
{"event_id":"m5-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m5","kind":"accepted","campaign_id":"cmp-e2e"}
{"event_id":"m5-3","occurred_at":"2024-03-15T10:00:07Z","message_id":"m5","kind":"delivery_receipt","outcome":"delivered"}
{"event_id":"m6-3","occurred_at":"2024-03-15T10:00:08Z","message_id":"m6","kind":"delivery_receipt","outcome":"delivered"}
{"event_id":"m6-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"m6","kind":"accepted","campaign_id":"cmp-e2e"}
{"event_id":"c-4","occurred_at":"2024-03-15T10:00:09Z","campaign_id":"cmp-e2e","kind":"dispatch_finished","dispatched":6}
{"event_id":"m7-1","occurred_at":"2024-03-15T11:00:00Z","message_id":"m7","kind":"accepted"}
{"event_id":"m7-2","occurred_at":"2024-03-15T11:00:05Z","message_id":"m7","kind":"delivery_receipt","outcome":"delivered"}
{"event_id":"m7-3","occurred_at":"2024-03-15T11:00:06Z","message_id":"m7","kind":"inbound_received","from":"+15550100","to":"+15550199"}
"#;

/// Another campaign, sent through stdin: its records must stay out of the
/// report and the filtered tail of the first.
const OTHER_CAMPAIGN_EVENTS: &str = r#"{"event_id":"o-1","occurred_at":"2024-03-15T12:00:00Z","campaign_id":"cmp-other","kind":"created"}
{"event_id":"m8-1","occurred_at":"2024-03-15T12:00:01Z","message_id":"m8","kind":"accepted","campaign_id":"cmp-other"}
{"event_id":"m8-2","occurred_at":"2024-03-15T12:00:02Z","message_id":"m8","kind":"delivery_receipt","outcome":"delivered"}
"#;

/// Line 3 lacks its event id and line 5 is not JSON.
const BAD_EVENTS: &str = r#"{"event_id":"b-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"b1","kind":"accepted"}
{"event_id":"b-2","occurred_at":"2024-03-15T10:00:01Z","campaign_id":"cmp-bad","kind":"created"}
{"occurred_at":"2024-03-15T10:00:02Z","message_id":"b1","kind":"queued"}
{"event_id":"b-4","occurred_at":"2024-03-15T10:00:03Z","message_id":"b1","kind":"sent"}
{"event_id":"b-5",
"#;

/// Maximum time the worker may take to fold the campaign.
const WORKER_DEADLINE: Duration = Duration::from_secs(90);

/// Writes a configuration file for one test's topics and group.
fn config_for(topics: &TestTopics) -> TempFile {
    let text = format!(
        "bootstrap_servers = \"{}\"\ngroup_id = \"{}group\"\nbatch_max_wait_ms = 50\nhttp_addr = \"127.0.0.1:0\"\nshutdown_timeout_ms = 20000\n{}",
        common::bootstrap(),
        topics.prefix,
        topics.toml_table()
    );
    TempFile::new("tools.toml", &text)
}

fn create_inputs(topics: &TestTopics) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(topics.create_inputs(3));
}

fn run_with(config: &TempFile, args: &[&str]) -> Output {
    smsfold().args([args[0], "--config", config.arg()]).args(&args[1..]).output().expect("smsfold runs")
}

/// `smsfold run` as a child process, killed if a test fails before it
/// stops the worker itself.
struct RunningWorker {
    child: Option<Child>,
    log: TempFile,
}

impl RunningWorker {
    fn start(config: &TempFile) -> Self {
        Self::start_with(config, &[])
    }

    fn start_with(config: &TempFile, args: &[&str]) -> Self {
        let log = TempFile::new("worker.log", "");
        let stderr = File::create(&log.path).expect("the worker's log file");
        let child = smsfold()
            .args(["run", "--config", config.arg()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("smsfold run starts");
        RunningWorker { child: Some(child), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log.path).unwrap_or_default()
    }

    /// Sends SIGTERM and returns whether the worker exited successfully.
    fn terminate(&mut self) -> bool {
        let mut child = self.child.take().expect("the worker runs");
        let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(status.success(), "could not send SIGTERM to the worker");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait for the worker") {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the worker did not exit 30 s after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `report --output json` until the campaign is completed with five
/// attributed messages, and returns that report.
fn wait_for_completed_report(config: &TempFile, worker: &RunningWorker) -> Value {
    let started = Instant::now();
    loop {
        let output = run_with(config, &["report", "cmp-e2e", "--output", "json", "--messages"]);
        if output.status.success() {
            let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
            if report["status"] == "completed" && report["counts"]["messages"] == 5 {
                return report;
            }
        }
        assert!(
            started.elapsed() < WORKER_DEADLINE,
            "the campaign did not complete within {WORKER_DEADLINE:?}; last report:\n{}\nworker log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Splits a comfy-table rendering into the cells of each row.
fn table_rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .filter(|line| line.starts_with('│'))
        .map(|line| {
            line.trim_matches('│').split(['│', '┆']).map(|cell| cell.trim().to_owned()).collect::<Vec<String>>()
        })
        .collect()
}

fn has_row(rows: &[Vec<String>], expected: &[&str]) -> bool {
    rows.iter().any(|row| row == expected)
}

/// Reduces tailed JSON lines to (entity, id, previous status, status).
fn transitions(stdout: &str) -> BTreeSet<(String, String, String, String)> {
    stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"));
            let entity = value["entity"].as_str().expect("entity").to_owned();
            let id = value.get("message_id").or(value.get("campaign_id")).and_then(Value::as_str).expect("an id");
            let previous = value["previous_status"].as_str().unwrap_or("(new)").to_owned();
            (entity, id.to_owned(), previous, value["status"].as_str().expect("status").to_owned())
        })
        .collect()
}

fn expected(rows: &[(&str, &str, &str, &str)]) -> BTreeSet<(String, String, String, String)> {
    rows.iter().map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string())).collect()
}

/// The campaign changes of cmp-e2e, and the message changes that name it.
const CAMPAIGN_TRANSITIONS: [(&str, &str, &str, &str); 17] = [
    ("campaign", "cmp-e2e", "(new)", "draft"),
    ("campaign", "cmp-e2e", "draft", "scheduled"),
    ("campaign", "cmp-e2e", "scheduled", "sending"),
    ("campaign", "cmp-e2e", "sending", "completed"),
    ("message", "m1", "(new)", "accepted"),
    ("message", "m1", "accepted", "queued"),
    ("message", "m1", "queued", "sent"),
    ("message", "m1", "sent", "delivered"),
    ("message", "m2", "(new)", "accepted"),
    ("message", "m2", "accepted", "sent"),
    ("message", "m2", "sent", "delivered"),
    ("message", "m3", "(new)", "accepted"),
    ("message", "m3", "accepted", "sent"),
    ("message", "m3", "sent", "undelivered"),
    ("message", "m4", "(new)", "accepted"),
    ("message", "m4", "accepted", "failed"),
    ("message", "m5", "sent", "delivered"),
];

/// The other changes: m5's first, m6, m7 and the other campaign.
const OTHER_TRANSITIONS: [(&str, &str, &str, &str); 7] = [
    ("message", "m5", "(new)", "sent"),
    ("message", "m6", "(new)", "delivered"),
    ("message", "m7", "(new)", "accepted"),
    ("message", "m7", "accepted", "delivered"),
    ("message", "m8", "(new)", "accepted"),
    ("message", "m8", "accepted", "delivered"),
    ("campaign", "cmp-other", "(new)", "draft"),
];

#[test]
fn produce_run_report_tail() {
    let topics = TestTopics::new("tools");
    create_inputs(&topics);
    let config = config_for(&topics);

    // An invalid line stops produce before it sends anything.
    let bad = TempFile::new("bad.jsonl", BAD_EVENTS);
    let output = run_with(&config, &["produce", bad.arg()]);
    let (_, stderr) = texts(&output);
    assert!(!output.status.success(), "produce accepted an invalid file:\n{stderr}");
    assert!(
        stderr.contains(&format!("line 3 of {}: invalid message event: missing field event_id", bad.arg())),
        "{stderr}"
    );
    assert!(stderr.contains("invalid line 5"), "{stderr}");
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert_eq!(record_count(&topics.name("message-events")), 0);
    assert_eq!(record_count(&topics.name("campaign-events")), 0);

    // A valid file and stdin.
    let good = TempFile::new("good.jsonl", CAMPAIGN_EVENTS);
    let output = run_with(&config, &["produce", good.arg()]);
    let (_, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("sent 24 records"), "{stderr}");
    assert!(stderr.contains("20 message events"), "{stderr}");
    assert!(stderr.contains("4 campaign events"), "{stderr}");

    let mut child = smsfold()
        .args(["produce", "--config", config.arg(), "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smsfold produce starts");
    child.stdin.take().expect("stdin").write_all(OTHER_CAMPAIGN_EVENTS.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("produce ends");
    let (_, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("sent 3 records from stdin"), "{stderr}");
    assert_eq!(record_count(&topics.name("message-events")), 22);
    assert_eq!(record_count(&topics.name("campaign-events")), 5);

    let mut worker = RunningWorker::start(&config);
    let report = wait_for_completed_report(&config, &worker);
    assert!(worker.terminate(), "the worker failed to stop on SIGTERM:\n{}", worker.log());
    assert!(worker.log().contains("smsfold stopped"), "{}", worker.log());

    // JSON report, read while the worker ran.
    let counts = &report["counts"];
    for (status, count) in [
        ("accepted", 0),
        ("scheduled", 0),
        ("queued", 0),
        ("sending", 0),
        ("sent", 0),
        ("canceled", 0),
        ("failed", 1),
        ("undelivered", 1),
        ("delivered", 3),
        ("messages", 5),
        ("unattributed_messages", 1),
        ("segments", 7),
        ("billable_segments", 6),
        ("recipients", 6),
        ("dispatched", 6),
    ] {
        assert_eq!(counts[status], count, "counts.{status} in {report:#}");
    }
    assert_eq!(counts["delivery_rate"], 0.6);
    let messages: Vec<(&str, &str, u64)> = report["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| (m["message_id"].as_str().unwrap(), m["status"].as_str().unwrap(), m["error_code"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        messages,
        [
            ("m1", "delivered", 0),
            ("m2", "delivered", 0),
            ("m3", "undelivered", 30003),
            ("m4", "failed", 30001),
            ("m5", "delivered", 0)
        ]
    );

    // Table report.
    let output = run_with(&config, &["report", "cmp-e2e"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let rows = table_rows(&stdout);
    assert!(has_row(&rows, &["Campaign", "cmp-e2e"]), "{stdout}");
    assert!(has_row(&rows, &["Status", "completed"]), "{stdout}");
    assert!(has_row(&rows, &["Messages", "5"]), "{stdout}");
    assert!(has_row(&rows, &["Unattributed messages", "1"]), "{stdout}");
    assert!(has_row(&rows, &["Segments", "7"]), "{stdout}");
    assert!(has_row(&rows, &["Billable segments", "6"]), "{stdout}");
    assert!(has_row(&rows, &["Delivery rate", "60.0%"]), "{stdout}");
    assert!(has_row(&rows, &["delivered", "3", "60.0%"]), "{stdout}");
    assert!(has_row(&rows, &["undelivered", "1", "20.0%"]), "{stdout}");
    assert!(has_row(&rows, &["failed", "1", "20.0%"]), "{stdout}");
    assert!(has_row(&rows, &["sent", "0", "0.0%"]), "{stdout}");
    assert!(!stdout.contains("m1"), "messages listed without --messages:\n{stdout}");

    let output = run_with(&config, &["report", "cmp-e2e", "--messages"]);
    let rows = table_rows(&String::from_utf8_lossy(&output.stdout));
    assert!(has_row(&rows, &["m3", "undelivered", "2024-03-15T10:00:06Z", "30003", "-", "-"]), "{rows:?}");

    // CSV report: the summary row, then one row per message.
    let output = run_with(&config, &["report", "cmp-e2e", "--output", "csv"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let values: Vec<&str> = lines[1].split(',').collect();
    let field =
        |name: &str| values[header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}"))];
    assert_eq!(field("campaign_id"), "cmp-e2e");
    assert_eq!(field("status"), "completed");
    assert_eq!(field("delivered"), "3");
    assert_eq!(field("undelivered"), "1");
    assert_eq!(field("failed"), "1");
    assert_eq!(field("messages"), "5");
    assert_eq!(field("unattributed_messages"), "1");
    assert_eq!(field("segments"), "7");
    assert_eq!(field("billable_segments"), "6");
    assert_eq!(field("delivery_rate"), "0.6");

    let output = run_with(&config, &["report", "cmp-e2e", "--output", "csv", "--messages"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "campaign_id,message_id,status,status_at,error_code,receipt_stat,receipt_err");
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines.contains(&"cmp-e2e,m4,failed,2024-03-15T10:00:02Z,30001,,"), "{stdout}");

    // Every change, then one campaign's, then the dead letters.
    let output = run_with(&config, &["tail", "--from-beginning", "--output", "json", "--idle-exit-ms", "3000"]);
    let (stdout, stderr) = texts(&output);
    assert!(output.status.success(), "{stderr}");
    let mut all = expected(&CAMPAIGN_TRANSITIONS);
    all.extend(expected(&OTHER_TRANSITIONS));
    assert_eq!(transitions(&stdout), all);

    let args = ["tail", "--from-beginning", "--output", "json", "--campaign", "cmp-e2e", "--idle-exit-ms", "3000"];
    let output = run_with(&config, &args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(transitions(&stdout), expected(&CAMPAIGN_TRANSITIONS));

    let output = run_with(&config, &["tail", "--from-beginning", "--output", "json", "--max-records", "3"]);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 3);

    let output = run_with(
        &config,
        &["tail", "--from-beginning", "--dead-letters", "--output", "json", "--idle-exit-ms", "3000"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dead_letters: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON"))
        .filter(|value| value["entity"] == "dead_letter")
        .collect();
    assert_eq!(dead_letters.len(), 1, "{stdout}");
    assert_eq!(dead_letters[0]["key"], "m7");
    assert_eq!(dead_letters[0]["reason"], "direction_conflict");
    assert_eq!(dead_letters[0]["source_topic"], topics.name("message-events"));

    let output = run_with(&config, &["tail", "--from-beginning", "--campaign", "cmp-e2e", "--idle-exit-ms", "3000"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let undelivered = stdout
        .lines()
        .find(|line| line.contains("  message   m3  sent -> undelivered"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(undelivered.starts_with("2024-03-15T10:00:06Z"), "{undelivered}");
    assert!(undelivered.ends_with("campaign cmp-e2e  error 30003  cause m3-3"), "{undelivered}");
}

#[test]
fn produce_skip_invalid_sends_valid_lines() {
    let topics = TestTopics::new("skip-invalid");
    create_inputs(&topics);
    let config = config_for(&topics);
    let bad = TempFile::new("bad.jsonl", BAD_EVENTS);

    let output = run_with(&config, &["produce", "--skip-invalid", bad.arg()]);
    let (_, stderr) = texts(&output);

    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("invalid line 3 of {}: invalid message event: missing field event_id", bad.arg())),
        "{stderr}"
    );
    assert!(stderr.contains("invalid line 5"), "{stderr}");
    assert!(stderr.contains("sent 3 records"), "{stderr}");
    assert!(stderr.contains("skipped 2 invalid lines"), "{stderr}");
    assert_eq!(record_count(&topics.name("message-events")), 2);
    assert_eq!(record_count(&topics.name("campaign-events")), 1);
}

#[test]
fn produce_to_missing_topic_named() {
    let topics = TestTopics::new("missing-topic");
    let config = config_for(&topics);
    let good = TempFile::new("good.jsonl", OTHER_CAMPAIGN_EVENTS);

    let output = run_with(&config, &["produce", good.arg()]);
    let (_, stderr) = texts(&output);

    assert!(!output.status.success());
    let expected = format!("topic {:?} (topics.message_events) does not exist", topics.name("message-events"));
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn report_of_unknown_campaign_fails() {
    let topics = TestTopics::new("unknown-campaign");
    create_inputs(&topics);
    let config = config_for(&topics);
    let mut worker = RunningWorker::start(&config);

    // The worker creates the output topics; wait for them and their leaders.
    let started = Instant::now();
    let output = loop {
        let output = run_with(&config, &["report", "no-such-campaign"]);
        let (_, stderr) = texts(&output);
        let topic_not_ready = stderr.contains("does not exist") || stderr.contains("NotLeaderForPartition");
        if !topic_not_ready || started.elapsed() > Duration::from_secs(30) {
            break output;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(worker.terminate(), "{}", worker.log());

    let (_, stderr) = texts(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("campaign \"no-such-campaign\" not found"), "{stderr}");
}

/// A one-message campaign for the protobuf test.
const SMALL_CAMPAIGN_EVENTS: &str = r#"{"event_id":"p-1","occurred_at":"2024-03-15T09:00:00Z","campaign_id":"cmp-proto","kind":"created"}
{"event_id":"p-2","occurred_at":"2024-03-15T10:00:00Z","campaign_id":"cmp-proto","kind":"started_sending","recipients":1}
{"event_id":"p1-1","occurred_at":"2024-03-15T10:00:01Z","message_id":"p1","kind":"accepted","campaign_id":"cmp-proto","segments":3}
{"event_id":"p1-2","occurred_at":"2024-03-15T10:00:02Z","message_id":"p1","kind":"sent"}
{"event_id":"p1-3","occurred_at":"2024-03-15T10:00:03Z","message_id":"p1","kind":"delivery_receipt","outcome":"delivered"}
{"event_id":"p-3","occurred_at":"2024-03-15T10:00:04Z","campaign_id":"cmp-proto","kind":"dispatch_finished","dispatched":1}
"#;

/// A worker that publishes protobuf: tail and report read each record in
/// the format its content-type header names.
#[test]
fn protobuf_changes_read_by_tail_and_report() {
    let topics = TestTopics::new("protobuf");
    create_inputs(&topics);
    let config = config_for(&topics);
    let events = TempFile::new("small.jsonl", SMALL_CAMPAIGN_EVENTS);
    let output = run_with(&config, &["produce", events.arg()]);
    assert!(output.status.success(), "{}", texts(&output).1);

    let mut worker = RunningWorker::start_with(&config, &["--output-format", "protobuf"]);
    let started = Instant::now();
    let report = loop {
        let output = run_with(&config, &["report", "cmp-proto", "--output", "json"]);
        if output.status.success() {
            let report: Value = serde_json::from_slice(&output.stdout).expect("a JSON report");
            if report["status"] == "completed" && report["counts"]["delivered"] == 1 {
                break report;
            }
        }
        assert!(started.elapsed() < WORKER_DEADLINE, "the campaign did not complete:\n{}", worker.log());
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(worker.terminate(), "{}", worker.log());

    let content_type = common::first_header(&topics.name("message-status-changes"), "content-type");
    assert_eq!(content_type.as_deref(), Some("application/x-protobuf"));
    assert_eq!(report["counts"]["messages"], 1);
    assert_eq!(report["counts"]["segments"], 3);
    assert_eq!(report["counts"]["billable_segments"], 3);
    assert_eq!(report["counts"]["delivery_rate"], 1.0);

    let output = run_with(&config, &["tail", "--from-beginning", "--output", "json", "--idle-exit-ms", "3000"]);
    let (stdout, stderr) = texts(&output);
    assert!(!stderr.contains("could not be decoded"), "{stderr}");
    assert_eq!(
        transitions(&stdout),
        expected(&[
            ("campaign", "cmp-proto", "(new)", "draft"),
            ("campaign", "cmp-proto", "draft", "sending"),
            ("campaign", "cmp-proto", "sending", "completed"),
            ("message", "p1", "(new)", "accepted"),
            ("message", "p1", "accepted", "sent"),
            ("message", "p1", "sent", "delivered"),
        ])
    );
}
