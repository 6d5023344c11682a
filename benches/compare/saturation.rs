//! Saturation: a system folds (or copies) input produced beforehand as fast
//! as it can. Throughput, CPU time and memory are read while it runs.
//!
//! Warm-up is excluded: the window starts at the first sample in which the
//! group has committed at least `WARM_UP_SHARE` of the input, so start-up,
//! joining the group and JIT compilation fall before it. It ends at the
//! first sample in which every consumed topic is committed to its end,
//! internal topics included.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::support::grouped;
use crate::support::kafka::{GroupProgress, Kafka};
use crate::systems::{Inputs, Programs, Running, System, Usage};
use crate::traffic::Expected;

/// Share of the input that counts as warm-up.
pub const WARM_UP_SHARE: f64 = 0.1;
const SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
const RUN_TIMEOUT: Duration = Duration::from_secs(60 * 60);
const READY_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(120);
/// How long counting the output waits for the next record.
const COUNT_IDLE: Duration = Duration::from_secs(60);

/// The figures of one saturation run.
#[derive(Debug, Clone)]
pub struct SaturationRun {
    pub system: System,
    pub events_per_second: f64,
    pub cpu_seconds_per_million: f64,
    /// The broker's CPU seconds per million input events over the same
    /// window, when its pid is known (`SMSFOLD_COMPARE_BROKER_PID`).
    pub broker_cpu_seconds_per_million: Option<f64>,
    /// VmHWM at the end, when the folds hold every message.
    pub peak_rss_bytes: u64,
    /// Seconds from start to the window's start.
    pub warm_up_seconds: f64,
    pub window_seconds: f64,
    /// Offsets the system wrote per input event, over every topic it writes,
    /// transaction markers included.
    pub writes_per_event: f64,
}

/// One sample of a run.
struct Sample {
    at: Instant,
    committed_inputs: u64,
    usage: Usage,
    /// The broker's CPU seconds so far, when its pid is known.
    broker_cpu_seconds: Option<f64>,
}

