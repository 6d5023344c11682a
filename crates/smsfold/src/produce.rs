//! `smsfold produce`: sends events from a JSON Lines file to the input
//! topics.
//!
//! Each non-blank line is one event in the JSON form of docs/events.md. A
//! line with `message_id` is a message event, and one with `campaign_id` and
//! no `message_id` a campaign event. Each goes to its topic, keyed by that
//! id, with `content-type: application/json`. A delivery receipt in SMPP
//! form without either id is a message event keyed by its carrier id. Every line is decoded as the worker
//! decodes it before anything is sent, so an invalid file sends nothing
//! (unless --skip-invalid is given).

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use smsfold_domain::MessageEventKind;
use smsfold_smpp::{read_smpp_receipt, StateTable};
use smsfold_wire::{decode_campaign_event, decode_message_event, Format, CONTENT_TYPE_HEADER};
use smsfold_worker::WorkerConfig;

use crate::cli::ProduceArgs;
use crate::kafka;
use crate::progress::Progress;

/// Records handed to the producer and not yet acknowledged, at most.
const MAX_IN_FLIGHT: usize = 50_000;
/// Invalid lines listed on stderr before the rest are only counted.
const MAX_LISTED_INVALID: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventTopic {
    Message,
    Campaign,
}

/// A valid line: where it goes and its key.
#[derive(Debug)]
struct Routed {
    topic: EventTopic,
    key: String,
}

pub async fn produce(args: &ProduceArgs, config: &WorkerConfig) -> anyhow::Result<()> {
    let input = Input::open(&args.file)?;
    let name = input.name();

    let checked = check_all(&input, config.max_record_bytes)?;
    for (line, reason) in checked.invalid.iter().take(MAX_LISTED_INVALID) {
        eprintln!("invalid line {line} of {name}: {reason}");
    }
    if let Some((first, reason)) = checked.invalid.first() {
        let more = checked.invalid.len() - 1;
        if !args.skip_invalid {
            let others = match more {
                0 => String::new(),
                1 => " (1 more line is invalid)".to_owned(),
                n => format!(" ({n} more lines are invalid)"),
            };
            bail!(
                "line {first} of {name}: {reason}{others}; nothing was sent. Fix the lines, or pass --skip-invalid to \
                 send only the valid ones"
            );
        }
    }

    let topics = &config.topics;
    let metadata = kafka::metadata_client(config)?;
    if checked.messages > 0 {
        kafka::partition_count(&metadata, &topics.message_events, "topics.message_events")?;
    }
    if checked.campaigns > 0 {
        kafka::partition_count(&metadata, &topics.campaign_events, "topics.campaign_events")?;
    }

    let skip: BTreeSet<usize> = checked.invalid.iter().map(|(line, _)| *line).collect();
    let mut progress = Progress::new("sent", Some(checked.messages + checked.campaigns));
    send_all(&input, &skip, config, &mut progress).await?;
    progress.finish();

    eprintln!(
        "sent {} records from {name}: {} message events to {}, {} campaign events to {}, in {:.1} s ({:.0} records/s)",
        progress.count(),
        checked.messages,
        topics.message_events,
        checked.campaigns,
        topics.campaign_events,
        progress.elapsed().as_secs_f64(),
        progress.rate(),
    );
    if !checked.invalid.is_empty() {
        eprintln!("skipped {} invalid lines", checked.invalid.len());
    }
    Ok(())
}

/// The outcome of checking every line.
#[derive(Debug, Default)]
struct Checked {
    messages: u64,
    campaigns: u64,
    /// Line numbers (from 1) and reasons, in file order.
    invalid: Vec<(usize, String)>,
}

fn check_all(input: &Input, max_record_bytes: usize) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    for line in input.lines()? {
        let (number, text) = line?;
        let Some(text) = text else { continue };
        match route(&text, max_record_bytes) {
            Ok(Routed { topic: EventTopic::Message, .. }) => checked.messages += 1,
            Ok(Routed { topic: EventTopic::Campaign, .. }) => checked.campaigns += 1,
            Err(reason) => checked.invalid.push((number, reason)),
        }
    }
    Ok(checked)
}

