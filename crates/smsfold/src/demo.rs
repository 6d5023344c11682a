//! `smsfold demo`: one small campaign, end to end, with nothing to set up.
//!
//! It starts the worker on an in-process librdkafka mock cluster, or on the
//! cluster given with --bootstrap-servers under fresh topic names. It sends a
//! campaign of eight messages whose receipts arrive late, repeated and out of
//! order, one inbound message and one undecodable record. Then it prints
//! every status change and dead letter the worker publishes, and the
//! campaign's summary.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use smsfold_domain::CampaignStatus;
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange};
use smsfold_worker::{Topics, Worker, WorkerConfig};
use tokio::sync::watch;

use crate::cli::DemoArgs;

const CAMPAIGN: &str = "spring-sale";
const PARTITIONS: i32 = 2;
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long the tail waits for more records once the demo is over.
const DRAIN_IDLE: Duration = Duration::from_secs(1);

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
    let mut _mock = None;
    let (bootstrap, topics) = match args.bootstrap_servers {
        Some(bootstrap) => {
            let topics = Topics::with_prefix(&format!("smsfold-demo-{stamp}-"));
            create_topics(&bootstrap, &topics).await?;
            (bootstrap, topics)
        }
        None => {
            let cluster = MockCluster::new(1).context("could not start the in-process mock cluster")?;
            let topics = Topics::default();
            // The mock cluster would create missing topics with its own
            // partition count, so every topic the worker uses is made here.
            let group_id = format!("smsfold-demo-{stamp}");
            let changelogs = [
                format!("{group_id}-message-changelog"),
                format!("{group_id}-campaign-changelog"),
                format!("{group_id}-carrier-changelog"),
            ];
            for topic in topics.named().iter().map(|(_, topic)| *topic).chain(changelogs.iter().map(String::as_str)) {
                cluster.create_topic(topic, PARTITIONS, 1)?;
            }
            let bootstrap = cluster.bootstrap_servers();
            _mock = Some(cluster);
            (bootstrap, topics)
        }
    };
    println!("smsfold demo on {bootstrap}");

    let mut config = WorkerConfig::new(bootstrap.clone());
    config.group_id = format!("smsfold-demo-{stamp}");
    config.topics = topics.clone();
    config.batch_max_wait = Duration::from_millis(50);
    if _mock.is_some() {
        // librdkafka's mock cluster speaks only the classic group protocol.
        config.group_protocol = smsfold_worker::GroupProtocol::Classic;
    }
    let worker = Worker::new(config)?;
    let projections = worker.projections();
    let (shutdown_tx, shutdown) = watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("partitioner", "murmur2_random")
        .create()?;
    for (topic, key, value) in script(&topics, stamp as i64) {
        let headers = OwnedHeaders::new().insert(Header { key: "content-type", value: Some("application/json") });
        let record = FutureRecord::to(topic).key(&key).payload(&value).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(error, _)| error)?;
    }

    let printed = tail(&bootstrap, &topics).await;
    let _ = shutdown_tx.send(true);
    running.await.context("the worker task panicked")??;
    printed?;

    let projection = projections.lock().unwrap_or_else(|e| e.into_inner()).campaign(CAMPAIGN);
    let Some(projection) = projection else { bail!("campaign {CAMPAIGN} not found in the worker's projections") };
    println!("\ncampaign summary");
    println!("{}", serde_json::to_string_pretty(&smsfold_worker::http::campaign_json(&projection))?);
    Ok(())
}

async fn create_topics(bootstrap: &str, topics: &Topics) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let inputs = [
        NewTopic::new(&topics.message_events, PARTITIONS, TopicReplication::Fixed(1)),
        NewTopic::new(&topics.campaign_events, PARTITIONS, TopicReplication::Fixed(1)),
    ];
    for result in admin.create_topics(&inputs, &AdminOptions::new()).await? {
        result.map_err(|(topic, code)| anyhow::anyhow!("could not create topic {topic}: {code}"))?;
    }
    Ok(())
}

