//! `smsfold tail`: prints the status changes, and optionally the dead
//! letters, as the workers publish them.
//!
//! Each record is decoded in the format its `content-type` header names and
//! printed in the JSON form of docs/events.md, as one readable line or one
//! JSON object per line. Reading is read_committed and joins no consumer
//! group, so it does not disturb the workers.

use std::collections::HashSet;
use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset};
use serde::Serialize;
use serde_json::{Map, Value};
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange, CONTENT_TYPE_HEADER};
use smsfold_worker::{dead_letter, WorkerConfig};
use tracing::warn;

use crate::cli::{TailArgs, TailOutput};
use crate::kafka;

/// The kind of record a topic contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Message,
    Campaign,
    DeadLetter,
}

impl Entity {
    fn name(self) -> &'static str {
        match self {
            Entity::Message => "message",
            Entity::Campaign => "campaign",
            Entity::DeadLetter => "dead_letter",
        }
    }
}

pub async fn tail(args: &TailArgs, config: &WorkerConfig) -> anyhow::Result<()> {
    let topics = &config.topics;
    let mut sources = vec![
        (Entity::Message, topics.message_changes.as_str(), "topics.message_changes"),
        (Entity::Campaign, topics.campaign_changes.as_str(), "topics.campaign_changes"),
    ];
    if args.dead_letters {
        sources.push((Entity::DeadLetter, topics.dead_letter.as_str(), "topics.dead_letter"));
    }

    let consumer = kafka::reader(config, false)?;
    let mut assignment = Vec::new();
    for (_, topic, setting) in &sources {
        assignment.push((*topic, kafka::partition_count(&consumer, topic, setting)?));
    }
    let start = if args.from_beginning { Offset::Beginning } else { Offset::End };
    kafka::assign_all(&consumer, &assignment, start)?;

    let mut filter = args.campaign.clone().map(CampaignFilter::new);
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0u64;
    let idle = args.idle_exit_ms.map(Duration::from_millis);
    while args.max_records.is_none_or(|max| printed < max) {
        let received = match idle {
            Some(idle) => match tokio::time::timeout(idle, consumer.recv()).await {
                Ok(received) => received,
                Err(_) => break,
            },
            None => consumer.recv().await,
        };
        let record = match received {
            Ok(record) => record,
            Err(error) => {
                warn!(%error, "Kafka consumer error; retrying");
                continue;
            }
        };
        let Some(entity) = sources.iter().find(|(_, topic, _)| *topic == record.topic()).map(|(entity, ..)| *entity)
        else {
            continue;
        };
        let described = match describe(entity, &record) {
            Ok(described) => described,
            Err(error) => {
                warn!(
                    topic = record.topic(),
                    partition = record.partition(),
                    offset = record.offset(),
                    error = format!("{error:#}"),
                    "skipped a record that could not be decoded"
                );
                continue;
            }
        };
        if let Some(filter) = &mut filter {
            if !filter.admits(entity, &described.fields) {
                continue;
            }
        }
        let line = match args.output {
            TailOutput::Json => described.json,
            TailOutput::Text => text_line(entity, &described.fields),
        };
        if let Err(error) = writeln!(stdout, "{line}") {
            // A closed pipe (`smsfold tail | head`) ends the command quietly.
            if error.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(error).context("could not write to stdout");
        }
        printed += 1;
    }
    stdout.flush().context("could not write to stdout")
}

/// A decoded record.
struct Described {
    /// The record's fields, for the text line and the campaign filter.
    fields: Map<String, Value>,
    /// The line `--output json` prints: where the record is (`entity`,
    /// `topic`, `partition`, `offset`), then its fields in their published
    /// order.
    json: String,
}

