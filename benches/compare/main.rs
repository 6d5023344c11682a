//! Side-by-side benchmark of smsfold, the raw broker ceiling and Kafka
//! Streams, on one broker and one input:
//!
//! - **pipe**: `smsfold-pipe` (bench/pipe), a transactional
//!   consume-and-produce copy with no logic, on smsfold's client library
//!   and settings: the ceiling;
//! - **smsfold**: `smsfold run`, exactly-once, protobuf output;
//! - **kafka-streams**: the Kafka Streams application under
//!   bench/kafka-streams, the same folds with exactly_once_v2.
//!
//! Phases, in order:
//! 1. check: smsfold and Kafka Streams fold the same input and their outputs
//!    are compared (see `check.rs`); the benchmark stops if they differ;
//! 2. saturation: each system consumes the same pre-produced input as fast
//!    as it can (see `saturation.rs`), several runs in rotating order;
//! 3. latency: each system at fixed input rates, 25% and 50% of smsfold's
//!    median saturation throughput (see `latency.rs`).
//!
//! Every system runs as a child process, so its CPU time and memory come
//! from `/proc`. Run it with `scripts/compare.sh`, which builds the Kafka
//! Streams jar and starts the broker, or `cargo bench --bench compare`.
//! Under `cargo test` it only prints that it was skipped. Settings, from the
//! environment:
//!
//! | Variable | Default | What it sets |
//! |---|---|---|
//! | `SMSFOLD_TEST_BOOTSTRAP` | 127.0.0.1:19092 | The broker |
//! | `SMSFOLD_COMPARE_PHASES` | check,saturation,latency | Phases to run |
//! | `SMSFOLD_COMPARE_SYSTEMS` | pipe,smsfold,kafka-streams | Systems to measure (the check always runs smsfold and Kafka Streams) |
//! | `SMSFOLD_COMPARE_MESSAGES` | 1000000 | Messages of the saturation input (about 4.5 events each) |
//! | `SMSFOLD_COMPARE_CHECK_MESSAGES` | 20000 | Messages of the check input |
//! | `SMSFOLD_COMPARE_RUNS` | 3 | Runs per measurement; medians are reported |
//! | `SMSFOLD_COMPARE_WARMUP_ROUNDS` | 1 | Saturation rounds (one run of each system) before the counted runs, so that the broker's JVM has compiled its hot code; their figures are printed but not counted |
//! | `SMSFOLD_COMPARE_WARMUP_SECONDS` | 60 | Load before the measured period of a latency run; the Kafka Streams JVM still compiles after 10 s |
//! | `SMSFOLD_COMPARE_MEASURE_SECONDS` | 20 | Measured period of a latency run |
//! | `SMSFOLD_COMPARE_FULL_RATE` | smsfold's saturation median | Events/s that the latency rates are shares of |
//! | `SMSFOLD_COMPARE_JAVA_HEAP` | 1g | `-Xmx` of the Kafka Streams JVM |
//! | `SMSFOLD_COMPARE_STREAMS_THREADS` | 2 | `num.stream.threads` |
//! | `SMSFOLD_COMPARE_PIPELINES` | 2 | smsfold's and the pipe's `--pipelines` |
//! | `SMSFOLD_COMPARE_COMMIT_INTERVAL_MS` | 100 | How long a transaction stays open: smsfold's and the pipe's `--batch-max-wait-ms`, Kafka Streams' `commit.interval.ms` (each one's default is 100) |
//! | `SMSFOLD_COMPARE_SMSFOLD` | the `smsfold` this benchmark builds | Another smsfold program to start, for example a profiler's wrapper (`scripts/heap-profile.sh`) |
//! | `SMSFOLD_COMPARE_JAR` | bench/kafka-streams/target/smsfold-kafka-streams.jar | The Kafka Streams application |
//! | `SMSFOLD_COMPARE_KEEP_TOPICS` | unset | Set to 1 to keep topics and state for inspection |
//! | `SMSFOLD_COMPARE_BROKER_PID` | the local broker's, from scripts/compare.sh | Process whose CPU time the saturation runs also report per event |
//! | `SMSFOLD_BENCH_WORKER_LOG` | `warn,smsfold_worker=info` | smsfold's `RUST_LOG`; its log is in the directory the header's `logs:` line names |

#[allow(dead_code)]
#[path = "../support/mod.rs"]
mod support;