/// Builds the demo's input records, in the order they are sent.
fn script(topics: &Topics, now: i64) -> Vec<(&str, String, String)> {
    let minute = 60_000;
    let mut records = Vec::new();
    let mut sequence = 0;
    let mut campaign = |kind: &str, at: i64, extra: Value| {
        sequence += 1;
        let mut event = json!({
            "event_id": format!("ce-{sequence}"), "occurred_at": at, "campaign_id": CAMPAIGN, "kind": kind,
        });
        merge(&mut event, extra);
        (topics.campaign_events.as_str(), CAMPAIGN.to_owned(), event.to_string())
    };
    records.push(campaign("created", now - 10 * minute, json!({"account_id": "acme", "name": "Spring sale"})));
    records.push(campaign("scheduled", now - 9 * minute, json!({"send_at": now - 5 * minute})));
    records.push(campaign("started_sending", now - 5 * minute, json!({"recipients": 8})));
    let dispatch_finished = campaign("dispatch_finished", now - 4 * minute, json!({"dispatched": 8}));

    let message = |id: &str, kind: &str, at: i64, extra: Value| {
        let mut event = json!({
            "event_id": format!("{id}-{kind}-{at}"), "occurred_at": at, "message_id": id, "kind": kind,
        });
        merge(&mut event, extra);
        (topics.message_events.as_str(), id.to_owned(), event.to_string())
    };
    for n in 1..=8 {
        let id = format!("msg-{n}");
        let t = now - 5 * minute + n * 1000;
        let to = format!("+1555010{n:04}");
        records.push(message(&id, "accepted", t, json!({
            "campaign_id": CAMPAIGN, "account_id": "acme", "from": "+15550000000", "to": to,
            "channel": if n == 8 { "mms" } else { "sms" }, "segments": if n == 3 { 2 } else { 1 },
        })));
        match n {
            // A receipt that arrives before the message's sent event.
            2 => {
                records.push(message(&id, "delivery_receipt", t + 3 * minute, json!({"outcome": "delivered"})));
                records.push(message(&id, "sent", t + 2000, json!({"carrier_message_id": "0A1B2C3D"})));
            }
            // Undelivered, with the receipt repeated.
            5 => {
                records.push(message(&id, "queued", t + 500, json!({})));
                records.push(message(&id, "sent", t + 2000, json!({})));
                let receipt = message(&id, "delivery_receipt", t + 2 * minute, json!({"outcome": "undelivered", "error_code": 30003}));
                records.push(receipt.clone());
                records.push(receipt);
            }
            // Could not be sent at all.
            7 => records.push(message(&id, "failed", t + 1500, json!({"error_code": 30001}))),
            _ => {
                records.push(message(&id, "queued", t + 500, json!({})));
                records.push(message(&id, "sending", t + 1000, json!({})));
                records.push(message(&id, "delivery_receipt", t + minute, json!({"outcome": "delivered"})));
                // Late: the sent event arrives after the receipt and changes nothing.
                records.push(message(&id, "sent", t + 2000, json!({})));
            }
        }
    }
    records.push(dispatch_finished);
    records.push(message("inbound-1", "inbound_receiving", now - minute, json!({"account_id": "acme", "from": "+15550109999", "to": "+15550000000"})));
    records.push(message("inbound-1", "inbound_received", now - minute + 200, json!({"account_id": "acme", "from": "+15550109999", "to": "+15550000000"})));
    records.push((topics.message_events.as_str(), "msg-9".to_owned(), "{\"event_id\": \"broken".to_owned()));
    records
}

fn merge(event: &mut Value, extra: Value) {
    if let (Value::Object(event), Value::Object(extra)) = (event, extra) {
        event.extend(extra);
    }
}

/// Prints every published record until the campaign completes, the inbound
/// message is received and the broken record is dead-lettered.
async fn tail(bootstrap: &str, topics: &Topics) -> anyhow::Result<()> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "smsfold-demo-tail")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for topic in [&topics.message_changes, &topics.campaign_changes, &topics.dead_letter] {
        for partition in 0..PARTITIONS {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
    }
    consumer.assign(&assignment)?;

    let started = Instant::now();
    let mut seen = Seen::default();
    while !(seen.completed && seen.received && seen.dead_letters > 0) {
        let left = TIMEOUT.checked_sub(started.elapsed()).context("the demo campaign did not complete within 60 s")?;
        let record = tokio::time::timeout(left, consumer.recv())
            .await
            .context("the demo campaign did not complete within 60 s")??;
        seen.print(&record, topics)?;
    }
    // The consumer fetches each partition on its own, so the completion can
    // arrive before message changes of another partition that were written
    // earlier. Print those too: read until no record came for a while.
    while let Ok(record) = tokio::time::timeout(DRAIN_IDLE, consumer.recv()).await {
        seen.print(&record?, topics)?;
    }
    Ok(())
}

/// The kinds of record the tail has printed so far.
#[derive(Debug, Default)]
struct Seen {
    completed: bool,
    received: bool,
    dead_letters: usize,
}

impl Seen {
    /// Prints one status change or dead letter.
    fn print(&mut self, record: &BorrowedMessage<'_>, topics: &Topics) -> anyhow::Result<()> {
        let value = record.payload().unwrap_or_default();
        if record.topic() == topics.message_changes {
            let change = MessageStatusChange::decode(Format::Json, value)?;
            let previous = change.previous.map_or("(new)", |status| status.as_str());
            println!("message  {:<10} {:>11} -> {:<11} cause {}", change.message_id, previous, change.status, change.cause_event_id);
            self.received |= change.status == smsfold_domain::MessageStatus::Received;
        } else if record.topic() == topics.campaign_changes {
            let change = CampaignStatusChange::decode(Format::Json, value)?;
            let previous = change.previous.map_or("(new)", |status| status.as_str());
            println!("campaign {:<10} {:>11} -> {:<11} cause {}", change.campaign_id, previous, change.status, change.cause_event_id);
            self.completed |= change.status == CampaignStatus::Completed;
        } else {
            self.dead_letters += 1;
            let reason = record
                .headers()
                .and_then(|headers| headers.iter().find(|h| h.key == smsfold_worker::dead_letter::REASON_HEADER))
                .and_then(|header| header.value)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            println!("dead letter  key {:?} reason {reason}", String::from_utf8_lossy(record.key().unwrap_or_default()));
        }
        Ok(())
    }
}