/// Decodes one line as the worker would and returns its topic and key, or
/// why the worker would reject it.
fn route(line: &str, max_record_bytes: usize) -> Result<Routed, String> {
    if line.len() > max_record_bytes {
        return Err(format!(
            "the line is {} bytes, more than max_record_bytes ({max_record_bytes}); the worker would dead-letter it \
             as too_large",
            line.len()
        ));
    }
    let value: serde_json::Value = serde_json::from_str(line).map_err(|error| format!("invalid JSON: {error}"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object; write one event object per line".to_owned());
    };
    let has = |field: &str| object.get(field).is_some_and(|value| !value.is_null());
    if has("message_id") {
        let event = decode_message_event(Format::Json, line.as_bytes())
            .map_err(|error| format!("invalid message event: {error}"))?;
        Ok(Routed { topic: EventTopic::Message, key: event.message_id })
    } else if has("campaign_id") {
        let event = decode_campaign_event(Format::Json, line.as_bytes())
            .map_err(|error| format!("invalid campaign event: {error}"))?;
        Ok(Routed { topic: EventTopic::Campaign, key: event.campaign_id })
    } else if object.get("kind").and_then(serde_json::Value::as_str) == Some("delivery_receipt") {
        let event = decode_message_event(Format::Json, line.as_bytes())
            .map_err(|error| format!("invalid message event: {error}"))?;
        let MessageEventKind::SmppReceipt { receipt, error_code, done_at } = &event.kind else {
            return Err("a delivery receipt needs message_id unless it is in SMPP form".to_owned());
        };
        // The state table changes outcomes only, so the default one finds
        // the carrier id as the worker's does.
        let reading = read_smpp_receipt(receipt, *error_code, *done_at, &StateTable::new())
            .map_err(|error| format!("invalid receipt: {error}"))?;
        Ok(Routed { topic: EventTopic::Message, key: reading.carrier_id })
    } else {
        Err("neither message_id nor campaign_id is set; a message event needs message_id, a campaign event \
             campaign_id"
            .to_owned())
    }
}

/// Sends every valid line in order and waits until the broker acknowledged
/// each one.
async fn send_all(
    input: &Input,
    skip: &BTreeSet<usize>,
    config: &WorkerConfig,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let producer: FutureProducer = kafka::client_config(config)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // murmur2 places keyed records where Java clients would.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .map_err(|error| kafka::client_error(error, "could not create the Kafka producer"))?;
    let headers =
        OwnedHeaders::new().insert(Header { key: CONTENT_TYPE_HEADER, value: Some(Format::Json.media_type()) });
    let mut in_flight: VecDeque<Pending> = VecDeque::new();

    for line in input.lines()? {
        let (number, text) = line?;
        let Some(text) = text else { continue };
        if skip.contains(&number) {
            continue;
        }
        let routed = route(&text, config.max_record_bytes).map_err(|reason| {
            anyhow::anyhow!("line {number} changed while it was sent and is now invalid: {reason}")
        })?;
        let topic = match routed.topic {
            EventTopic::Message => config.topics.message_events.as_str(),
            EventTopic::Campaign => config.topics.campaign_events.as_str(),
        };

        let mut record = FutureRecord::to(topic).key(&routed.key).payload(&text).headers(headers.clone());
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push_back(Pending { line: number, topic: topic.to_owned(), delivery });
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    match in_flight.pop_front() {
                        Some(oldest) => oldest.wait(progress).await?,
                        None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                    }
                }
                Err((error, _)) => bail!("could not send line {number} to topic {topic:?}: {error}"),
            }
        }
        while in_flight.len() > MAX_IN_FLIGHT {
            if let Some(oldest) = in_flight.pop_front() {
                oldest.wait(progress).await?;
            }
        }
    }
    while let Some(oldest) = in_flight.pop_front() {
        oldest.wait(progress).await?;
    }
    Ok(())
}

/// A record handed to the producer.
struct Pending {
    line: usize,
    topic: String,
    delivery: DeliveryFuture,
}

impl Pending {
    /// Waits for the broker's acknowledgement and counts it.
    async fn wait(self, progress: &mut Progress) -> anyhow::Result<()> {
        let Pending { line, topic, delivery } = self;
        let failed = |error: String| {
            anyhow::anyhow!(
                "could not send line {line} to topic {topic:?}: {error}; the lines before it may have been sent"
            )
        };
        match delivery.await {
            Ok(Ok(_)) => {
                progress.inc(1);
                Ok(())
            }
            Ok(Err((error, _))) => Err(failed(error.to_string())),
            Err(_canceled) => Err(failed("the producer was closed before the broker acknowledged it".to_owned())),
        }
    }
}

/// The events to send: a file, read twice (to check, then to send), or
/// stdin, kept in memory because it can be read only once.
enum Input {
    File(PathBuf),
    Stdin(Vec<u8>),
}

/// One line: its number (from 1) and its text, `None` when blank.
type Line = (usize, Option<String>);