mod check;
mod latency;
mod saturation;
mod systems;
mod traffic;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use support::kafka::{self, Kafka};
use support::{grouped, median};
use systems::{Inputs, Programs, System};

/// Targets, as the summary states them.
const MIN_SHARE_OF_CEILING: f64 = 0.8;
const MIN_TIMES_STREAMS: f64 = 3.0;
const MAX_SHARE_OF_STREAMS_MEMORY: f64 = 0.25;
const MAX_P99_AT_HALF_LOAD_MS: f64 = 50.0;
/// The latency rates, as shares of the full rate.
const LOAD_SHARES: [f64; 2] = [0.25, 0.5];
const CHECK_TIMEOUT: Duration = Duration::from_secs(30 * 60);

fn main() -> ExitCode {
    if !std::env::args().any(|argument| argument == "--bench") {
        println!("compare: skipped (no --bench argument); run it with scripts/compare.sh against a broker");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compare: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    check: bool,
    saturation: bool,
    latency: bool,
    systems: Vec<System>,
    messages: u64,
    check_messages: u64,
    runs: usize,
    warm_up_rounds: usize,
    warm_up: Duration,
    measured: Duration,
    full_rate: Option<f64>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Settings> {
        let phases = std::env::var("SMSFOLD_COMPARE_PHASES").unwrap_or_else(|_| "check,saturation,latency".to_owned());
        let phases: Vec<&str> = phases.split(',').map(str::trim).collect();
        if let Some(unknown) = phases.iter().find(|phase| !["check", "saturation", "latency"].contains(phase)) {
            bail!("invalid SMSFOLD_COMPARE_PHASES: unknown phase {unknown:?}; list some of check,saturation,latency");
        }
        let listed = std::env::var("SMSFOLD_COMPARE_SYSTEMS").unwrap_or_else(|_| "pipe,smsfold,kafka-streams".to_owned());
        let mut systems = Vec::new();
        for name in listed.split(',').map(str::trim) {
            let system = System::parse(name)
                .with_context(|| format!("invalid SMSFOLD_COMPARE_SYSTEMS: unknown system {name:?}; list some of pipe,smsfold,kafka-streams"))?;
            systems.push(system);
        }

        let full_rate = match std::env::var("SMSFOLD_COMPARE_FULL_RATE") {
            Ok(value) => Some(value.parse::<f64>().with_context(|| format!("invalid SMSFOLD_COMPARE_FULL_RATE={value:?}: expected events per second"))?),
            Err(_) => None,
        };

        let settings = Settings {
            check: phases.contains(&"check"),
            saturation: phases.contains(&"saturation"),
            latency: phases.contains(&"latency"),
            systems,
            messages: env_number("SMSFOLD_COMPARE_MESSAGES", 1_000_000)?,
            check_messages: env_number("SMSFOLD_COMPARE_CHECK_MESSAGES", 20_000)?,
            runs: env_number("SMSFOLD_COMPARE_RUNS", 3)? as usize,
            warm_up_rounds: env_number("SMSFOLD_COMPARE_WARMUP_ROUNDS", 1)? as usize,
            warm_up: Duration::from_secs(env_number("SMSFOLD_COMPARE_WARMUP_SECONDS", 60)?),
            measured: Duration::from_secs(env_number("SMSFOLD_COMPARE_MEASURE_SECONDS", 20)?),
            full_rate,
        };

        if settings.messages == 0 || settings.check_messages == 0 || settings.runs == 0 || settings.measured.is_zero() {
            bail!("invalid settings: messages, check messages, runs and the measured period must be positive");
        }
        if settings.latency && !settings.saturation && settings.full_rate.is_none() {
            bail!("the latency phase needs smsfold's saturation figure: add the saturation phase or set SMSFOLD_COMPARE_FULL_RATE");
        }
        if settings.latency && settings.full_rate.is_none() && !settings.systems.contains(&System::Smsfold) {
            bail!("the latency rates are shares of smsfold's saturation figure: add smsfold to SMSFOLD_COMPARE_SYSTEMS or set SMSFOLD_COMPARE_FULL_RATE");
        }
        Ok(settings)
    }
}

pub fn env_number(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(value) => value.replace('_', "").parse().with_context(|| format!("invalid setting {name}={value:?}: expected a whole number")),
        Err(_) => Ok(default),
    }
}

/// Returns a name no other run uses.
fn unique(name: &str) -> String {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("{name}-{stamp}")
}

