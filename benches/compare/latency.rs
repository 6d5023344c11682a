//! Latency at a fixed input rate: from an event's event time to the moment
//! its committed status change (or, for the pipe, its committed copy) is
//! read back.
//!
//! The benchmark produces `smsfold-workload` events at the rate, stamping
//! each with the wall-clock time at which it is handed to the producer as
//! its event time. A `read_committed` consumer in the benchmark reads the
//! output and records, for each record, the time it was read minus the
//! event time it carries (a status change carries the event time of the
//! event that caused it). Only records whose event time falls after the
//! warm-up and within the measured period count. Both clocks are this
//! machine's, with millisecond resolution.
//!
//! Every reading of a run, warm-up included, goes to
//! `PREFIX-SYSTEM-latencies.csv` in the log directory.
//!
//! What the figure includes besides the system: the load producer's
//! `linger.ms` (1 ms) and the reading consumer's `fetch.wait.max.ms` (5 ms
//! at most).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use prost::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use smsfold_wire::{Format, MessageStatusChange};
use smsfold_workload::{encode, Generator, Topic};

use crate::support::{child, grouped};
use crate::support::kafka::{GroupProgress, Kafka};
use crate::systems::{Inputs, Programs, Running, System};

const READY_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_GRACE: Duration = Duration::from_secs(120);
/// How long the system may take to catch up after the load stops before
/// the run counts as fallen behind.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// The figures of one latency run, in milliseconds.
#[derive(Debug, Clone)]
pub struct LatencyRun {
    pub system: System,
    pub rate: f64,
    /// The rate as a share of the full rate; set by the caller.
    pub share: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub samples: usize,
    /// Seconds from the end of the load until every input was committed; a
    /// system that cannot keep up with the rate needs long.
    pub drain_seconds: f64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs `system` once at `rate` input events per second.
pub fn run(kafka: &Kafka, programs: &Programs, system: System, rate: f64, warm_up: Duration, measured: Duration, prefix: &str) -> anyhow::Result<LatencyRun> {
    let inputs = Inputs::create(kafka, &format!("{prefix}-in"))?;
    let mut running = Running::start(system, programs, kafka, &inputs, prefix)?;
    running.wait_ready(READY_TIMEOUT)?;
    let input_progress = GroupProgress::new(kafka, &running.group, running.consumed[..2].to_vec())?;

    // Enough messages for the whole load at about 4.5 events per message.
    let duration = warm_up + measured;
    let messages = (rate * duration.as_secs_f64() / 4.0) as u64 + 1_000;
    let mut events = Generator::new(crate::traffic::workload(messages))?.peekable();
    let producer = load_producer(kafka)?;

    // The campaign openings come first; once the group committed them, the
    // system is consuming.
    let mut sent = 0_u64;
    while events.peek().is_some_and(|generated| generated.topic() == Topic::Campaign) {
        let Some(mut generated) = events.next() else { break };
        generated.set_occurred_ms(now_ms());
        send(&producer, &inputs, &generated)?;
        sent += 1;
    }
    producer.flush(Duration::from_secs(30)).context("flushing the campaign openings failed")?;
    wait_committed(kafka, &mut running, &input_progress, Duration::from_secs(300))?;

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let consumer = latency_consumer(kafka, &running.latency_topic)?;
        let stop = Arc::clone(&stop);
        let system = running.system;
        std::thread::spawn(move || read_latencies(consumer, system, &stop))
    };

    let started_ms = now_ms();
    let window_from = started_ms + warm_up.as_millis() as i64;
    let window_to = started_ms + duration.as_millis() as i64;
    let started = Instant::now();
    while started.elapsed() < duration {
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            let Some(mut generated) = events.next() else { bail!("the workload ran out of events after {sent}") };
            generated.set_occurred_ms(now_ms());
            send(&producer, &inputs, &generated)?;
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
        running.check_running()?;
    }
    producer.flush(Duration::from_secs(30)).context("flushing the load failed")?;
    let load_end = Instant::now();
    let drained = wait_committed(kafka, &mut running, &input_progress, DRAIN_LIMIT);
    let drain_seconds = load_end.elapsed().as_secs_f64();
    // Give the reader time for the last transaction's records.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let readings = reader.join().map_err(|_| anyhow::anyhow!("the latency reader panicked"))??;

    // The means of smsfold's commit steps over the run show what its
    // latency is made of. Read them before the process stops.
    let commit_steps = match running.http {
        Some(http) if system == System::Smsfold => Some(commit_steps(http)?),
        _ => None,
    };
    let topics = running.topics.clone();
    running.stop(STOP_GRACE)?;
    let mut owned = topics;
    owned.extend(inputs.names());
    crate::cleanup(kafka, programs, prefix, system, owned);

