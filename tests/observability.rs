//! Runs a real Prometheus (Debian's `prometheus` binary) against a running
//! smsfold and checks that every query of the Grafana dashboard and every
//! alert rule of deploy/prometheus returns data.
//!
//! The worker runs in this process with its HTTP server on 127.0.0.1, and
//! Prometheus scrapes it every second and evaluates deploy/prometheus/alerts.yml
//! every second. The events are the docker-compose demo's
//! (deploy/demo/events.sh). When the test broker's jars are at hand,
//! deploy/demo/produce.sh produces them through Kafka's console producer, so
//! the compose demo's producer runs here too. The demo's two poison records
//! make the dead-letter series exist.
//!
//! The rules for a query returning data:
//! - Dashboard queries: `$__rate_interval` becomes 1m, `$__range` 10m, `$job`
//!   smsfold and `$instance` .+, and each query must return at least one
//!   series. A query variable, label_values(SELECTOR, LABEL), must return a
//!   series that carries LABEL.
//! - Alert rules: Prometheus must report every rule healthy (evaluated
//!   without error). Most rules are conditions that hold only when something
//!   is wrong, so each rule's data-bearing subexpressions, listed in
//!   `ALERT_INPUTS`, must return at least one series; they must appear in the
//!   rule's expression as written. SmsfoldDeadLetters must be firing, for
//!   the two poison records, and SmsfoldDown and SmsfoldAbsent must not.
//! - A query that uses a metric of `OPTIONAL_METRICS` is skipped with a note
//!   when Prometheus has no series of that metric.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use smsfold_suite::process::{free_port, http_get};
use smsfold_suite::{create_topics, produce, unique, Record};
use smsfold_worker::{http, metrics, Topics, Worker, WorkerConfig};
use tokio::sync::watch;

/// Metrics that may have no series in a healthy run of this smsfold
/// version: the four added with state restore, and two that are only
/// recorded on a restore or an aborted transaction.
const OPTIONAL_METRICS: [&str; 6] = [
    "smsfold_consumer_lag_seconds",
    "smsfold_restore_remaining_records",
    "smsfold_restored_records_total",
    "smsfold_ready",
    "smsfold_restore_duration_seconds",
    "smsfold_transactions_aborted_total",
];