/// Deletes a finished run's topics and Kafka Streams state, unless they are
/// kept for inspection.
pub fn cleanup(kafka: &Kafka, programs: &Programs, prefix: &str, system: System, topics: Vec<String>) {
    if std::env::var("SMSFOLD_COMPARE_KEEP_TOPICS").is_ok_and(|value| value == "1") {
        println!("kept topics: {}", topics.join(", "));
        return;
    }
    if let Err(error) = kafka.delete_topics(&topics) {
        eprintln!("compare: warning: {error:#}; delete them by hand: {}", topics.join(", "));
    }
    if system == System::KafkaStreams {
        let state = programs.log_dir.join(format!("{prefix}-{}-state", system.name()));
        let _ = std::fs::remove_dir_all(state);
    }
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().context("could not start the async runtime")?;
    let kafka = Kafka::connect(kafka::bootstrap(), runtime.handle().clone())?;
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique("compare"));
    std::fs::create_dir_all(&log_dir).with_context(|| format!("could not create {}", log_dir.display()))?;
    let jar = std::env::var("SMSFOLD_COMPARE_JAR").map_or_else(|_| repository.join("bench/kafka-streams/target/smsfold-kafka-streams.jar"), PathBuf::from);
    let programs = systems::build(&repository, jar, kafka.bootstrap.clone(), log_dir.clone())?;

    println!("compare: smsfold, the transactional pipe and Kafka Streams on one broker");
    support::machine::print(&repository, &kafka.bootstrap);
    println!("  java: {}", first_line("java", &["-version"]));
    println!("  kafka-streams: 4.4.0 (bench/kafka-streams/pom.xml), -Xmx{}, {} stream threads", programs.java_heap, programs.streams_threads);
    println!(
        "  transactions: smsfold and the pipe batch_max_wait {} ms, Kafka Streams commit.interval.ms {} ms",
        programs.commit_interval_ms, programs.commit_interval_ms
    );
    println!("  pipelines: smsfold and the pipe {} each", programs.pipelines);
    println!("  logs: {}", log_dir.display());
    let workload = traffic::workload(settings.messages);
    println!(
        "  workload: smsfold-workload defaults (seed {:#x}, {} campaigns, segment mix {}, out of order {}, duplicates {}, failed {}, undelivered {})",
        workload.seed, workload.campaigns, workload.segment_mix, workload.out_of_order_rate, workload.duplicate_rate, workload.failure_rate, workload.undelivered_rate
    );

    let mut summary = Vec::new();
    if settings.check {
        summary.extend(check_phase(&kafka, &programs, &settings)?);
    }
    let mut saturation = Vec::new();
    if settings.saturation {
        saturation = saturation_phase(&kafka, &programs, &settings)?;
    }
    let mut latency = Vec::new();
    if settings.latency {
        let smsfold_rates: Vec<f64> = saturation.iter().filter(|run| run.system == System::Smsfold).map(|run| run.events_per_second).collect();
        let full_rate = settings.full_rate.unwrap_or_else(|| median(&smsfold_rates));
        latency = latency_phase(&kafka, &programs, &settings, full_rate)?;
    }
    summary.extend(report(&settings, &saturation, &latency));
    println!();
    println!("== summary ==");
    for line in summary {
        println!("{line}");
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at the end: {}", load.trim());
    Ok(())
}

fn first_line(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(output) => {
            let text = if output.stdout.is_empty() { output.stderr } else { output.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("(no output)").trim().to_owned()
        }
        Err(error) => format!("unknown ({program} failed: {error})"),
    }
}

fn check_phase(kafka: &Kafka, programs: &Programs, settings: &Settings) -> anyhow::Result<Vec<String>> {
    println!();
    println!("== 1. check: smsfold and Kafka Streams on the same {} messages ==", grouped(settings.check_messages as f64));
    let prefix = unique("cmp-check");
    let inputs = Inputs::create(kafka, &format!("{prefix}-in"))?;
    let expected = traffic::produce(kafka, &inputs, &traffic::workload(settings.check_messages))?;
    println!("produced {} message events and {} campaign events", grouped(expected.message_events as f64), expected.campaign_events);

    let mut outputs = Vec::new();
    for system in [System::Smsfold, System::KafkaStreams] {
        let mut running = saturation::start_ready(kafka, programs, system, &inputs, &prefix)?;
        saturation::wait_done(kafka, &mut running, CHECK_TIMEOUT)?;
        let output = check::outputs(kafka, &running)?;
        let topics = running.topics.clone();
        saturation::stop(running)?;
        cleanup(kafka, programs, &prefix, system, topics);
        outputs.push(output);
    }
    cleanup(kafka, programs, &prefix, System::Pipe, inputs.names());
    let mut lines = vec![format!("1. check on {} messages ({} events):", grouped(settings.check_messages as f64), grouped(expected.events() as f64))];
    lines.extend(check::compare(&expected, &outputs[0], &outputs[1])?);
    for line in &lines {
        println!("{line}");
    }
    Ok(lines)
}