    let readings_file = programs.log_dir.join(format!("{prefix}-{}-latencies.csv", system.name()));
    write_readings(&readings_file, &readings)?;
    let mut latencies: Vec<i64> =
        readings.into_iter().filter(|(occurred, _)| (window_from..window_to).contains(occurred)).map(|(_, latency)| latency).collect();
    latencies.sort_unstable();
    if latencies.is_empty() {
        bail!("{} published nothing with an event time in the measured period", system.name());
    }
    let run = LatencyRun {
        system,
        rate,
        share: 0.0,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        p999: percentile(&latencies, 0.999),
        samples: latencies.len(),
        drain_seconds: if drained.is_ok() { drain_seconds } else { f64::INFINITY },
    };
    println!(
        "{} {prefix}: {} events/s for {} s: p50 {:.0} ms, p99 {:.0} ms, p99.9 {:.0} ms over {} records; caught up {:.1} s after the load{}",
        system.name(),
        grouped(rate),
        duration.as_secs(),
        run.p50,
        run.p99,
        run.p999,
        grouped(run.samples as f64),
        drain_seconds,
        if drained.is_ok() { String::new() } else { format!(" (not within {} s: it fell behind)", DRAIN_LIMIT.as_secs()) },
    );
    if let Some(steps) = commit_steps {
        println!("{} {prefix}: {steps}", system.name());
    }
    Ok(run)
}

/// Writes every reading, warm-up included, as `occurred_ms,latency_ms`
/// lines, so a tail can be traced to the moments it came from.
fn write_readings(path: &Path, readings: &[(i64, i64)]) -> anyhow::Result<()> {
    let mut writer = BufWriter::new(File::create(path).with_context(|| format!("could not create {}", path.display()))?);
    writeln!(writer, "occurred_ms,latency_ms")?;
    for (occurred, latency) in readings {
        writeln!(writer, "{occurred},{latency}")?;
    }
    writer.flush().with_context(|| format!("could not write {}", path.display()))
}

/// Describes smsfold's batches and the mean time of each commit step, read
/// from `smsfold_processing_latency_seconds` and
/// `smsfold_commit_phase_seconds` in its `/metrics`.
fn commit_steps(http: SocketAddr) -> anyhow::Result<String> {
    let (status, body) = child::http_get(http, "/metrics")?;
    if status != 200 {
        bail!("GET /metrics of smsfold failed with status {status}: {body}");
    }
    let value = |name: &str| -> anyhow::Result<f64> {
        body.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .with_context(|| format!("GET /metrics has no {name}"))?
            .trim()
            .parse::<f64>()
            .with_context(|| format!("GET /metrics has an invalid {name}"))
    };
    let batches = value("smsfold_processing_latency_seconds_count")?;
    let mut text = format!(
        "{} batches, {:.1} ms from a batch's first record to its commit on average; commit steps on average:",
        grouped(batches),
        1000.0 * value("smsfold_processing_latency_seconds_sum")? / batches.max(1.0),
    );
    for phase in ["acknowledged", "offsets", "transaction"] {
        let sum = value(&format!("smsfold_commit_phase_seconds_sum{{phase=\"{phase}\"}}"))?;
        let count = value(&format!("smsfold_commit_phase_seconds_count{{phase=\"{phase}\"}}"))?;
        text.push_str(&format!(" {phase} {:.1} ms", 1000.0 * sum / count.max(1.0)));
    }
    Ok(text)
}

/// Returns the nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], quantile: f64) -> f64 {
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

fn load_producer(kafka: &Kafka) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    kafka
        .client_config()
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "1")
        .create()
        .context("could not create the load producer")
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, inputs: &Inputs, generated: &smsfold_workload::Generated) -> anyhow::Result<()> {
    let topic = match generated.topic() {
        Topic::Message => &inputs.message_events,
        Topic::Campaign => &inputs.campaign_events,
    };
    let value = encode::protobuf(&generated.event);
    let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/x-protobuf") });
    let mut record = BaseRecord::to(topic).key(generated.key()).payload(&value).headers(headers);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => bail!("producing to {topic} failed: {error}"),
        }
    }
}

/// Waits until the group committed the input topics to their ends.
fn wait_committed(kafka: &Kafka, running: &mut Running, progress: &GroupProgress, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        running.check_running()?;
        if progress.lag(kafka).done() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("{} did not commit its input within {} s", running.system.name(), timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn latency_consumer(kafka: &Kafka, topic: &str) -> anyhow::Result<BaseConsumer> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("{topic}-latency"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "5")
        .create()
        .context("could not create the latency consumer")?;
    let partitions = kafka.partitions(topic)?.with_context(|| format!("topic {topic} does not exist"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

/// Reads the output until `stop`, returning (event time, latency) pairs in
/// milliseconds.
fn read_latencies(consumer: BaseConsumer, system: System, stop: &AtomicBool) -> anyhow::Result<Vec<(i64, i64)>> {
    let mut readings = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(50)) else { continue };
        let record = result.context("reading the output failed")?;
        let read_at = now_ms();
        let Some(value) = record.payload() else { continue };
        let occurred = match system {
            // A copy of a message or campaign event: both carry the event
            // time as field 2, a google.protobuf.Timestamp.
            System::Pipe => smsfold_wire::proto::MessageEvent::decode(value)
                .ok()
                .and_then(|event| event.occurred_at)
                .map(|at| at.seconds * 1_000 + i64::from(at.nanos) / 1_000_000),
            System::Smsfold | System::KafkaStreams => {
                MessageStatusChange::decode(Format::Protobuf, value).ok().map(|change| change.occurred_at.as_millis())
            }
        };
        if let Some(occurred) = occurred {
            readings.push((occurred, read_at - occurred));
        }
    }
    Ok(readings)
}