/// For each alert rule, the subexpressions that must return data while
/// smsfold runs. SmsfoldAbsent has none: `absent()` returns a series only
/// when no target is scraped.
const ALERT_INPUTS: [(&str, &[&str]); 7] = [
    ("SmsfoldDown", &[r#"up{job="smsfold"}"#]),
    ("SmsfoldAbsent", &[]),
    ("SmsfoldDeadLetters", &["sum by (job, instance, reason) (increase(smsfold_dead_letters_total[5m]))"]),
    (
        "SmsfoldConsumerLagGrowing",
        &[
            "sum by (job, instance, topic) (smsfold_consumer_lag_records)",
            "sum by (job, instance, topic) (delta(smsfold_consumer_lag_records[10m]))",
        ],
    ),
    ("SmsfoldConsumerLagSecondsHigh", &["max by (job, instance, topic) (smsfold_consumer_lag_seconds)"]),
    (
        "SmsfoldPartitionStalled",
        &[
            "max by (job, instance, topic, partition) (smsfold_consumer_lag_records)",
            "max by (job, instance, topic, partition) (changes(smsfold_consumer_lag_records[10m]))",
            "increase(smsfold_batches_committed_total[10m])",
            "sum by (job, instance) (smsfold_restore_remaining_records)",
        ],
    ),
    ("SmsfoldNotReady", &["smsfold_ready", "sum by (job, instance) (smsfold_restore_remaining_records)"]),
];

/// Events the demo sends that smsfold applies: 7 campaign events and 1022
/// message events (its 1024 message records less the two poison records).
const DEMO_EVENTS: f64 = 1029.0;

const TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

/// Polls `condition` every 500 ms until it returns true or `timeout` passes,
/// and returns whether it returned true.
fn poll_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if condition() {
            return true;
        }
        if started.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Percent-encodes a query parameter value.
fn url_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A Prometheus server in a temporary directory, killed and removed on drop.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(dir: PathBuf, smsfold: SocketAddr) -> Prometheus {
        let binary = find_on_path("prometheus").unwrap_or_else(|| {
            panic!("prometheus not found on PATH; install Debian's prometheus package (apt-get install prometheus), as .ci/run does")
        });
        std::fs::create_dir_all(dir.join("data")).expect("create the Prometheus data directory");
        let rules = repo_root().join("deploy/prometheus/alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: smsfold\n    static_configs:\n      - targets: [\"{smsfold}\"]\n",
            rules = rules.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create prometheus.log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus { child, dir, addr };
        prometheus.wait_until(TIMEOUT, "Prometheus to be ready", || {
            matches!(http_get(addr, "/-/ready"), Ok((200, _)))
        });
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// Polls `condition` every 500 ms, panicking with Prometheus's log after
    /// `timeout`.
    fn wait_until(&self, timeout: Duration, what: &str, condition: impl FnMut() -> bool) {
        assert!(poll_until(timeout, condition), "timed out after {timeout:?} waiting for {what}; Prometheus log:\n{}", self.log());
    }

    /// Calls an API endpoint and returns its `data`, or the error Prometheus
    /// reported.
    fn api(&self, path: &str) -> Result<Value, String> {
        let (status, body) = http_get(self.addr, path).map_err(|error| format!("GET {path} failed: {error}"))?;
        let response: Value =
            serde_json::from_str(&body).map_err(|error| format!("GET {path}: HTTP {status}, invalid JSON ({error}): {body}"))?;
        if response["status"] != "success" {
            return Err(format!("GET {path}: HTTP {status}: {} {}", response["errorType"], response["error"]));
        }
        Ok(response["data"].clone())
    }

    /// Evaluates an instant query and returns its series.
    fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    fn scalar(&self, expr: &str) -> Option<f64> {
        let series = self.query(expr).ok()?;
        series.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Produces the demo's records into `topics` with deploy/demo/produce.sh and
/// Kafka's console producer when the test broker's jars and java are there,
/// otherwise with this suite's producer.
fn produce_demo(runtime: &tokio::runtime::Runtime, topics: &Topics, dir: &Path) {
    let kafka_home = std::env::var_os("SMSFOLD_KAFKA_HOME").map_or_else(|| repo_root().join(".kafka"), PathBuf::from);
    let lib = kafka_home.join("lib");
    let has_tools = std::fs::read_dir(&lib)
        .map(|entries| entries.flatten().any(|entry| entry.file_name().to_string_lossy().starts_with("kafka-tools-")))
        .unwrap_or(false);
    if has_tools && find_on_path("java").is_some() {
        let wrapper = dir.join("kafka-console-producer");
        let script = format!("#!/bin/sh\nexec java -cp '{}/*' org.apache.kafka.tools.ConsoleProducer \"$@\"\n", lib.display());
        std::fs::write(&wrapper, script).expect("write the console producer wrapper");
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("make the wrapper executable");
        let status = Command::new("sh")
            .arg(repo_root().join("deploy/demo/produce.sh"))
            .env("BOOTSTRAP_SERVERS", smsfold_suite::bootstrap())
            .env("MESSAGE_EVENTS_TOPIC", &topics.message_events)
            .env("CAMPAIGN_EVENTS_TOPIC", &topics.campaign_events)
            .env("KAFKA_CONSOLE_PRODUCER", &wrapper)
            .status()
            .expect("run deploy/demo/produce.sh");
        assert!(status.success(), "deploy/demo/produce.sh failed: {status}");
        return;
    }

    println!("note: no kafka-tools jar under {} or no java; producing the demo's records without the console producer", lib.display());
    let mut records = Vec::new();
    for (kind, topic) in [("campaign-events", &topics.campaign_events), ("message-events", &topics.message_events)] {
        let output = Command::new("sh")
            .arg(repo_root().join("deploy/demo/events.sh"))
            .arg(kind)
            .output()
            .expect("run deploy/demo/events.sh");
        assert!(output.status.success(), "deploy/demo/events.sh {kind} failed: {}", String::from_utf8_lossy(&output.stderr));
        for line in String::from_utf8(output.stdout).expect("UTF-8 records").lines() {
            let fields: Vec<&str> = line.splitn(3, '\t').collect();
            assert_eq!(fields.len(), 3, "expected headers, key and value in {line:?}");
            assert_eq!(fields[0], "content-type:application/json", "unexpected headers in {line:?}");
            records.push(Record {
                topic: topic.clone(),
                key: Some(fields[1].as_bytes().to_vec()),
                value: fields[2].as_bytes().to_vec(),
                content_type: Some("application/json"),
            });
        }
    }
    runtime.block_on(produce(&records));
}

/// Returns the smsfold metric names (histograms without their suffix) an
/// expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(start) = rest.find("smsfold_") {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name);
        names.insert(base.to_owned());
        rest = &tail[end..];
    }
    names
}

/// Returns the optional metrics `expr` uses that have no series.
fn missing_optional(expr: &str, present: &BTreeSet<String>) -> Vec<String> {
    metric_names(expr)
        .into_iter()
        .filter(|name| OPTIONAL_METRICS.contains(&name.as_str()))
        .filter(|name| !present.iter().any(|series| series == name || series.starts_with(&format!("{name}_"))))
        .collect()
}

/// Replaces Grafana's variables with literals for Prometheus.
fn substitute_variables(expr: &str) -> String {
    let substituted = expr
        .replace("$__rate_interval", "1m")
        .replace("$__range", "10m")
        .replace("$job", "smsfold")
        .replace("$instance", ".+");
    assert!(!substituted.contains('$'), "the query {expr:?} uses a variable this test does not replace");
    substituted
}

/// Collects (panel title, query) for every target of every panel, rows included.
fn dashboard_queries(panels: &[Value], queries: &mut Vec<(String, String)>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)").to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("panel {title:?} has a target without expr"));
            queries.push((title.clone(), expr.to_owned()));
        }
        dashboard_queries(panel["panels"].as_array().map_or(&[], Vec::as_slice), queries);
    }
}

