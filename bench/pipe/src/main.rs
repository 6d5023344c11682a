//! `smsfold-pipe`: the throughput ceiling smsfold is compared with. It copies
//! every record of its input topics to one output topic, unchanged and into
//! the same partition number, in Kafka transactions, with no logic.
//!
//! It uses the client library smsfold uses (librdkafka through rdkafka) with
//! smsfold's client settings and batch policy. A batch is one transaction
//! that contains its copies and its consumed offsets. It closes after
//! `--batch-max-wait-ms`, after `--batch-idle-ms` without a record, or at
//! `--batch-max-records` records.
//!
//! With `--pipelines N` it copies on N threads, each with its own consumer,
//! transactional producer and transactional id, as smsfold's pipelines do.
//! Thread `i` is assigned the partitions whose number modulo N is `i` (no
//! group rebalancing), and the process prefetches 4 MiB, shared out, but at
//! least 1 MiB per thread. Its commits then carry no group generation, so
//! give every run a fresh group: nothing fences a thread of an earlier run
//! with more pipelines.
//!
//! Delivery guarantee: exactly once while it runs alone in its group. Any
//! error (a failed delivery, a commit that fails or times out, a fatal
//! consumer error) aborts the open transaction and exits non-zero, and the
//! next start copies that batch again. A rebalance that takes partitions
//! away during an open batch makes its commit fail in the same way, so run
//! one instance per group. SIGTERM or SIGINT commits the open batches and
//! stops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// How long a transaction's offsets hand-over and commit may take.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(name = "smsfold-pipe", about = "Copies records from input topics to an output topic in Kafka transactions, with no logic")]
struct Args {
    /// Kafka bootstrap servers, e.g. 127.0.0.1:9092.
    #[arg(long)]
    bootstrap_servers: String,
    /// Consumer group id; also the prefix of the transactional id.
    #[arg(long)]
    group_id: String,
    /// Topic to copy from; give it once per topic.
    #[arg(long = "input-topic", required = true)]
    input_topics: Vec<String>,
    /// Topic to copy to. It needs at least as many partitions as the largest input topic.
    #[arg(long)]
    output_topic: String,
    /// Maximum time a batch stays open, in milliseconds.
    #[arg(long, default_value_t = 100)]
    batch_max_wait_ms: u64,
    /// Time without a record after which an open batch commits, in milliseconds.
    #[arg(long, default_value_t = 5)]
    batch_idle_ms: u64,
    /// Records after which a batch commits.
    #[arg(long, default_value_t = 5_000)]
    batch_max_records: usize,
    /// Consumer group protocol: consumer (KIP-848) or classic.
    #[arg(long, default_value = "consumer")]
    group_protocol: String,
    /// Copying threads, each with its own consumer and transactional producer.
    #[arg(long, default_value_t = 1)]
    pipelines: usize,
    /// A librdkafka property for the consumer and the producer, KEY=VALUE; give it once per property.
    #[arg(long = "kafka-property", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// The open transaction and the input positions it commits.
#[derive(Default)]
struct Batch {
    started: Option<Instant>,
    /// The next offset to consume per input partition.
    offsets: HashMap<(String, i32), i64>,
    records: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !["consumer", "classic"].contains(&args.group_protocol.as_str()) {
        bail!("invalid --group-protocol {:?}: use consumer or classic", args.group_protocol);
    }
    if args.pipelines == 0 {
        bail!("invalid --pipelines 0: give at least 1");
    }
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&stop))?;
    let args = Arc::new(args);
    let threads: Vec<_> = (0..args.pipelines)
        .map(|index| {
            let (args, stop) = (Arc::clone(&args), Arc::clone(&stop));
            std::thread::spawn(move || {
                let result = pipeline(&args, index, &stop);
                // One failed pipeline stops the others.
                stop.store(true, Ordering::Relaxed);
                result
            })
        })
        .collect();
    let mut first_error = None;
    for thread in threads {
        let result = thread.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a pipeline panicked")));
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Copies the partitions of pipeline `index` until `stop` is set.
fn pipeline(args: &Args, index: usize, stop: &AtomicBool) -> anyhow::Result<()> {
    let consumer = consumer(args)?;
    let topics: Vec<&str> = args.input_topics.iter().map(String::as_str).collect();
    if args.pipelines == 1 {
        consumer.subscribe(&topics).context("could not subscribe to the input topics")?;
    } else {
        consumer.assign(&share_of_partitions(&consumer, &topics, index, args.pipelines)?)?;
    }
    let producer = producer(args, index)?;
    producer.init_transactions(COMMIT_TIMEOUT).context("could not initialize transactions")?;
    eprintln!("smsfold-pipe: pipeline {index} copying {} to {} in transactions", topics.join(", "), args.output_topic);

    let max_wait = Duration::from_millis(args.batch_max_wait_ms);
    let idle_wait = Duration::from_millis(args.batch_idle_ms);
    let mut batch = Batch::default();
    let (mut copied, mut batches) = (0_u64, 0_u64);
    while !stop.load(Ordering::Relaxed) {
        let wait = match batch.started {
            Some(started) => max_wait.saturating_sub(started.elapsed()).min(idle_wait).max(Duration::from_millis(1)),
            None => max_wait,
        };
        let mut idle = false;
        match consumer.poll(wait) {
            Some(Ok(record)) => {
                if batch.started.is_none() {
                    producer.begin_transaction().context("could not begin a transaction")?;
                    batch.started = Some(Instant::now());
                }
                copy(&producer, &args.output_topic, &record)?;
                batch.offsets.insert((record.topic().to_owned(), record.partition()), record.offset() + 1);
                batch.records += 1;
            }
            Some(Err(KafkaError::MessageConsumptionFatal(code))) => bail!("the consumer failed fatally: {code}"),
            Some(Err(error)) => eprintln!("smsfold-pipe: consumer error: {error}"),
            None => idle = true,
        }
        let due = batch.started.is_some_and(|started| {
            idle || started.elapsed() >= max_wait || batch.records >= args.batch_max_records
        });
        if due {
            copied += batch.records as u64;
            batches += 1;
            commit(&consumer, &producer, &mut batch)?;
        }
    }
    if batch.started.is_some() {
        copied += batch.records as u64;
        batches += 1;
        commit(&consumer, &producer, &mut batch)?;
    }
    eprintln!("smsfold-pipe: pipeline {index} stopped after copying {copied} records in {batches} transactions");
    Ok(())
}

/// Returns the partitions of `topics` whose number modulo `pipelines` is
/// `index`, to start at the group's committed offsets.
fn share_of_partitions(
    consumer: &BaseConsumer,
    topics: &[&str],
    index: usize,
    pipelines: usize,
) -> anyhow::Result<TopicPartitionList> {
    let mut share = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), COMMIT_TIMEOUT)
            .with_context(|| format!("could not read the partitions of {topic}"))?;
        let partitions = metadata.topics().first().map_or(0, |topic| topic.partitions().len());
        if partitions == 0 {
            bail!("topic {topic} has no partitions; create it first");
        }
        for partition in (0..partitions).filter(|partition| partition % pipelines == index) {
            share.add_partition_offset(topic, partition as i32, Offset::Stored)?;
        }
    }
    Ok(share)
}

