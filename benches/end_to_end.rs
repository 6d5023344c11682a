//! End-to-end benchmarks of the worker on a real Kafka broker:
//!
//! 1. throughput, exactly-once against at-least-once: one in-process worker
//!    folds the same pre-produced protobuf events once per guarantee and
//!    run, timed from start until its group's committed offsets reach the
//!    ends of every topic it consumes;
//! 2. restore rate: `smsfold run` folds the traffic of 1,000,000 messages
//!    once, and then an in-process worker of the same group is timed from
//!    start until it is ready, with the records and seconds of its restore;
//! 3. ready again after SIGKILL: `target/release/smsfold run` over the same
//!    group is killed with SIGKILL and started again, timed until
//!    `GET /readyz` returns 200.
//!
//! Run: `scripts/kafka-broker.sh start && cargo bench --bench end_to_end`.
//! The benchmark builds `smsfold` with `cargo build --release -p smsfold`.
//! The broker is `SMSFOLD_TEST_BOOTSTRAP` (default 127.0.0.1:19092). Every
//! run uses fresh topics and groups and deletes them at the end, unless a
//! phase fails. Settings, from the environment:
//!
//! | Variable | Default | What it sets |
//! |---|---|---|
//! | `SMSFOLD_BENCH_EVENTS` | 1000000 | Message events of the throughput input (at least) |
//! | `SMSFOLD_BENCH_LIVE_MESSAGES` | 1000000 | Messages behind the restore and SIGKILL phases |
//! | `SMSFOLD_BENCH_RUNS` | 3 | Runs per measurement; the median is reported |
//! | `SMSFOLD_BENCH_PHASES` | throughput,restore,recovery | Phases to run |
//! | `SMSFOLD_BENCH_BATCH_MAX_RECORDS` | 5000 | `WorkerConfig::batch_max_records` in phase 1 |
//! | `SMSFOLD_BENCH_BATCH_MAX_WAIT_MS` | 100 | `WorkerConfig::batch_max_wait` in phase 1 |
//! | `SMSFOLD_BENCH_BATCH_IDLE_MS` | 5 | `WorkerConfig::batch_idle` in phase 1 |
//! | `SMSFOLD_BENCH_GROUP_PROTOCOL` | consumer | `consumer` (KIP-848, the worker's default) or `classic` |
//! | `SMSFOLD_BENCH_KAFKA_PROPERTIES` | none | `KEY=VALUE,...` librdkafka properties for every worker client (`--kafka-property`) |
//! | `SMSFOLD_BENCH_KEEP_TOPICS` | unset | Set to 1 to keep the topics for inspection |
//!
//! Under `cargo test` a benchmark binary runs without the `--bench`
//! argument that `cargo bench` passes, and this one then only prints that
//! it was skipped.

mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use smsfold_wire::Format;
use smsfold_worker::{metrics, GroupProtocol, Guarantee, Topics, Worker, WorkerConfig};
use tokio::runtime::Runtime;
use tokio::sync::watch;

use support::child::{self, Launch, WorkerProcess};
use support::kafka::{self, Consumed, GroupProgress, Kafka};
use support::workload::{Expected, Traffic};
use support::{grouped, median, metric_sum};

const PRODUCE_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const THROUGHPUT_RUN_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(40 * 60);
const READY_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a count of output records waits for the next record.
const COUNT_IDLE: Duration = Duration::from_secs(60);
/// The instance id of every worker. Static membership lets a restarted
/// instance take its partitions back without a rebalance.
const INSTANCE_ID: &str = "bench";

/// Targets, as stated next to each figure.
const MIN_RATIO: f64 = 0.85;
const MIN_RESTORE_RATE: f64 = 1_000_000.0;
const MAX_READY_SECONDS: f64 = 10.0;

