//! Several pipelines in one `smsfold run` process, on a real broker: the
//! group shares the partitions among them, each commits its own
//! transactions, and the process's HTTP views and gauges cover all of them;
//! after a restart with nothing to consume it still reports its lag.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use smsfold_suite::process::{free_port, http_get, smsfold_binary, topic_flags};
use smsfold_suite::{create_topics, produce, read_topic, unique, Record};
use smsfold_wire::{Format, MessageStatusChange};
use smsfold_worker::Topics;

const CAMPAIGNS: usize = 6;
const MESSAGES_PER_CAMPAIGN: usize = 40;
const PIPELINES: usize = 3;

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Returns the value of an unlabelled sample in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn json_record(topic: &str, key: &str, value: Value) -> Record {
    Record {
        topic: topic.to_owned(),
        key: Some(key.as_bytes().to_vec()),
        value: value.to_string().into_bytes(),
        content_type: Some("application/json"),
    }
}

/// Returns the largest assignment each pipeline logged, in partitions, by
/// instance id.
fn largest_assignments(log: &str) -> BTreeMap<String, u64> {
    let mut assigned: BTreeMap<String, u64> = BTreeMap::new();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        if entry["fields"]["message"] != "assignment changed" {
            continue;
        }
        let instance = entry["span"]["instance_id"].as_str().unwrap_or("outside any pipeline").to_owned();
        let partitions = entry["fields"]["partitions"].as_u64().unwrap_or(0);
        let largest = assigned.entry(instance).or_default();
        *largest = (*largest).max(partitions);
    }
    assigned
}

/// The worker process, killed if the test fails before it stops it.
struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts `smsfold run` with `pipelines` pipelines, logging JSON to `log`.
fn start(topics: &Topics, group: &str, http: SocketAddr, pipelines: usize, log: PathBuf) -> Running {
    let file = File::create(&log).expect("log file");
    let child = Command::new(smsfold_binary())
        .args(["run", "--bootstrap-servers", &smsfold_suite::bootstrap()])
        .args(["--group-id", group, "--instance-id", "host-a", "--pipelines", &pipelines.to_string()])
        .args(topic_flags(topics))
        .args(["--http-addr", &http.to_string(), "--batch-max-wait-ms", "50", "--log-format", "json"])
        .env("RUST_LOG", "warn,smsfold_worker=info,smsfold=info")
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("smsfold starts");
    Running { child: Some(child), log }
}

/// Stops the worker with SIGTERM and returns its log, checking that it
/// exited cleanly within 30 s.
fn stop(running: &mut Running) -> String {
    let mut child = running.child.take().expect("the worker runs");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait for the worker") {
            break exit;
        }
        assert!(Instant::now() < deadline, "the worker did not stop 30 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = running.log();
    assert!(exit.success(), "{log}");
    log
}