fn saturation_phase(kafka: &Kafka, programs: &Programs, settings: &Settings) -> anyhow::Result<Vec<saturation::SaturationRun>> {
    println!();
    println!("== 2. saturation: {} messages produced once, consumed by each system ==", grouped(settings.messages as f64));
    let prefix = unique("cmp-sat");
    let inputs = Inputs::create(kafka, &format!("{prefix}-in"))?;
    let expected = traffic::produce(kafka, &inputs, &traffic::workload(settings.messages))?;
    println!(
        "produced {} message events of {} messages and {} campaign events; a pure fold gives {} message status changes",
        grouped(expected.message_events as f64),
        grouped(expected.live_messages as f64),
        expected.campaign_events,
        grouped(expected.message_changes as f64)
    );
    // A broker started minutes before spends more CPU per event than one that
    // has served a few runs (9.81 against 5.7 CPU s per million events in
    // BENCHMARKS.md, "The broker's log cleaner"), so counted runs come after
    // its JIT compiler has warmed up.
    let count = settings.systems.len();
    for round in 0..settings.warm_up_rounds {
        println!("warm-up round {} of {}, not counted:", round + 1, settings.warm_up_rounds);
        for &system in &settings.systems {
            saturation::run(kafka, programs, system, &inputs, &expected, &format!("{prefix}-w{round}"))?;
        }
    }
    let mut runs = Vec::new();
    for run in 0..settings.runs {
        // Rotate the order, so that no system always runs first.
        for index in 0..count {
            let system = settings.systems[(index + run) % count];
            runs.push(saturation::run(kafka, programs, system, &inputs, &expected, &format!("{prefix}-{run}"))?);
        }
    }
    cleanup(kafka, programs, &prefix, System::Pipe, inputs.names());
    Ok(runs)
}

fn latency_phase(kafka: &Kafka, programs: &Programs, settings: &Settings, full_rate: f64) -> anyhow::Result<Vec<latency::LatencyRun>> {
    println!();
    println!("== 3. latency at fixed input rates, shares of {} events/s ==", grouped(full_rate));
    let mut runs = Vec::new();
    for share in LOAD_SHARES {
        let rate = full_rate * share;
        for run in 0..settings.runs {
            let count = settings.systems.len();
            for index in 0..count {
                let system = settings.systems[(index + run) % count];
                let prefix = unique(&format!("cmp-lat{:.0}-{run}", share * 100.0));
                let mut measured = latency::run(kafka, programs, system, rate, settings.warm_up, settings.measured, &prefix)?;
                measured.share = share;
                runs.push(measured);
            }
        }
    }
    Ok(runs)
}