fn main() -> ExitCode {
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("end_to_end: skipped (no --bench argument); run it with `cargo bench --bench end_to_end` against a broker");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("end_to_end: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The settings of one benchmark run, read from the environment.
struct Settings {
    events: usize,
    live_messages: usize,
    runs: usize,
    throughput: bool,
    restore: bool,
    recovery: bool,
    batch_max_records: usize,
    batch_max_wait: Duration,
    batch_idle: Duration,
    group_protocol: GroupProtocol,
    /// librdkafka properties passed to every worker, in order.
    kafka_properties: Vec<(String, String)>,
    keep_topics: bool,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let phases = std::env::var("SMSFOLD_BENCH_PHASES").unwrap_or_else(|_| "throughput,restore,recovery".to_owned());
        let phases: Vec<&str> = phases.split(',').map(str::trim).collect();
        for phase in &phases {
            if !["throughput", "restore", "recovery"].contains(phase) {
                bail!("invalid setting SMSFOLD_BENCH_PHASES: unknown phase {phase:?}; list some of throughput,restore,recovery");
            }
        }
        let group_protocol = match std::env::var("SMSFOLD_BENCH_GROUP_PROTOCOL").as_deref() {
            Err(_) | Ok("consumer") => GroupProtocol::Consumer,
            Ok("classic") => GroupProtocol::Classic,
            Ok(other) => bail!("invalid setting SMSFOLD_BENCH_GROUP_PROTOCOL={other:?}: use consumer or classic"),
        };
        let mut kafka_properties = Vec::new();
        let listed = std::env::var("SMSFOLD_BENCH_KAFKA_PROPERTIES").unwrap_or_default();
        for pair in listed.split(',').map(str::trim).filter(|pair| !pair.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("invalid setting SMSFOLD_BENCH_KAFKA_PROPERTIES: {pair:?} is not KEY=VALUE");
            };
            kafka_properties.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        let settings = Settings {
            events: env_number("SMSFOLD_BENCH_EVENTS", 1_000_000)?,
            live_messages: env_number("SMSFOLD_BENCH_LIVE_MESSAGES", 1_000_000)?,
            runs: env_number("SMSFOLD_BENCH_RUNS", 3)?,
            throughput: phases.contains(&"throughput"),
            restore: phases.contains(&"restore"),
            recovery: phases.contains(&"recovery"),
            batch_max_records: env_number("SMSFOLD_BENCH_BATCH_MAX_RECORDS", 5_000)?,
            batch_max_wait: Duration::from_millis(env_number("SMSFOLD_BENCH_BATCH_MAX_WAIT_MS", 100)? as u64),
            batch_idle: Duration::from_millis(env_number("SMSFOLD_BENCH_BATCH_IDLE_MS", 5)? as u64),
            group_protocol,
            kafka_properties,
            keep_topics: std::env::var("SMSFOLD_BENCH_KEEP_TOPICS").is_ok_and(|value| value == "1"),
        };
        if settings.events == 0 || settings.live_messages == 0 || settings.runs == 0 {
            bail!("invalid settings: SMSFOLD_BENCH_EVENTS, SMSFOLD_BENCH_LIVE_MESSAGES and SMSFOLD_BENCH_RUNS must be positive");
        }
        Ok(settings)
    }
}

fn env_number(name: &str, default: usize) -> anyhow::Result<usize> {
    match std::env::var(name) {
        Ok(value) => value
            .replace('_', "")
            .parse()
            .with_context(|| format!("invalid setting {name}={value:?}: expected a whole number")),
        Err(_) => Ok(default),
    }
}

/// State shared by every phase.
struct Bench {
    settings: Settings,
    kafka: Kafka,
    runtime: Runtime,
    render_metrics: Box<dyn Fn() -> String>,
    repository: PathBuf,
    log_dir: PathBuf,
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let kafka = Kafka::connect(kafka::bootstrap(), runtime.handle().clone())?;
    let handle = metrics::install().context("could not install the Prometheus recorder")?;
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("end_to_end"));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("could not create {}", log_dir.display()))?;

    println!("end_to_end: end-to-end benchmarks of the smsfold worker");
    support::machine::print(&repository, &kafka.bootstrap);
    println!("worker logs: {}", log_dir.display());
    println!("consumer group protocol: {}", child::protocol_name(settings.group_protocol));
    let properties: Vec<String> = settings.kafka_properties.iter().map(|(key, value)| format!("{key}={value}")).collect();
    println!("extra librdkafka properties of the workers: {}", if properties.is_empty() { "none".to_owned() } else { properties.join(", ") });
    let bench = Bench { settings, kafka, runtime, render_metrics: Box::new(move || handle.render()), repository, log_dir };

    let mut summary = Vec::new();
    if bench.settings.throughput {
        summary.extend(throughput(&bench)?);
    }
    if bench.settings.restore || bench.settings.recovery {
        summary.extend(restore_and_recovery(&bench)?);
    }
    println!();
    println!("== summary ==");
    for line in summary {
        println!("{line}");
    }
    Ok(())
}