/// Returns the lines of a JSON log at `level`.
fn lines_at<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines().filter(|line| serde_json::from_str::<Value>(line).is_ok_and(|entry| entry["level"] == level)).collect()
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_share_partitions_and_views() {
    let prefix = unique("pipelines");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    create_topics(&[(&topics.message_events, PIPELINES as i32), (&topics.campaign_events, PIPELINES as i32)]).await;
    let group = unique("pipelines-group");
    let http = free_addr();
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&prefix);
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let mut running = start(&topics, &group, http, PIPELINES, log_dir.join("worker.log"));

    // Each campaign's messages go accepted, sent, delivered; every fifth
    // message fails instead.
    let base = 1_780_000_000_000_i64;
    let mut records = Vec::new();
    for campaign in 0..CAMPAIGNS {
        let id = format!("camp-{campaign}");
        for (n, kind) in ["created", "started_sending"].into_iter().enumerate() {
            let event = json!({"event_id": format!("{id}-{kind}"), "occurred_at": base + n as i64,
                               "campaign_id": id, "kind": kind, "recipients": MESSAGES_PER_CAMPAIGN});
            records.push(json_record(&topics.campaign_events, &id, event));
        }
    }
    produce(&records).await;
    let mut records = Vec::new();
    for campaign in 0..CAMPAIGNS {
        for n in 0..MESSAGES_PER_CAMPAIGN {
            let message = format!("c{campaign}-m{n}");
            let kinds: &[&str] = if n % 5 == 0 { &["accepted", "failed"] } else { &["accepted", "sent", "delivery_receipt"] };
            for (step, kind) in kinds.iter().enumerate() {
                let mut event = json!({"event_id": format!("{message}-{step}"), "occurred_at": base + 10 + step as i64,
                                       "message_id": message, "kind": kind});
                match *kind {
                    "accepted" => event["campaign_id"] = json!(format!("camp-{campaign}")),
                    "failed" => event["error_code"] = json!(30001),
                    "delivery_receipt" => event["outcome"] = json!("delivered"),
                    _ => {}
                }
                records.push(json_record(&topics.message_events, &message, event));
            }
        }
    }
    let changes_expected = records.len();
    produce(&records).await;
    let closings: Vec<Record> = (0..CAMPAIGNS)
        .map(|campaign| {
            let id = format!("camp-{campaign}");
            let event = json!({"event_id": format!("{id}-finished"), "occurred_at": base + 100, "campaign_id": id,
                               "kind": "dispatch_finished", "dispatched": MESSAGES_PER_CAMPAIGN});
            json_record(&topics.campaign_events, &id, event)
        })
        .collect();
    produce(&closings).await;

    // Every campaign completes, whichever pipeline folds it.
    let started = Instant::now();
    loop {
        let body = http_get(http, "/campaigns").map(|(_, body)| body).unwrap_or_default();
        let listed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let campaigns = listed["campaigns"].as_array().cloned().unwrap_or_default();
        if campaigns.len() == CAMPAIGNS && campaigns.iter().all(|c| c["status"] == "completed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "campaigns not all completed: {body}\nworker log:\n{}",
            running.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Each pipeline is a group member of its own and is given partitions,
    // though the first may fold everything before the others join.
    let started = Instant::now();
    loop {
        let log = running.log();
        let assigned = largest_assignments(&log);
        let names: Vec<&str> = assigned.keys().map(String::as_str).collect();
        if names == ["host-a", "host-a-pipeline-1", "host-a-pipeline-2"] && assigned.values().all(|&n| n > 0) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "largest assignment by pipeline: {assigned:?}\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Once the last joiner has restored its share, the process is ready
    // and its views and gauges cover every pipeline.
    let total_messages = (CAMPAIGNS * MESSAGES_PER_CAMPAIGN) as f64;
    let started = Instant::now();
    loop {
        let (status, _) = http_get(http, "/readyz").expect("GET /readyz");
        let (_, page) = http_get(http, "/metrics").expect("GET /metrics");
        let ready = sample(&page, "smsfold_ready") == Some(1.0);
        if status == 200 && ready && sample(&page, "smsfold_live_messages") == Some(total_messages) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "/readyz {status}, metrics:\n{page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, body) = http_get(http, "/campaigns").expect("GET /campaigns");
    let listed: Value = serde_json::from_str(&body).expect("a JSON list");
    let campaigns = listed["campaigns"].as_array().expect("campaigns");
    assert_eq!(campaigns.len(), CAMPAIGNS, "{body}");
    let failed_per_campaign = MESSAGES_PER_CAMPAIGN.div_ceil(5);
    for campaign in campaigns {
        assert_eq!(campaign["status"], "completed", "{campaign}");
        assert_eq!(campaign["messages"], MESSAGES_PER_CAMPAIGN, "{campaign}");
        assert_eq!(campaign["failed"], failed_per_campaign, "{campaign}");
        assert_eq!(campaign["delivered"], MESSAGES_PER_CAMPAIGN - failed_per_campaign, "{campaign}");
    }
    let (status, body) = http_get(http, "/messages/c5-m7").expect("GET /messages");
    assert_eq!(status, 200, "{body}");
    let message: Value = serde_json::from_str(&body).expect("a JSON message");
    assert_eq!(message["status"], "delivered");

    // Every status change once.
    let changes = read_topic(&topics.message_changes, changes_expected, Duration::from_secs(30));
    let mut seen = BTreeMap::new();
    for record in &changes {
        let change = MessageStatusChange::decode(Format::Json, rdkafka::Message::payload(record).expect("a value"))
            .expect("a change");
        *seen.entry((change.message_id.to_string(), change.status.as_str().to_owned())).or_insert(0) += 1;
    }
    assert_eq!(changes.len(), changes_expected);
    assert!(seen.values().all(|&count| count == 1), "a change appeared twice");

    // SIGTERM stops every pipeline, each committing its open batch.
    let log = stop(&mut running);
    assert_eq!(log.matches("worker stopped").count(), PIPELINES, "{log}");
    // A first start logs no error, though the group's first assignment may
    // come before the broker has the topics the worker just created.
    let errors = lines_at(&log, "ERROR");
    assert!(errors.is_empty(), "error lines: {errors:#?}");

    // Every line the worker crate logs, restores included, names its pipeline.
    let unnamed: Vec<&str> = log
        .lines()
        .filter(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|entry| {
                entry["target"].as_str().is_some_and(|target| target.starts_with("smsfold_worker"))
                    && entry["span"]["instance_id"].is_null()
            })
        })
        .collect();
    assert!(unnamed.is_empty(), "lines without a pipeline: {unnamed:#?}");

    // Restarted with nothing left to consume, the worker reports its lag on
    // the message events, counted from the offsets the group committed.
    let mut restarted = start(&topics, &group, http, 1, log_dir.join("restarted.log"));
    let lag_prefix = format!("smsfold_consumer_lag_records{{topic=\"{}\",", topics.message_events);
    let started = Instant::now();
    let lags = loop {
        let (_, page) = http_get(http, "/metrics").unwrap_or_default();
        let lags: Vec<String> = page.lines().filter(|line| line.starts_with(&lag_prefix)).map(str::to_owned).collect();
        if lags.len() == PIPELINES {
            break lags;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "lag series: {lags:?}\nmetrics:\n{page}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let log = stop(&mut restarted);
    assert!(lags.iter().all(|line| line.ends_with(" 0")), "{lags:?}");
    let errors = lines_at(&log, "ERROR");
    assert!(errors.is_empty(), "error lines: {errors:#?}");
}