fn describe(entity: Entity, record: &BorrowedMessage<'_>) -> anyhow::Result<Described> {
    let envelope = Envelope {
        entity: entity.name(),
        topic: record.topic(),
        partition: record.partition(),
        offset: record.offset(),
    };
    let value = record.payload().unwrap_or_default();
    let body = match entity {
        Entity::Message | Entity::Campaign => {
            let format = Format::detect(kafka::header(record, CONTENT_TYPE_HEADER), value)?;
            let mut json = Vec::new();
            if entity == Entity::Message {
                MessageStatusChange::decode(format, value)?.encode(Format::Json, &mut json);
            } else {
                CampaignStatusChange::decode(format, value)?.encode(Format::Json, &mut json);
            }
            String::from_utf8(json)?
        }
        Entity::DeadLetter => serde_json::to_string(&DeadLetter::of(record))?,
    };
    let fields: Map<String, Value> = serde_json::from_str(&body)?;

    // Both are JSON objects: join them into one, the envelope first.
    let envelope = serde_json::to_string(&envelope)?;
    let json = match body.strip_prefix('{').filter(|rest| *rest != "}") {
        Some(rest) => format!("{},{rest}", &envelope[..envelope.len() - 1]),
        None => envelope,
    };
    Ok(Described { fields, json })
}

/// A record's position: its topic, partition and offset.
#[derive(Serialize)]
struct Envelope<'a> {
    entity: &'static str,
    topic: &'a str,
    partition: i32,
    offset: i64,
}

/// A dead letter's fields: its key, the headers the worker added and the
/// original value.
#[derive(Serialize)]
struct DeadLetter {
    key: Option<String>,
    reason: Option<String>,
    error: Option<String>,
    source_topic: Option<String>,
    source_partition: Option<i64>,
    source_offset: Option<i64>,
    content_type: Option<String>,
    /// The original value as text when it is UTF-8 (JSON events), else null.
    value: Option<String>,
    value_bytes: usize,
}

impl DeadLetter {
    fn of(record: &BorrowedMessage<'_>) -> Self {
        let text = |name| kafka::header_text(record, name);
        let number = |name| kafka::header_text(record, name).and_then(|n| n.parse::<i64>().ok());
        let value = record.payload().unwrap_or_default();
        DeadLetter {
            key: record.key().map(|key| String::from_utf8_lossy(key).into_owned()),
            reason: text(dead_letter::REASON_HEADER),
            error: text(dead_letter::ERROR_HEADER),
            source_topic: text(dead_letter::SOURCE_TOPIC_HEADER),
            source_partition: number(dead_letter::SOURCE_PARTITION_HEADER),
            source_offset: number(dead_letter::SOURCE_OFFSET_HEADER),
            content_type: text(CONTENT_TYPE_HEADER),
            value: std::str::from_utf8(value).ok().map(str::to_owned),
            value_bytes: value.len(),
        }
    }
}

/// Renders a described record as one line for people.
fn text_line(entity: Entity, value: &Map<String, Value>) -> String {
    let field = |name: &str| match value.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(other) => other.to_string(),
    };
    let transition = || {
        let previous = match value.get("previous_status") {
            Some(Value::String(status)) => status.clone(),
            _ => "(new)".to_owned(),
        };
        format!("{previous} -> {}", field("status"))
    };
    match entity {
        Entity::Message => {
            let mut line = format!("{}  message   {}  {}", field("occurred_at"), field("message_id"), transition());
            if value.get("campaign_id").is_some_and(|id| !id.is_null()) {
                line.push_str(&format!("  campaign {}", field("campaign_id")));
            }
            if value.get("error_code").and_then(Value::as_u64).is_some_and(|code| code != 0) {
                line.push_str(&format!("  error {}", field("error_code")));
            }
            if value.contains_key("receipt_stat") || value.contains_key("receipt_err") {
                line.push_str(&format!("  receipt {}/{}", field("receipt_stat"), field("receipt_err")));
            }
            line.push_str(&format!("  cause {}", field("cause_event_id")));
            line
        }
        Entity::Campaign => {
            let counts = value.get("counts").cloned().unwrap_or_default();
            let count = |name: &str| counts.get(name).map_or("-".to_owned(), Value::to_string);
            let rate = counts
                .get("delivery_rate")
                .and_then(Value::as_f64)
                .map_or("-".to_owned(), |rate| format!("{:.1}%", rate * 100.0));
            format!(
                "{}  campaign  {}  {}  messages {}  delivered {}  rate {rate}  cause {}",
                field("occurred_at"),
                field("campaign_id"),
                transition(),
                count("messages"),
                count("delivered"),
                field("cause_event_id"),
            )
        }
        Entity::DeadLetter => format!(
            "dead letter  {}[{}]@{}  key {}  reason {}: {}",
            field("source_topic"),
            field("source_partition"),
            field("source_offset"),
            field("key"),
            field("reason"),
            field("error"),
        ),
    }
}