/// Builds the summary: medians per system, ratios to smsfold and the targets.
fn report(settings: &Settings, saturation: &[saturation::SaturationRun], latency: &[latency::LatencyRun]) -> Vec<String> {
    let mut lines = Vec::new();
    let of = |system: System, figure: fn(&saturation::SaturationRun) -> f64| -> Vec<f64> {
        saturation.iter().filter(|run| run.system == system).map(figure).collect()
    };
    let list = |values: &[f64]| values.iter().map(|value| grouped(*value)).collect::<Vec<_>>().join(", ");
    if !saturation.is_empty() {
        lines.push(format!(
            "2. saturation, median of {} runs after {} warm-up round(s) (warm-up of {:.0}% of each run's input excluded):",
            settings.runs,
            settings.warm_up_rounds,
            saturation::WARM_UP_SHARE * 100.0
        ));
        for system in &settings.systems {
            let rates = of(*system, |run| run.events_per_second);
            let cpu = of(*system, |run| run.cpu_seconds_per_million);
            let rss = of(*system, |run| run.peak_rss_bytes as f64 / (1024.0 * 1024.0));
            let writes = of(*system, |run| run.writes_per_event);
            let broker: Vec<f64> = saturation
                .iter()
                .filter(|run| run.system == *system)
                .filter_map(|run| run.broker_cpu_seconds_per_million)
                .collect();
            let broker = if broker.is_empty() {
                String::new()
            } else {
                format!(" (broker {:.1})", median(&broker))
            };
            lines.push(format!(
                "   {:<14} {:>9} events/s (runs: {}), {:.1} CPU s per million events{broker}, peak RSS {:.0} MiB (input of {} messages), {:.2} offsets written per event",
                system.name(),
                grouped(median(&rates)),
                list(&rates),
                median(&cpu),
                median(&rss),
                grouped(settings.messages as f64),
                median(&writes),
            ));
        }
    }
    if !latency.is_empty() {
        lines.push(format!(
            "3. latency from event time to the committed output, median of {} runs of {} s after {} s of warm-up:",
            settings.runs,
            settings.measured.as_secs(),
            settings.warm_up.as_secs()
        ));
        for share in LOAD_SHARES {
            for system in &settings.systems {
                let runs: Vec<&latency::LatencyRun> = latency.iter().filter(|run| run.system == *system && run.share == share).collect();
                if runs.is_empty() {
                    continue;
                }
                let pick = |figure: fn(&latency::LatencyRun) -> f64| median(&runs.iter().map(|run| figure(run)).collect::<Vec<_>>());
                let behind = runs.iter().filter(|run| run.drain_seconds.is_infinite()).count();
                lines.push(format!(
                    "   {:>3.0}% ({} events/s) {:<14} p50 {:>6.0} ms, p99 {:>6.0} ms, p99.9 {:>6.0} ms{}",
                    share * 100.0,
                    grouped(runs[0].rate),
                    system.name(),
                    pick(|run| run.p50),
                    pick(|run| run.p99),
                    pick(|run| run.p999),
                    if behind > 0 { format!(" (fell behind in {behind} of {} runs)", runs.len()) } else { String::new() },
                ));
            }
        }
    }

    // Ratios and targets, where the figures exist.
    let throughput = |system| median(&of(system, |run| run.events_per_second));
    let memory = |system| median(&of(system, |run| run.peak_rss_bytes as f64));
    let cpu = |system| median(&of(system, |run| run.cpu_seconds_per_million));
    let verdict = |met: bool| if met { "met" } else { "missed" };
    lines.push("ratios to smsfold and targets:".to_owned());
    let has = |system| settings.systems.contains(&system) && !saturation.is_empty();
    if has(System::Smsfold) && has(System::Pipe) {
        let share = throughput(System::Smsfold) / throughput(System::Pipe);
        lines.push(format!(
            "   smsfold / pipe throughput: {share:.3} (target >= {MIN_SHARE_OF_CEILING}: {}); CPU per event: pipe / smsfold {:.3}; RSS: pipe / smsfold {:.3}",
            verdict(share >= MIN_SHARE_OF_CEILING),
            cpu(System::Pipe) / cpu(System::Smsfold),
            memory(System::Pipe) / memory(System::Smsfold),
        ));
    }
    if has(System::Smsfold) && has(System::KafkaStreams) {
        let times = throughput(System::Smsfold) / throughput(System::KafkaStreams);
        let share = memory(System::Smsfold) / memory(System::KafkaStreams);
        lines.push(format!("   smsfold / kafka-streams throughput: {times:.2} (target >= {MIN_TIMES_STREAMS}: {})", verdict(times >= MIN_TIMES_STREAMS)));
        lines.push(format!(
            "   smsfold / kafka-streams peak RSS: {share:.3} (target <= {MAX_SHARE_OF_STREAMS_MEMORY}: {})",
            verdict(share <= MAX_SHARE_OF_STREAMS_MEMORY)
        ));
        lines.push(format!("   kafka-streams / smsfold CPU per event: {:.2}", cpu(System::KafkaStreams) / cpu(System::Smsfold)));
    }
    let half: Vec<f64> = latency
        .iter()
        .filter(|run| run.system == System::Smsfold && run.share == 0.5)
        .map(|run| run.p99)
        .collect();
    if !half.is_empty() {
        let p99 = median(&half);
        lines.push(format!("   smsfold p99 at 50% load: {p99:.0} ms (target <= {MAX_P99_AT_HALF_LOAD_MS} ms: {})", verdict(p99 <= MAX_P99_AT_HALF_LOAD_MS)));
    }
    lines
}