/// Returns a topic or group name no other run uses.
fn unique(name: &str) -> String {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{name}-{stamp}-{}", std::process::id())
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "missed"
    }
}

/// Creates the input topics (6 message partitions, 3 campaign partitions)
/// and produces the traffic: campaign openings, message events, closings.
fn produce_traffic(bench: &Bench, topics: &Topics, traffic: &Traffic) -> anyhow::Result<()> {
    let kafka = &bench.kafka;
    kafka.create_topics(&[(&topics.message_events, 6, false), (&topics.campaign_events, 3, false)])?;
    let started = Instant::now();
    kafka.produce(&topics.campaign_events, traffic.campaign_openings(), PRODUCE_TIMEOUT)?;
    let events = kafka.produce(&topics.message_events, traffic.message_events(), PRODUCE_TIMEOUT)?;
    kafka.produce(&topics.campaign_events, traffic.campaign_closings(), PRODUCE_TIMEOUT)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "produced {} message events of {} messages and {} campaign events in {seconds:.1} s ({} events/s)",
        grouped(events as f64),
        grouped(traffic.messages() as f64),
        3 * support::workload::CAMPAIGNS,
        grouped(events as f64 / seconds),
    );
    Ok(())
}

/// Lists the topics a worker group consumes, inputs first.
fn consumed(topics: &Topics, guarantee: Guarantee) -> Vec<Consumed> {
    let transactional = guarantee == Guarantee::ExactlyOnce;
    vec![
        Consumed { topic: topics.message_events.clone(), transactional: false },
        Consumed { topic: topics.campaign_events.clone(), transactional: false },
        Consumed { topic: topics.campaign_stage.clone(), transactional },
        Consumed { topic: topics.message_commands.clone(), transactional },
        Consumed { topic: topics.carrier_join.clone(), transactional },
    ]
}

/// Creates the topics the worker would create at start-up, with the same
/// partition counts and settings, so that the broker serves every
/// partition before the worker starts.
// NOTE: a worker that creates its changelogs itself can stop at start-up
// with NotLeaderForPartition, because its restore reads the watermarks of
// the new changelog partitions once, before the broker may serve them.
fn create_worker_topics(bench: &Bench, topics: &Topics, group: &str) -> anyhow::Result<()> {
    let message_changelog = format!("{group}-message-changelog");
    let campaign_changelog = format!("{group}-campaign-changelog");
    let carrier_changelog = format!("{group}-carrier-changelog");
    bench.kafka.create_topics(&[
        (&topics.message_commands, 6, false),
        (&topics.campaign_stage, 6, false),
        (&topics.carrier_join, 6, false),
        (&topics.message_changes, 6, false),
        (&topics.campaign_changes, 6, false),
        (&topics.dead_letter, 6, false),
        (&message_changelog, 6, true),
        (&campaign_changelog, 6, true),
        (&carrier_changelog, 6, true),
    ])
}

/// Lists every topic a worker with `topics` and `group` reads or writes.
fn all_topics(topics: &Topics, group: &str) -> Vec<String> {
    let mut names: Vec<String> = topics.named().iter().map(|(_, name)| (*name).to_owned()).collect();
    names.push(format!("{group}-message-changelog"));
    names.push(format!("{group}-campaign-changelog"));
    names.push(format!("{group}-carrier-changelog"));
    names
}

fn delete_topics(bench: &Bench, topics: Vec<String>) {
    if bench.settings.keep_topics {
        println!("kept topics: {}", topics.join(", "));
        return;
    }
    if let Err(error) = bench.kafka.delete_topics(&topics) {
        eprintln!("end_to_end: warning: {error:#}; delete them by hand: {}", topics.join(", "));
    }
}