/// Runs `system` once over `inputs`, which hold the traffic `expected`
/// describes, and checks its output count.
pub fn run(kafka: &Kafka, programs: &Programs, system: System, inputs: &Inputs, expected: &Expected, prefix: &str) -> anyhow::Result<SaturationRun> {
    let total = expected.events();
    let started = Instant::now();
    let mut running = Running::start(system, programs, kafka, inputs, prefix)?;
    let everything = GroupProgress::new(kafka, &running.group, running.consumed.clone())?;
    let input_only = GroupProgress::new(kafka, &running.group, running.consumed[..2].to_vec())?;

    let mut window_start: Option<Sample> = None;
    let mut last_report = Instant::now();
    let end = loop {
        std::thread::sleep(SAMPLE_INTERVAL);
        running.check_running()?;
        let lag = everything.lag(kafka);
        let inputs_lag = input_only.lag(kafka);
        let usage = running.usage()?;
        let committed_inputs = if inputs_lag.complete { total.saturating_sub(inputs_lag.remaining as u64) } else { 0 };
        let broker_cpu_seconds = broker_pid().and_then(|pid| Usage::read(pid).ok()).map(|usage| usage.cpu_seconds);
        let sample = Sample { at: Instant::now(), committed_inputs, usage, broker_cpu_seconds };
        if lag.done() {
            break sample;
        }
        if window_start.is_none() && committed_inputs as f64 >= WARM_UP_SHARE * total as f64 {
            window_start = Some(sample);
        }
        if started.elapsed() > RUN_TIMEOUT {
            bail!("{} did not consume its input within {} s; its log is {}", system.name(), RUN_TIMEOUT.as_secs(), running.log.display());
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!("  {} {prefix}: {:.0} s, {} of {} input events committed", system.name(), started.elapsed().as_secs_f64(), grouped(committed_inputs as f64), grouped(total as f64));
        }
    };
    let Some(window) = window_start else {
        bail!("{} consumed its input before the first sample past the warm-up; use a larger input", system.name());
    };

    let seconds = end.at.duration_since(window.at).as_secs_f64();
    let events = (total - window.committed_inputs) as f64;
    let result = SaturationRun {
        system,
        events_per_second: events / seconds,
        cpu_seconds_per_million: (end.usage.cpu_seconds - window.usage.cpu_seconds) / events * 1e6,
        broker_cpu_seconds_per_million: end
            .broker_cpu_seconds
            .zip(window.broker_cpu_seconds)
            .map(|(end, start)| (end - start) / events * 1e6),
        peak_rss_bytes: end.usage.peak_rss_bytes,
        warm_up_seconds: window.at.duration_since(started).as_secs_f64(),
        window_seconds: seconds,
        writes_per_event: 0.0,
    };
    let mut result = result;

    // The figures only count if the system did all the work.
    let (topic, expected_records) = match system {
        System::Pipe => (&running.latency_topic, total),
        System::Smsfold | System::KafkaStreams => (&running.latency_topic, expected.message_changes),
    };
    let records = kafka.count_records(topic, expected_records, COUNT_IDLE)?;
    if records != expected_records {
        bail!("{} published {records} records to {topic}, expected {expected_records}", system.name());
    }
    let topics = running.topics.clone();
    running.stop(STOP_GRACE)?;
    let mut written = 0;
    let mut per_topic = Vec::with_capacity(topics.len());
    for topic in &topics {
        let offsets = kafka.end_offsets(topic)?;
        written += offsets;
        per_topic.push((topic.strip_prefix(prefix).unwrap_or(topic).trim_start_matches('-'), offsets));
    }
    result.writes_per_event = written as f64 / total as f64;
    // Where the offsets went, largest first: the records of each topic and
    // their transaction markers.
    per_topic.sort_by_key(|(_, offsets)| std::cmp::Reverse(*offsets));
    let shares: Vec<String> =
        per_topic.iter().map(|(topic, offsets)| format!("{topic} {:.2}", *offsets as f64 / total as f64)).collect();
    println!("{} {prefix}: offsets per input event by topic: {}", system.name(), shares.join(", "));
    crate::cleanup(kafka, programs, prefix, system, topics);
    let broker = result
        .broker_cpu_seconds_per_million
        .map_or(String::new(), |broker| format!(", broker {broker:.2} CPU s per million events"));
    println!(
        "{} {prefix}: {} events/s over {:.1} s after {:.1} s of warm-up, {:.2} CPU s per million events{broker}, \
         peak RSS {:.0} MiB, {:.2} offsets written per input event; {records} output records checked",
        system.name(),
        grouped(result.events_per_second),
        result.window_seconds,
        result.warm_up_seconds,
        result.cpu_seconds_per_million,
        result.peak_rss_bytes as f64 / (1024.0 * 1024.0),
        result.writes_per_event,
    );
    Ok(result)
}

/// Returns the broker's pid from `SMSFOLD_COMPARE_BROKER_PID`, which
/// scripts/compare.sh sets for the broker it starts.
fn broker_pid() -> Option<u32> {
    static PID: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *PID.get_or_init(|| std::env::var("SMSFOLD_COMPARE_BROKER_PID").ok().and_then(|pid| pid.trim().parse().ok()))
}

/// Starts `system`, waits until it is ready, and returns it; used by the
/// check.
pub fn start_ready(kafka: &Kafka, programs: &Programs, system: System, inputs: &Inputs, prefix: &str) -> anyhow::Result<Running> {
    let mut running = Running::start(system, programs, kafka, inputs, prefix)?;
    running.wait_ready(READY_TIMEOUT)?;
    Ok(running)
}

/// Waits until `running`'s group committed every consumed topic to its end.
pub fn wait_done(kafka: &Kafka, running: &mut Running, timeout: Duration) -> anyhow::Result<()> {
    let progress = GroupProgress::new(kafka, &running.group, running.consumed.clone())?;
    let started = Instant::now();
    loop {
        running.check_running()?;
        let lag = progress.lag(kafka);
        if lag.done() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "{} did not consume its input within {} s: {} records left (last error: {}); its log is {}",
                running.system.name(),
                timeout.as_secs(),
                lag.remaining,
                lag.error.as_deref().unwrap_or("none"),
                running.log.display()
            );
        }
        std::thread::sleep(SAMPLE_INTERVAL);
    }
}

pub fn stop(running: Running) -> anyhow::Result<()> {
    running.stop(STOP_GRACE)
}