fn consumer(args: &Args) -> anyhow::Result<BaseConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("group.id", &args.group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // smsfold's prefetch: without it the pipe's consumer stalls for
        // librdkafka's 1 s fetch back-off whenever its queue is full.
        .set("queued.max.messages.kbytes", (4096 / args.pipelines).max(1024).to_string())
        .set("fetch.queue.backoff.ms", "10");
    if args.group_protocol == "consumer" {
        config.set("group.protocol", "consumer").set("group.remote.assignor", "range");
    } else {
        config.set("partition.assignment.strategy", "range");
    }
    for (key, value) in &args.kafka_properties {
        config.set(key, value);
    }
    config.create().context("could not create the consumer")
}

/// Creates the producer with smsfold's settings.
fn producer(args: &Args, index: usize) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .set("transactional.id", format!("{}-pipe-{index}", args.group_id))
        .set("transaction.timeout.ms", "10000");
    for (key, value) in &args.kafka_properties {
        config.set(key, value);
    }
    config.create().context("could not create the transactional producer")
}

/// Hands a copy of `record` to the producer, waiting while its queue is full.
fn copy(
    producer: &ThreadedProducer<DefaultProducerContext>,
    output_topic: &str,
    record: &rdkafka::message::BorrowedMessage<'_>,
) -> anyhow::Result<()> {
    let headers = record.headers().map(|headers| headers.detach());
    let mut copy = BaseRecord::<[u8], [u8]>::to(output_topic).partition(record.partition());
    if let Some(key) = record.key() {
        copy = copy.key(key);
    }
    if let Some(payload) = record.payload() {
        copy = copy.payload(payload);
    }
    if let Some(headers) = headers {
        copy = copy.headers(headers);
    }
    loop {
        match producer.send(copy) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                copy = returned;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((error, _)) => bail!("producing to {output_topic} failed: {error}"),
        }
    }
}

/// Commits the open transaction with the consumed offsets. The transaction
/// commit waits until the broker acknowledged every copy, and fails if one
/// was not delivered.
fn commit(
    consumer: &BaseConsumer,
    producer: &ThreadedProducer<DefaultProducerContext>,
    batch: &mut Batch,
) -> anyhow::Result<()> {
    let mut offsets = TopicPartitionList::new();
    for ((topic, partition), offset) in &batch.offsets {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    let group = consumer.group_metadata().context("the consumer has no group metadata")?;

    // Wait for the acknowledgements here: rdkafka 0.39's commit_transaction
    // first flushes, and its flush polls in steps of 100 ms while anything
    // is in flight, which would add up to 100 ms to every commit. The
    // producer's own thread serves the delivery reports meanwhile.
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while producer.in_flight_count() > 0 {
        if Instant::now() > deadline {
            let _ = producer.abort_transaction(COMMIT_TIMEOUT);
            bail!("the broker did not acknowledge a batch of {} records within {} s; it was aborted", batch.records, COMMIT_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let committed = producer
        .send_offsets_to_transaction(&offsets, &group, COMMIT_TIMEOUT)
        .and_then(|()| producer.commit_transaction(COMMIT_TIMEOUT));
    if let Err(error) = committed {
        let _ = producer.abort_transaction(COMMIT_TIMEOUT);
        bail!("could not commit a transaction of {} records: {error}; it was aborted", batch.records);
    }
    *batch = Batch::default();
    Ok(())
}

/// Sets `stop` on SIGTERM or SIGINT, from a thread of its own.
fn watch_signals(stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("could not start the signal handler")?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut terminate), Ok(mut interrupt)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
            else {
                eprintln!("smsfold-pipe: could not install the signal handlers; stop it with SIGKILL");
                return;
            };
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
            stop.store(true, Ordering::Relaxed);
        });
    });
    Ok(())
}