fn without_whitespace(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The outcome of the query checks: failures are collected so that one run
/// lists every query without data.
#[derive(Default)]
struct Report {
    /// Metric names Prometheus has series of.
    present: BTreeSet<String>,
    failures: Vec<String>,
    checked: usize,
    skipped: usize,
}

impl Report {
    /// Checks that `expr` returns at least one series, or skips it with a
    /// note when it uses an optional metric without series.
    fn returns_data(&mut self, prometheus: &Prometheus, location: &str, expr: &str) {
        let missing = missing_optional(expr, &self.present);
        if !missing.is_empty() {
            println!("note: skipped {location}: no series of {} yet", missing.join(", "));
            self.skipped += 1;
            return;
        }
        self.checked += 1;
        match prometheus.query(expr) {
            Ok(series) if series.is_empty() => self.failures.push(format!("{location}: {expr} returned no series")),
            Ok(_) => {}
            Err(error) => self.failures.push(format!("{location}: {expr}: {error}")),
        }
    }
}

/// Returns the alerting rules Prometheus has loaded, with their health.
fn alert_rules(prometheus: &Prometheus) -> Vec<Value> {
    let data = prometheus.api("/api/v1/rules?type=alert").expect("rules");
    data["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn dashboard_and_alert_queries_return_data() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = std::env::temp_dir().join(unique("smsfold-observability"));
    std::fs::create_dir_all(&dir).expect("create the temporary directory");

    // smsfold, with its metrics and HTTP endpoints as `smsfold run` sets them up.
    let topics = Topics::with_prefix(&format!("{}-", unique("observability")));
    runtime.block_on(create_topics(&[(&topics.message_events, 2), (&topics.campaign_events, 2)]));
    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("observability-group");
    config.topics = topics.clone();
    config.batch_max_wait = Duration::from_millis(50);
    let worker = Worker::new(config).expect("valid config");
    let handle = metrics::install().expect("install the Prometheus recorder");
    let smsfold: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
    let (shutdown_tx, shutdown) = watch::channel(false);
    let server = runtime.spawn(http::serve(smsfold, Some(handle), worker.view(), shutdown.clone()));
    let running = runtime.spawn(worker.run(shutdown));

    let prometheus = Prometheus::start(dir.join("prometheus"), smsfold);
    produce_demo(&runtime, &topics, &dir);

    // Wait until smsfold has applied the demo and Prometheus has scraped it.
    prometheus.wait_until(TIMEOUT, "smsfold to apply the demo's events", || {
        prometheus.scalar(r#"sum(smsfold_events_consumed_total{job="smsfold"})"#).is_some_and(|events| events >= DEMO_EVENTS)
            && prometheus.scalar(r#"sum(smsfold_campaigns{status="completed"})"#) == Some(1.0)
            && prometheus.scalar(r#"sum(smsfold_campaigns{status="cancelled"})"#) == Some(1.0)
    });
    // librdkafka reports statistics every 5 s. Without the lag series the
    // test goes on, so that its report lists every query that lacks them.
    let lag_reported = poll_until(Duration::from_secs(30), || {
        prometheus.query("smsfold_consumer_lag_records").is_ok_and(|series| !series.is_empty())
    });
    if !lag_reported {
        println!("note: smsfold exported no smsfold_consumer_lag_records series within 30 s");
    }
    // A few more scrapes and rule evaluations, so that every rate window
    // contains the changes.
    std::thread::sleep(Duration::from_secs(5));

    for (path, expected) in [("/healthz", 200), ("/readyz", 200)] {
        let (status, body) = http_get(smsfold, path).unwrap_or_else(|error| panic!("GET {path} failed: {error}"));
        assert_eq!(status, expected, "GET {path} (the Kubernetes probe path) returned {status}: {body}");
    }

    let present: BTreeSet<String> = prometheus
        .api("/api/v1/label/__name__/values")
        .expect("metric names")
        .as_array()
        .expect("a list of names")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    let mut report = Report { present, ..Report::default() };

    // Every query of the dashboard.
    let dashboard_path = repo_root().join("deploy/grafana/dashboards/smsfold.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&dashboard_path).expect("read the dashboard")).expect("dashboard JSON");
    let mut queries = Vec::new();
    dashboard_queries(dashboard["panels"].as_array().expect("panels"), &mut queries);
    assert!(queries.len() >= 20, "found only {} queries in {}", queries.len(), dashboard_path.display());
    for (title, expr) in &queries {
        report.returns_data(&prometheus, &format!("dashboard panel {title:?}"), &substitute_variables(expr));
    }

    // The dashboard's query variables, label_values(SELECTOR, LABEL):
    // SELECTOR must return series that carry LABEL.
    for variable in dashboard["templating"]["list"].as_array().expect("templating list") {
        if variable["type"] != "query" {
            continue;
        }
        let definition = variable["definition"].as_str().expect("a variable definition");
        let inner = definition.strip_prefix("label_values(").and_then(|rest| rest.strip_suffix(')')).expect("label_values(...)");
        let (selector, label) = inner.rsplit_once(',').expect("label_values(SELECTOR, LABEL)");
        let series = prometheus.query(&substitute_variables(selector.trim())).expect("variable query");
        let label = label.trim();
        report.checked += 1;
        if !series.iter().any(|one| one["metric"][label].is_string()) {
            report.failures.push(format!("dashboard variable {}: {selector} returned no series with label {label}", variable["name"]));
        }
    }

    // Every alert rule: evaluated without error, listed in ALERT_INPUTS, and
    // its inputs return data.
    prometheus.wait_until(TIMEOUT, "every alert rule to be evaluated", || {
        alert_rules(&prometheus).iter().all(|rule| rule["health"] != "unknown")
    });
    let rules = alert_rules(&prometheus);
    let inputs: BTreeMap<&str, &[&str]> = ALERT_INPUTS.into_iter().collect();
    let names: BTreeSet<&str> = rules.iter().filter_map(|rule| rule["name"].as_str()).collect();
    assert_eq!(names, inputs.keys().copied().collect(), "ALERT_INPUTS must list every rule of deploy/prometheus/alerts.yml");
    for rule in &rules {
        let name = rule["name"].as_str().expect("rule name");
        let expr = rule["query"].as_str().expect("rule query");
        report.checked += 1;
        if rule["health"] != "ok" {
            report.failures.push(format!("alert {name}: health {} ({})", rule["health"], rule["lastError"]));
        }
        if let Err(error) = prometheus.query(expr) {
            report.failures.push(format!("alert {name}: {error}"));
        }
        for input in inputs[name] {
            if without_whitespace(expr).contains(&without_whitespace(input)) {
                report.returns_data(&prometheus, &format!("alert {name}"), input);
            } else {
                report.failures.push(format!("alert {name}: ALERT_INPUTS lists {input}, which is not part of its expression {expr}"));
            }
        }
    }

    // The demo's two poison records fire SmsfoldDeadLetters; smsfold is up.
    let alerts = prometheus.api("/api/v1/alerts").expect("alerts");
    let active: Vec<(String, String, String)> = alerts["alerts"]
        .as_array()
        .expect("alerts list")
        .iter()
        .map(|alert| {
            let text = |field: &Value| field.as_str().unwrap_or_default().to_owned();
            (text(&alert["labels"]["alertname"]), text(&alert["labels"]["reason"]), text(&alert["state"]))
        })
        .collect();
    for reason in ["invalid_json", "key_mismatch"] {
        assert!(
            active.contains(&("SmsfoldDeadLetters".to_owned(), reason.to_owned(), "firing".to_owned())),
            "SmsfoldDeadLetters is not firing for {reason}; active alerts: {active:?}"
        );
    }
    for quiet in ["SmsfoldDown", "SmsfoldAbsent"] {
        assert!(!active.iter().any(|(name, _, _)| name == quiet), "{quiet} is active while smsfold is up: {active:?}");
    }

    let reasons: BTreeSet<String> = prometheus
        .query(r#"sum by (reason) (smsfold_dead_letters_total{job="smsfold"})"#)
        .expect("dead letters by reason")
        .iter()
        .filter_map(|series| series["metric"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(reasons, BTreeSet::from(["invalid_json".to_owned(), "key_mismatch".to_owned()]), "dead-letter reasons of the demo");

    println!("checked {} queries, skipped {}", report.checked, report.skipped);
    assert!(
        report.failures.is_empty(),
        "{} of {} queries failed:\n{}\nPrometheus log:\n{}",
        report.failures.len(),
        report.checked,
        report.failures.join("\n"),
        prometheus.log()
    );

    let _ = shutdown_tx.send(true);
    runtime.block_on(async {
        let stopped = tokio::time::timeout(Duration::from_secs(60), running).await;
        stopped.expect("worker stops within 60 s").expect("worker task").expect("worker result");
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    });
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&dir);
}