fn worker_config(bench: &Bench, group: &str, topics: &Topics, guarantee: Guarantee) -> WorkerConfig {
    let mut config = WorkerConfig::new(bench.kafka.bootstrap.clone());
    config.group_id = group.to_owned();
    config.instance_id = INSTANCE_ID.to_owned();
    config.guarantee = guarantee;
    config.group_protocol = bench.settings.group_protocol;
    config.kafka_properties = bench.settings.kafka_properties.iter().cloned().collect();
    config.topics = topics.clone();
    config.output_format = Format::Protobuf;
    config
}

/// An in-process worker running on the benchmark's runtime.
struct RunningWorker {
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    projections: std::sync::Arc<std::sync::Mutex<smsfold_worker::Projections>>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), smsfold_worker::WorkerError>>,
}

impl RunningWorker {
    fn start(bench: &Bench, config: WorkerConfig) -> anyhow::Result<Self> {
        let worker = Worker::new(config)?;
        let (shutdown, receiver) = watch::channel(false);
        let ready = worker.ready();
        let projections = worker.projections();
        let task = bench.runtime.spawn(worker.run(receiver));
        Ok(RunningWorker { ready, projections, shutdown, task })
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Fails, with the worker's error, when the worker stopped by itself.
    fn check_running(&mut self, bench: &Bench) -> anyhow::Result<()> {
        if !self.task.is_finished() {
            return Ok(());
        }
        match bench.runtime.block_on(&mut self.task) {
            Ok(Ok(())) => bail!("the worker stopped before the phase ended"),
            Ok(Err(error)) => bail!("the worker stopped before the phase ended: {error}"),
            Err(error) => bail!("the worker task failed: {error}"),
        }
    }

    /// Asks the worker to commit its open batch and stop, and waits for it.
    fn stop(self, bench: &Bench) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let result = bench
            .runtime
            .block_on(async { tokio::time::timeout(STOP_TIMEOUT, self.task).await })
            .with_context(|| format!("the worker did not stop within {} s", STOP_TIMEOUT.as_secs()))?;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => bail!("the worker failed: {error}"),
            Err(error) => bail!("the worker task failed: {error}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Phase 1: throughput, exactly-once against at-least-once.

struct ThroughputRun {
    guarantee: Guarantee,
    /// From start until every offset is committed.
    seconds: f64,
    /// From start until the worker held its partitions.
    ready_seconds: f64,
}

fn throughput(bench: &Bench) -> anyhow::Result<Vec<String>> {
    let settings = &bench.settings;
    println!();
    println!("== 1. throughput: exactly-once against at-least-once ==");
    let prefix = unique("e2e-throughput");
    let inputs = Topics::with_prefix(&format!("{prefix}-"));
    let messages = Traffic::messages_for_events(settings.events);
    let traffic = Traffic::new(messages, now_ms());
    let expected = traffic.expected();
    produce_traffic(bench, &inputs, &traffic)?;
    println!(
        "worker settings: batch_max_records {}, batch_max_wait {} ms, batch_idle {} ms, output protobuf, one instance, 2 runtime threads",
        settings.batch_max_records,
        settings.batch_max_wait.as_millis(),
        settings.batch_idle.as_millis()
    );
    println!(
        "expected per run: {} message status changes (a pure fold of the input)",
        grouped(expected.message_changes as f64)
    );

    // Alternate the order per run, so neither guarantee always runs first.
    let mut runs = Vec::new();
    for run in 0..settings.runs {
        let order = if run % 2 == 0 {
            [Guarantee::ExactlyOnce, Guarantee::AtLeastOnce]
        } else {
            [Guarantee::AtLeastOnce, Guarantee::ExactlyOnce]
        };
        for guarantee in order {
            runs.push(throughput_run(bench, &prefix, &inputs, &expected, guarantee, run)?);
        }
    }
    delete_topics(bench, vec![inputs.message_events.clone(), inputs.campaign_events.clone()]);

    let events = expected.events as f64 + 3.0 * support::workload::CAMPAIGNS as f64;
    let rates = |guarantee: Guarantee, after_ready: bool| -> Vec<f64> {
        let of = |run: &ThroughputRun| if after_ready { run.seconds - run.ready_seconds } else { run.seconds };
        runs.iter().filter(|run| run.guarantee == guarantee).map(|run| events / of(run)).collect()
    };
    let exactly_once = rates(Guarantee::ExactlyOnce, false);
    let at_least_once = rates(Guarantee::AtLeastOnce, false);
    let ratio = median(&exactly_once) / median(&at_least_once);
    let ratio_after_ready =
        median(&rates(Guarantee::ExactlyOnce, true)) / median(&rates(Guarantee::AtLeastOnce, true));
    let list = |rates: &[f64]| rates.iter().map(|rate| grouped(*rate)).collect::<Vec<_>>().join(", ");
    Ok(vec![
        format!(
            "1. throughput over {} events, median of {} runs, from start until every offset is committed:",
            grouped(events),
            settings.runs
        ),
        format!("   exactly-once:  {} events/s (runs: {})", grouped(median(&exactly_once)), list(&exactly_once)),
        format!("   at-least-once: {} events/s (runs: {})", grouped(median(&at_least_once)), list(&at_least_once)),
        format!("   ratio exactly-once / at-least-once: {ratio:.3} (target >= {MIN_RATIO}: {})", verdict(ratio >= MIN_RATIO)),
        format!("   the same ratio timed from ready instead of start: {ratio_after_ready:.3}"),
    ])
}

fn throughput_run(
    bench: &Bench,
    prefix: &str,
    inputs: &Topics,
    expected: &Expected,
    guarantee: Guarantee,
    run: usize,
) -> anyhow::Result<ThroughputRun> {
    let kafka = &bench.kafka;
    let label = match guarantee {
        Guarantee::ExactlyOnce => "exactly-once",
        Guarantee::AtLeastOnce => "at-least-once",
    };
    let run_prefix = format!("{prefix}-{label}-{run}-");
    let mut topics = Topics::with_prefix(&run_prefix);
    topics.message_events = inputs.message_events.clone();
    topics.campaign_events = inputs.campaign_events.clone();
    let group = format!("{run_prefix}group");
    let mut config = worker_config(bench, &group, &topics, guarantee);
    config.batch_max_records = bench.settings.batch_max_records;
    config.batch_max_wait = bench.settings.batch_max_wait;
    config.batch_idle = bench.settings.batch_idle;
    create_worker_topics(bench, &topics, &group)?;
    let progress = GroupProgress::new(kafka, &group, consumed(&topics, guarantee))?;

    let batches_before = metric_sum(&(bench.render_metrics)(), metrics::BATCHES);
    let started = Instant::now();
    let mut worker = RunningWorker::start(bench, config)?;
    let mut ready_seconds = None;
    let mut last_report = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        worker.check_running(bench)?;
        if ready_seconds.is_none() && worker.is_ready() {
            ready_seconds = Some(started.elapsed().as_secs_f64());
        }
        let lag = progress.lag(kafka);
        if lag.done() {
            break;
        }
        if started.elapsed() > THROUGHPUT_RUN_TIMEOUT {
            bail!(
                "{label} run {run} timed out after {} s with {} records still to consume (last error: {})",
                THROUGHPUT_RUN_TIMEOUT.as_secs(),
                lag.remaining,
                lag.error.as_deref().unwrap_or("none")
            );
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!("  {label} run {run}: {:.0} s, {} records still to consume", started.elapsed().as_secs_f64(), grouped(lag.remaining as f64));
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    worker.stop(bench)?;
    let batches = metric_sum(&(bench.render_metrics)(), metrics::BATCHES) - batches_before;

    let changes = kafka.count_records(&topics.message_changes, expected.message_changes, COUNT_IDLE)?;
    if changes != expected.message_changes {
        bail!(
            "{label} run {run} published {changes} message status changes, expected {}; topics kept with prefix {run_prefix}",
            expected.message_changes
        );
    }
    // The input topics are shared by every run and deleted at the end.
    let outputs = all_topics(&topics, &group).into_iter().filter(|name| !inputs.named().iter().any(|(_, input)| input == name));
    delete_topics(bench, outputs.collect());

    let ready_seconds = ready_seconds.unwrap_or(f64::NAN);
    let events = expected.events as f64 + 3.0 * support::workload::CAMPAIGNS as f64;
    println!(
        "{label} run {run}: {seconds:.2} s from start to all offsets committed, {} events/s; ready after {ready_seconds:.2} s, \
         {} events/s after ready; {batches:.0} batches, {:.0} input events per batch; {changes} message changes checked",
        grouped(events / seconds),
        grouped(events / (seconds - ready_seconds)),
        events / batches,
    );
    Ok(ThroughputRun { guarantee, seconds, ready_seconds })
}

// ---------------------------------------------------------------------------
// Phases 2 and 3: restore rate, and ready again after SIGKILL.

fn restore_and_recovery(bench: &Bench) -> anyhow::Result<Vec<String>> {
    let settings = &bench.settings;
    println!();
    println!("== setup for 2 and 3: {} live messages through `smsfold run` ==", grouped(settings.live_messages as f64));
    let binary = child::build_binary(&bench.repository)?;
    let prefix = unique("e2e-restore");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    let group = format!("{prefix}-group");
    let traffic = Traffic::new(settings.live_messages, now_ms());
    let expected = traffic.expected();
    produce_traffic(bench, &topics, &traffic)?;
    let launch = Launch {
        binary,
        bootstrap: bench.kafka.bootstrap.clone(),
        group: group.clone(),
        instance: INSTANCE_ID.to_owned(),
        group_protocol: settings.group_protocol,
        kafka_properties: settings.kafka_properties.clone(),
        topics: topics.clone(),
        log_dir: bench.log_dir.clone(),
        extra_args: Vec::new(),
    };
    create_worker_topics(bench, &topics, &group)?;
    let progress = GroupProgress::new(&bench.kafka, &group, consumed(&topics, Guarantee::ExactlyOnce))?;
    let started = Instant::now();
    let (mut process, _, _) = child::start_until_ready(&launch, "setup", READY_TIMEOUT)?;
    wait_caught_up(bench, &progress, &mut process)?;
    println!("`smsfold run` (exactly-once) consumed the input in {:.1} s", started.elapsed().as_secs_f64());
    process.terminate(STOP_TIMEOUT)?;
    drop(process);
    changelog_sizes(bench, &group)?;

    let mut summary = Vec::new();
    if settings.restore {
        summary.extend(restore(bench, &launch, &expected)?);
    }
    if settings.recovery {
        summary.extend(recovery(bench, &launch, &progress, &expected)?);
    }
    delete_topics(bench, all_topics(&topics, &group));
    Ok(summary)
}

/// Waits until the worker process committed every offset of its inputs and
/// internal topics.
fn wait_caught_up(bench: &Bench, progress: &GroupProgress, process: &mut WorkerProcess) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        process.check_running()?;
        let lag = progress.lag(&bench.kafka);
        if lag.done() {
            return Ok(());
        }
        if started.elapsed() > CATCH_UP_TIMEOUT {
            bail!(
                "smsfold did not catch up within {} s: {} records still to consume (last error: {}); its log is {}",
                CATCH_UP_TIMEOUT.as_secs(),
                lag.remaining,
                lag.error.as_deref().unwrap_or("none"),
                process.log.display()
            );
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!("  catching up: {:.0} s, {} records still to consume", started.elapsed().as_secs_f64(), grouped(lag.remaining as f64));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints how many records each changelog contains, counted by reading it
/// as a restore reads it.
fn changelog_sizes(bench: &Bench, group: &str) -> anyhow::Result<()> {
    for changelog in [
        format!("{group}-message-changelog"),
        format!("{group}-campaign-changelog"),
        format!("{group}-carrier-changelog"),
    ] {
        let records = bench.kafka.count_records(&changelog, 0, COUNT_IDLE)?;
        println!("{changelog}: {} records", grouped(records as f64));
    }
    Ok(())
}

fn restore(bench: &Bench, launch: &Launch, expected: &Expected) -> anyhow::Result<Vec<String>> {
    println!();
    println!("== 2. restore rate: an in-process worker of the same group, start to ready ==");
    let mut rates = Vec::new();
    let mut ready_times = Vec::new();
    for run in 0..bench.settings.runs {
        let config = worker_config(bench, &launch.group, &launch.topics, Guarantee::ExactlyOnce);
        let before = (bench.render_metrics)();
        let started = Instant::now();
        let mut worker = RunningWorker::start(bench, config)?;
        while !worker.is_ready() {
            worker.check_running(bench)?;
            if started.elapsed() > READY_TIMEOUT {
                bail!("restore run {run}: the worker was not ready within {} s", READY_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let ready = started.elapsed().as_secs_f64();
        let after = (bench.render_metrics)();
        let delta = |name: &str| metric_sum(&after, name) - metric_sum(&before, name);
        let records = delta(metrics::RESTORED_RECORDS);
        let seconds = delta(&format!("{}_sum", metrics::RESTORE_DURATION));
        let restores = delta(&format!("{}_count", metrics::RESTORE_DURATION));
        let live = worker.projections.lock().unwrap_or_else(|e| e.into_inner()).live_messages() as u64;
        worker.stop(bench)?;
        if live != expected.live_messages {
            bail!("restore run {run}: the worker contains {live} messages after the restore, expected {}", expected.live_messages);
        }
        let rate = records / seconds;
        println!(
            "restore run {run}: ready after {ready:.2} s; {restores:.0} restore of {} records in {seconds:.2} s, {} records/s; {} live messages checked",
            grouped(records),
            grouped(rate),
            grouped(live as f64),
        );
        rates.push(rate);
        ready_times.push(ready);
    }
    let rate = median(&rates);
    Ok(vec![
        format!("2. restore, {} live messages, median of {} runs:", grouped(expected.live_messages as f64), rates.len()),
        format!("   {} records/s (target >= {}: {})", grouped(rate), grouped(MIN_RESTORE_RATE), verdict(rate >= MIN_RESTORE_RATE)),
        format!("   start to ready: {:.2} s", median(&ready_times)),
    ])
}

fn recovery(bench: &Bench, launch: &Launch, progress: &GroupProgress, expected: &Expected) -> anyhow::Result<Vec<String>> {
    println!();
    println!("== 3. ready again after SIGKILL: `smsfold run`, killed and started again ==");
    println!("a start that exits before it is ready is started again after 100 ms, as systemd does by default");
    let (mut process, _, _) = child::start_until_ready(launch, "recovery-0", READY_TIMEOUT)?;
    wait_caught_up(bench, progress, &mut process)?;

    let mut ready_times = Vec::new();
    let mut starts = Vec::new();
    for run in 1..=bench.settings.runs {
        process.kill();
        let started = Instant::now();
        let (restarted, ready_at, exits) = child::start_until_ready(launch, &format!("recovery-{run}"), READY_TIMEOUT)?;
        process = restarted;
        let ready = ready_at.duration_since(started).as_secs_f64();
        let mut reasons: Vec<(&str, usize)> = Vec::new();
        for reason in &exits {
            match reasons.iter_mut().find(|(known, _)| known == reason) {
                Some((_, count)) => *count += 1,
                None => reasons.push((reason, 1)),
            }
        }
        for (reason, count) in reasons {
            println!("  recovery run {run}: {count} starts exited before they were ready: {reason}");
        }

        // The campaign counts come from the campaign changelog, so they
        // show whether the restarted worker restored every message.
        let messages = child::campaign_messages(process.http)?;
        if messages != expected.live_messages {
            bail!("recovery run {run}: the campaigns count {messages} messages after the restart, expected {}", expected.live_messages);
        }
        let restore = child::restore_lines(&process.log)?;
        let restore = restore.last().map_or_else(
            || "no restore line in the log".to_owned(),
            |line| format!("restore of {} records in {:.2} s", grouped(line.records as f64), line.seconds),
        );
        println!(
            "recovery run {run}: GET /readyz returned 200 after {ready:.2} s and {} starts; {restore}; {} campaign messages checked",
            exits.len() + 1,
            grouped(messages as f64)
        );
        ready_times.push(ready);
        starts.push(exits.len() + 1);
        wait_caught_up(bench, progress, &mut process)?;
    }
    process.terminate(STOP_TIMEOUT)?;

    let ready = median(&ready_times);
    let list = ready_times.iter().map(|seconds| format!("{seconds:.2}")).collect::<Vec<_>>().join(", ");
    let starts = starts.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
    Ok(vec![
        format!("3. ready after SIGKILL, {} live messages, median of {} runs:", grouped(expected.live_messages as f64), ready_times.len()),
        format!("   {ready:.2} s (runs: {list}; starts per run: {starts}) (target <= {MAX_READY_SECONDS} s: {})", verdict(ready <= MAX_READY_SECONDS)),
    ])
}