/// Admits the records of one campaign: its campaign changes, the changes of
/// messages that name it, and later changes and dead letters of those
/// messages.
///
/// NOTE: a message's changes before the first one that names the campaign
/// (possible when a receipt arrived before the message's accepted event)
/// have already gone by and are not printed.
struct CampaignFilter {
    campaign_id: String,
    messages: HashSet<String>,
}

impl CampaignFilter {
    fn new(campaign_id: String) -> Self {
        CampaignFilter { campaign_id, messages: HashSet::new() }
    }

    fn admits(&mut self, entity: Entity, value: &Map<String, Value>) -> bool {
        let text = |name: &str| value.get(name).and_then(Value::as_str);
        match entity {
            Entity::Campaign => text("campaign_id") == Some(self.campaign_id.as_str()),
            Entity::Message => {
                let Some(message_id) = text("message_id") else { return false };
                if text("campaign_id") == Some(self.campaign_id.as_str()) {
                    self.messages.insert(message_id.to_owned());
                    return true;
                }
                self.messages.contains(message_id)
            }
            Entity::DeadLetter => text("key").is_some_and(|key| key == self.campaign_id || self.messages.contains(key)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn message_line_readable() {
        let value = object(json!({
            "message_id": "m-1", "campaign_id": "c-1", "previous_status": "sent", "status": "undelivered",
            "occurred_at": "2024-03-15T18:00:04.9Z", "cause_event_id": "e-7", "error_code": 30003,
        }));
        assert_eq!(
            text_line(Entity::Message, &value),
            "2024-03-15T18:00:04.9Z  message   m-1  sent -> undelivered  campaign c-1  error 30003  cause e-7"
        );
    }

    #[test]
    fn receipt_change_shows_raw_report() {
        let value = object(json!({
            "message_id": "m-1", "campaign_id": null, "previous_status": "sent", "status": "undelivered",
            "occurred_at": "2024-03-15T18:00:31Z", "cause_event_id": "e-12", "error_code": 1,
            "receipt_stat": "UNDELIV", "receipt_err": "001",
        }));
        assert_eq!(
            text_line(Entity::Message, &value),
            "2024-03-15T18:00:31Z  message   m-1  sent -> undelivered  error 1  receipt UNDELIV/001  cause e-12"
        );
    }

    #[test]
    fn first_campaign_change_readable() {
        let value = object(json!({
            "campaign_id": "c-1", "previous_status": null, "status": "draft", "occurred_at": "2024-03-14T09:00:00Z",
            "cause_event_id": "ce-1", "counts": {"messages": 0, "delivered": 0, "delivery_rate": null},
        }));
        assert_eq!(
            text_line(Entity::Campaign, &value),
            "2024-03-14T09:00:00Z  campaign  c-1  (new) -> draft  messages 0  delivered 0  rate -  cause ce-1"
        );
    }

    #[test]
    fn filter_follows_campaign_messages() {
        let mut filter = CampaignFilter::new("c-1".to_owned());
        let change = |message: &str, campaign: Value| object(json!({"message_id": message, "campaign_id": campaign}));

        assert!(!filter.admits(Entity::Message, &change("m-1", Value::Null)));
        assert!(filter.admits(Entity::Message, &change("m-1", json!("c-1"))));
        assert!(filter.admits(Entity::Message, &change("m-1", Value::Null)));
        assert!(!filter.admits(Entity::Message, &change("m-2", json!("c-2"))));
        assert!(filter.admits(Entity::DeadLetter, &object(json!({"key": "m-1"}))));
        assert!(!filter.admits(Entity::DeadLetter, &object(json!({"key": "m-2"}))));
        assert!(filter.admits(Entity::Campaign, &object(json!({"campaign_id": "c-1"}))));
        assert!(!filter.admits(Entity::Campaign, &object(json!({"campaign_id": "c-2"}))));
    }
}
