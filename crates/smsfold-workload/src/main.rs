//! `smsfold-workload`: generates bulk SMS/MMS traffic for load tests, as
//! JSON Lines for `smsfold produce` or straight into Kafka.
//!
//! Records produced to Kafka are keyed by message or campaign id, carry a
//! `content-type` header and are placed by murmur2, as Java clients place
//! them. Delivery is at least once: the producer is idempotent, so a retry
//! within one run does not repeat a record, but a second run sends
//! everything again.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use smsfold_workload::{encode, Generator, SegmentMix, Topic, WorkloadConfig};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long the producer may take to deliver what is left at the end.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Protobuf,
}

#[derive(Debug, Parser)]
#[command(
    name = "smsfold-workload",
    about = "Generates bulk SMS/MMS message and campaign events for load tests, deterministic from a seed",
    after_help = "Without --bootstrap-servers it writes JSON Lines (one event per line, in arrival order) that \
                  `smsfold produce FILE` sends. Rates are probabilities from 0 to 1."
)]
struct Args {
    /// Messages in all, inbound and one-off messages included.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Campaigns the campaign messages are spread over; campaign c gets a share proportional to c + 1.
    #[arg(long, default_value_t = 50)]
    campaigns: u32,
    /// Seed of every random choice; the same settings and seed give the same events.
    #[arg(long, default_value_t = 0x5eed_2026)]
    seed: u64,
    /// Event time of the first accepted message: RFC 3339, or milliseconds since the Unix epoch.
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    start: String,
    /// Messages accepted per second of event time.
    #[arg(long, default_value_t = 2_000)]
    accepted_per_second: u32,
    /// Share of outbound messages outside any campaign.
    #[arg(long, default_value_t = 0.02)]
    one_off_rate: f64,
    /// Share of messages that are inbound (receiving, then received).
    #[arg(long, default_value_t = 0.02)]
    inbound_rate: f64,
    /// Segment counts and their relative weights, SEGMENTS:WEIGHT,...
    #[arg(long, default_value = "1:70,2:20,3:7,4:3")]
    segment_mix: SegmentMix,
    /// Share of messages sent as MMS.
    #[arg(long, default_value_t = 0.05)]
    mms_rate: f64,
    /// Share of outbound messages scheduled 1 to 60 s ahead.
    #[arg(long, default_value_t = 0.10)]
    scheduled_rate: f64,
    /// Share of outbound messages whose `sending` status is reported.
    #[arg(long, default_value_t = 0.30)]
    sending_rate: f64,
    /// Share of outbound messages that fail instead of being sent.
    #[arg(long, default_value_t = 0.03)]
    failure_rate: f64,
    /// Share of sent messages that never get a receipt.
    #[arg(long, default_value_t = 0.02)]
    no_receipt_rate: f64,
    /// Share of receipts that report the message undelivered.
    #[arg(long, default_value_t = 0.07)]
    undelivered_rate: f64,
    /// Minimum time from sent to its receipt, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    receipt_delay_min_ms: u64,
    /// Maximum time from sent to its receipt, in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    receipt_delay_max_ms: u64,
    /// Share of events that arrive after the message's next event.
    #[arg(long, default_value_t = 0.05)]
    out_of_order_rate: f64,
    /// Share of events that arrive a second time with the same event id.
    #[arg(long, default_value_t = 0.05)]
    duplicate_rate: f64,
    /// Maximum time from an event to its repeat, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    duplicate_delay_max_ms: u64,
    /// Carriers; each writes its message ids in its own form.
    #[arg(long, default_value_t = 4)]
    carriers: u32,
    /// JSON Lines file to write, `-` for standard output. Ignored with --bootstrap-servers.
    #[arg(long, short, default_value = "-")]
    output: PathBuf,
    /// Produce to this Kafka cluster instead of writing a file, e.g. 127.0.0.1:9092.
    #[arg(long)]
    bootstrap_servers: Option<String>,
    /// Record value format when producing to Kafka.
    #[arg(long, value_enum, default_value_t = Format::Protobuf)]
    format: Format,
    /// Topic of the message events when producing to Kafka.
    #[arg(long, default_value = "message-events")]
    message_events_topic: String,
    /// Topic of the campaign events when producing to Kafka.
    #[arg(long, default_value = "campaign-events")]
    campaign_events_topic: String,
}