impl Input {
    fn open(path: &Path) -> anyhow::Result<Input> {
        if path == Path::new("-") {
            let mut buffer = Vec::new();
            std::io::stdin().lock().read_to_end(&mut buffer).context("could not read the events from stdin")?;
            return Ok(Input::Stdin(buffer));
        }
        File::open(path).with_context(|| format!("could not open the events file {}", path.display()))?;
        Ok(Input::File(path.to_owned()))
    }

    fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin(_) => "stdin".to_owned(),
        }
    }

    /// Returns the lines, without their line ends.
    fn lines(&self) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<Line>> + '_>> {
        let reader: Box<dyn BufRead + '_> = match self {
            Input::File(path) => Box::new(BufReader::new(
                File::open(path).with_context(|| format!("could not open the events file {}", path.display()))?,
            )),
            Input::Stdin(buffer) => Box::new(buffer.as_slice()),
        };
        let name = self.name();
        Ok(Box::new(reader.split(b'\n').enumerate().map(move |(index, bytes)| {
            let number = index + 1;
            let mut bytes = bytes.with_context(|| format!("could not read line {number} of {name}"))?;
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            let text = String::from_utf8(bytes).unwrap_or_else(|error| {
                // Kept as an invalid line: JSON decoding reports it with its number.
                String::from_utf8_lossy(error.as_bytes()).into_owned()
            });
            Ok((number, (!text.trim().is_empty()).then_some(text)))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1024 * 1024;

    #[test]
    fn message_event_routed_by_message_id() {
        let line =
            r#"{"event_id":"e1","occurred_at":1710525600150,"message_id":"m-1","kind":"queued","campaign_id":"c-1"}"#;
        let routed = route(line, LIMIT).unwrap();
        assert_eq!(routed.topic, EventTopic::Message);
        assert_eq!(routed.key, "m-1");
    }

    #[test]
    fn campaign_event_routed_by_campaign_id() {
        let line = r#"{"event_id":"c1","occurred_at":"2024-03-14T09:00:00Z","campaign_id":"c-1","kind":"cancelled"}"#;
        let routed = route(line, LIMIT).unwrap();
        assert_eq!(routed.topic, EventTopic::Campaign);
        assert_eq!(routed.key, "c-1");
    }

    #[test]
    fn null_message_id_means_campaign_event() {
        let line = r#"{"event_id":"c1","occurred_at":1,"message_id":null,"campaign_id":"c-1","kind":"cancelled"}"#;
        assert_eq!(route(line, LIMIT).unwrap().topic, EventTopic::Campaign);
    }

    #[test]
    fn decode_error_named() {
        let line = r#"{"occurred_at":1,"message_id":"m-1","kind":"queued"}"#;
        assert_eq!(route(line, LIMIT).unwrap_err(), "invalid message event: missing field event_id");
    }

    #[test]
    fn carrier_receipt_keyed_by_carrier_id() {
        let line = r#"{"event_id":"r1","occurred_at":1,"kind":"delivery_receipt","receipt_text":"id: 7731 stat: UNDELIV err: 001"}"#;
        let routed = route(line, 1024).unwrap();
        assert_eq!((routed.topic, routed.key.as_str()), (EventTopic::Message, "7731"));
    }

    #[test]
    fn line_without_id_rejected() {
        let error = route(r#"{"event_id":"e1","kind":"queued"}"#, LIMIT).unwrap_err();
        assert!(error.starts_with("neither message_id nor campaign_id is set"), "{error}");
    }

    #[test]
    fn non_object_rejected() {
        assert!(route("[1, 2]", LIMIT).unwrap_err().starts_with("not a JSON object"));
        assert!(route("{\"event_id\": ", LIMIT).unwrap_err().starts_with("invalid JSON"));
    }

    #[test]
    fn oversized_line_rejected() {
        let line = r#"{"event_id":"e1","occurred_at":1,"message_id":"m-1","kind":"queued"}"#;
        let error = route(line, 10).unwrap_err();
        assert!(error.contains("more than max_record_bytes (10)"), "{error}");
    }

    #[test]
    fn lines_numbered_with_blanks() {
        let input = Input::Stdin(b"{\"a\":1}\r\n\n  \n{\"b\":2}".to_vec());
        let lines: Vec<Line> = input.lines().unwrap().map(Result::unwrap).collect();
        assert_eq!(lines, [(1, Some("{\"a\":1}".to_owned())), (2, None), (3, None), (4, Some("{\"b\":2}".to_owned()))]);
    }
}