impl Args {
    fn workload(&self) -> anyhow::Result<WorkloadConfig> {
        let start_ms = match self.start.parse::<i64>() {
            Ok(millis) => millis,
            Err(_) => {
                let time = OffsetDateTime::parse(&self.start, &Rfc3339).with_context(|| {
                    format!("invalid --start {:?}: give RFC 3339 such as 2026-01-01T00:00:00Z, or milliseconds", self.start)
                })?;
                (time.unix_timestamp_nanos() / 1_000_000) as i64
            }
        };
        let config = WorkloadConfig {
            seed: self.seed,
            messages: self.messages,
            campaigns: self.campaigns,
            start_ms,
            accepted_per_second: self.accepted_per_second,
            one_off_rate: self.one_off_rate,
            inbound_rate: self.inbound_rate,
            segment_mix: self.segment_mix.clone(),
            mms_rate: self.mms_rate,
            scheduled_rate: self.scheduled_rate,
            sending_rate: self.sending_rate,
            failure_rate: self.failure_rate,
            no_receipt_rate: self.no_receipt_rate,
            undelivered_rate: self.undelivered_rate,
            receipt_delay_min_ms: self.receipt_delay_min_ms,
            receipt_delay_max_ms: self.receipt_delay_max_ms,
            out_of_order_rate: self.out_of_order_rate,
            duplicate_rate: self.duplicate_rate,
            duplicate_delay_max_ms: self.duplicate_delay_max_ms,
            carriers: self.carriers,
        };
        config.validate()?;
        Ok(config)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let generator = Generator::new(args.workload()?)?;
    let started = Instant::now();
    let (messages, campaigns) = match &args.bootstrap_servers {
        Some(bootstrap) => produce(&args, bootstrap, generator)?,
        None => write_lines(&args, generator)?,
    };
    eprintln!(
        "smsfold-workload: {messages} message events and {campaigns} campaign events for {} messages in {:.1} s",
        args.messages,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes one JSON object per line; returns the message and campaign event counts.
fn write_lines(args: &Args, generator: Generator) -> anyhow::Result<(u64, u64)> {
    let sink: Box<dyn Write> = if args.output.as_os_str() == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        let file = File::create(&args.output).with_context(|| format!("could not create {}", args.output.display()))?;
        Box::new(file)
    };
    let mut sink = BufWriter::new(sink);
    let mut counts = (0, 0);
    for generated in generator {
        match generated.topic() {
            Topic::Message => counts.0 += 1,
            Topic::Campaign => counts.1 += 1,
        }
        writeln!(sink, "{}", encode::json_line(&generated.event))
            .with_context(|| format!("could not write to {}", args.output.display()))?;
    }
    sink.flush().with_context(|| format!("could not write to {}", args.output.display()))?;
    Ok(counts)
}

/// Produces every event to its topic; returns the message and campaign event counts.
fn produce(args: &Args, bootstrap: &str, generator: Generator) -> anyhow::Result<(u64, u64)> {
    let producer: ThreadedProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .create_with_context(DeliveryCounter::default())
        .context("could not create the Kafka producer")?;
    let content_type = match args.format {
        Format::Json => "application/json",
        Format::Protobuf => "application/x-protobuf",
    };
    let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some(content_type) });
    let mut counts = (0, 0);
    for generated in generator {
        let topic = match generated.topic() {
            Topic::Message => {
                counts.0 += 1;
                &args.message_events_topic
            }
            Topic::Campaign => {
                counts.1 += 1;
                &args.campaign_events_topic
            }
        };
        let value = match args.format {
            Format::Json => encode::json_line(&generated.event).into_bytes(),
            Format::Protobuf => encode::protobuf(&generated.event),
        };
        let mut record = BaseRecord::to(topic).key(generated.key()).payload(&value).headers(headers.clone());
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => bail!("producing to {topic} failed: {error}"),
            }
        }
    }
    producer.flush(FLUSH_TIMEOUT).context("not every record was delivered")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        let first = producer.context().first_error.lock().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default();
        bail!("{failed} records were not delivered; the first error: {first}");
    }
    Ok(counts)
}

/// Counts the records the broker did not acknowledge.
#[derive(Default)]
struct DeliveryCounter {
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(|| error.to_string());
        }
    }
}
