//! The whole pipeline on a real broker: two worker instances in one group,
//! three campaigns of thousands of messages with receipts out of order and
//! repeated, a cancelled campaign, one-off and inbound messages, events in
//! both formats and poison records. At the end the change topics, the
//! dead-letter topic and the projections are checked record by record
//! against an expectation the test computes on its own.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message as _;
use rdkafka::Message;
use serde_json::{json, Value};
use smsfold_suite::{
    create_topics, header_text, key_text, message_status, produce, read_topic, start_worker, unique, wait_until, Record,
};
use smsfold_wire::proto;
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange};
use smsfold_worker::{Topics, WorkerConfig};
use tokio::sync::watch;

/// Outbound statuses in the order a message may move through them, written
/// out here again so that the expectation does not come from the code under
/// test.
const OUTBOUND_ORDER: [&str; 9] =
    ["accepted", "scheduled", "queued", "sending", "sent", "canceled", "failed", "undelivered", "delivered"];
const INBOUND_ORDER: [&str; 2] = ["receiving", "received"];

fn rank(status: &str) -> usize {
    OUTBOUND_ORDER
        .iter()
        .chain(INBOUND_ORDER.iter())
        .position(|s| *s == status)
        .unwrap_or_else(|| panic!("unknown status {status}"))
}

/// A small deterministic generator (xorshift64*), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// One input event as the test produces it.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    message_id: String,
    kind: &'static str,
    status: &'static str,
    at: i64,
    campaign: Option<String>,
    outcome_code: u32,
}

/// What the test expects one message to go through.
#[derive(Debug, Default, Clone)]
struct Expected {
    /// (previous, status, cause event id), in order.
    changes: Vec<(Option<String>, String, String)>,
    campaign: Option<String>,
}

impl Expected {
    fn current(&self) -> Option<&str> {
        self.changes.last().map(|(_, status, _)| status.as_str())
    }

    /// Applies an event as it arrives: only a higher-ranked status changes.
    fn arrive(&mut self, event: &Event) {
        if event.campaign.is_some() {
            self.campaign = event.campaign.clone();
        }
        let moves = self.current().is_none_or(|current| rank(event.status) > rank(current));
        if moves {
            let previous = self.current().map(str::to_owned);
            self.changes.push((previous, event.status.to_owned(), event.id.clone()));
        }
    }

    fn cancel(&mut self, cause: &str) {
        let current = self.current().expect("a known message").to_owned();
        if ["accepted", "scheduled", "queued"].contains(&current.as_str()) {
            self.changes.push((Some(current), "canceled".to_owned(), cause.to_owned()));
        }
    }
}

struct Scenario {
    topics: Topics,
    base: i64,
    rng: Rng,
    sequence: u64,
}

impl Scenario {
    fn event(&mut self, message_id: &str, kind: &'static str, status: &'static str, campaign: Option<&str>) -> Event {
        self.sequence += 1;
        Event {
            id: format!("ev-{}", self.sequence),
            message_id: message_id.to_owned(),
            kind,
            status,
            at: self.base + self.sequence as i64 * 10,
            campaign: campaign.map(str::to_owned),
            outcome_code: if status == "undelivered" || status == "failed" { 30_000 + self.rng.below(10) as u32 } else { 0 },
        }
    }

    /// Builds one outbound message's events in the order they will arrive:
    /// late, repeated and out of order in part.
    fn outbound(&mut self, message_id: &str, campaign: Option<&str>) -> Vec<Event> {
        let mut events = vec![self.event(message_id, "accepted", "accepted", campaign)];
        if self.rng.chance(20) {
            events.push(self.event(message_id, "scheduled", "scheduled", None));
        }
        events.push(self.event(message_id, "queued", "queued", None));
        if self.rng.chance(5) {
            events.push(self.event(message_id, "failed", "failed", None));
            return events;
        }
        if self.rng.chance(50) {
            events.push(self.event(message_id, "sending", "sending", None));
        }
        events.push(self.event(message_id, "sent", "sent", None));
        let outcome = if self.rng.chance(88) { "delivered" } else { "undelivered" };
        events.push(self.event(message_id, "delivery_receipt", outcome, None));
        if self.rng.chance(15) {
            // A repeated receipt, as at-least-once sources send them.
            let repeat = events.last().cloned().expect("a receipt");
            events.push(repeat);
        }
        if self.rng.chance(8) {
            // A conflicting second receipt: delivered wins in either order.
            let other = if outcome == "delivered" { "undelivered" } else { "delivered" };
            events.push(self.event(message_id, "delivery_receipt", other, None));
        }
        if self.rng.chance(30) {
            // The receipt overtakes the sent event.
            let receipt = events.iter().position(|e| e.kind == "delivery_receipt").expect("a receipt");
            let sent = events.iter().position(|e| e.kind == "sent").expect("a sent event");
            events.swap(sent, receipt);
        }
        if self.rng.chance(10) {
            // The whole history arrives backwards.
            events.reverse();
        }
        events
    }

    fn encode(&mut self, event: &Event) -> Record {
        let use_protobuf = self.rng.chance(50);
        let value = if use_protobuf { encode_protobuf(event) } else { encode_json(event) };
        let content_type = if use_protobuf {
            Some("application/x-protobuf")
        } else if self.rng.chance(10) {
            None
        } else {
            Some("application/json")
        };
        Record {
            topic: self.topics.message_events.clone(),
            key: Some(event.message_id.clone().into_bytes()),
            value,
            content_type,
        }
    }

    fn campaign_event(&mut self, campaign: &str, kind: &str, extra: Value) -> (String, Record) {
        self.sequence += 1;
        let id = format!("cev-{}", self.sequence);
        let mut event = json!({
            "event_id": id, "occurred_at": self.base + self.sequence as i64 * 10, "campaign_id": campaign, "kind": kind,
        });
        if let (Value::Object(event), Value::Object(extra)) = (&mut event, extra) {
            event.extend(extra);
        }
        let record = Record {
            topic: self.topics.campaign_events.clone(),
            key: Some(campaign.as_bytes().to_vec()),
            value: event.to_string().into_bytes(),
            content_type: Some("application/json"),
        };
        (id, record)
    }
}

fn encode_json(event: &Event) -> Vec<u8> {
    let mut value = json!({
        "event_id": event.id, "occurred_at": event.at, "message_id": event.message_id, "kind": event.kind,
    });
    let fields = value.as_object_mut().expect("an object");
    match event.kind {
        "accepted" => {
            fields.insert("campaign_id".into(), json!(event.campaign));
            fields.insert("account_id".into(), json!("acct-1"));
            fields.insert("to".into(), json!("+15550001111"));
            fields.insert("segments".into(), json!(2));
        }
        "failed" => {
            fields.insert("error_code".into(), json!(event.outcome_code));
        }
        "delivery_receipt" => {
            fields.insert("outcome".into(), json!(event.status));
            fields.insert("error_code".into(), json!(event.outcome_code));
        }
        "inbound_receiving" | "inbound_received" => {
            fields.insert("account_id".into(), json!("acct-1"));
            fields.insert("from".into(), json!("+15550002222"));
        }
        _ => {}
    }
    value.to_string().into_bytes()
}

fn encode_protobuf(event: &Event) -> Vec<u8> {
    use proto::message_event::Kind;
    let inbound = || proto::InboundMessage { account_id: "acct-1".into(), from: "+15550002222".into(), ..Default::default() };
    let kind = match event.kind {
        "accepted" => Kind::Accepted(proto::MessageAccepted {
            campaign_id: event.campaign.clone().unwrap_or_default(),
            account_id: "acct-1".into(),
            to: "+15550001111".into(),
            segments: 2,
            ..Default::default()
        }),
        "scheduled" => Kind::Scheduled(proto::MessageScheduled::default()),
        "queued" => Kind::Queued(proto::MessageQueued {}),
        "sending" => Kind::Sending(proto::MessageSending {}),
        "sent" => Kind::Sent(proto::MessageSent::default()),
        "failed" => Kind::Failed(proto::MessageFailed { error_code: event.outcome_code }),
        "delivery_receipt" => Kind::DeliveryReceipt(proto::DeliveryReceipt {
            outcome: if event.status == "delivered" {
                proto::ReceiptOutcome::Delivered as i32
            } else {
                proto::ReceiptOutcome::Undelivered as i32
            },
            error_code: event.outcome_code,
            ..Default::default()
        }),
        "canceled" => Kind::Canceled(proto::MessageCanceled {}),
        "inbound_receiving" => Kind::InboundReceiving(proto::InboundReceiving { message: Some(inbound()) }),
        "inbound_received" => Kind::InboundReceived(proto::InboundReceived { message: Some(inbound()) }),
        other => panic!("unknown kind {other}"),
    };
    proto::MessageEvent {
        event_id: event.id.clone(),
        occurred_at: Some(prost_types_timestamp(event.at)),
        message_id: event.message_id.clone(),
        kind: Some(kind),
    }
    .encode_to_vec()
}

fn prost_types_timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: millis / 1000, nanos: (millis % 1000) as i32 * 1_000_000 }
}

/// Interleaves the messages' event lists so campaigns overlap on the topic
/// while each message keeps its own order.
fn interleave(lists: Vec<Vec<Event>>, rng: &mut Rng) -> Vec<Event> {
    let mut queues: Vec<std::collections::VecDeque<Event>> = lists.into_iter().map(Into::into).collect();
    let mut out = Vec::new();
    while !queues.is_empty() {
        let index = rng.below(queues.len() as u64) as usize;
        out.push(queues[index].pop_front().expect("non-empty"));
        if queues[index].is_empty() {
            queues.swap_remove(index);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_matches_independent_expectation() {
    let prefix = unique("pipeline");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    create_topics(&[(&topics.message_events, 4), (&topics.campaign_events, 3)]).await;

    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("pipeline-group");
    config.topics = topics.clone();
    config.max_record_bytes = 16 * 1024;
    config.batch_max_wait = Duration::from_millis(50);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let instances = vec![start_worker(&config, "one", &shutdown), start_worker(&config, "two", &shutdown)];
    wait_until("both instances to get partitions", Duration::from_secs(60), || {
        instances.iter().all(|instance| instance.ready.load(Ordering::Acquire))
    })
    .await;

    let mut scenario = Scenario { topics: topics.clone(), base: 1_780_000_000_000, rng: Rng(0x5eed_1234), sequence: 0 };
    let mut expected: BTreeMap<String, Expected> = BTreeMap::new();
    let mut expected_campaigns: BTreeMap<String, Vec<(Option<String>, String, String)>> = BTreeMap::new();
    let mut campaign_records = Vec::new();

    // Two campaigns that complete, and one-off messages outside campaigns.
    let sizes = [("camp-a", 2000), ("camp-b", 1500)];
    let mut lists = Vec::new();
    for (campaign, size) in sizes {
        let (created, record) = scenario.campaign_event(campaign, "created", json!({"account_id": "acct-1", "name": campaign}));
        campaign_records.push(record);
        let (scheduled, record) = scenario.campaign_event(campaign, "scheduled", json!({"send_at": scenario.base}));
        campaign_records.push(record);
        let (started, record) = scenario.campaign_event(campaign, "started_sending", json!({"recipients": size}));
        campaign_records.push(record);
        expected_campaigns.insert(
            campaign.to_owned(),
            vec![
                (None, "draft".into(), created),
                (Some("draft".into()), "scheduled".into(), scheduled),
                (Some("scheduled".into()), "sending".into(), started),
            ],
        );
        for n in 0..size {
            lists.push(scenario.outbound(&format!("{campaign}-m{n:05}"), Some(campaign)));
        }
    }
    for n in 0..50 {
        lists.push(scenario.outbound(&format!("one-off-{n:03}"), None));
    }
    for n in 0..100 {
        let id = format!("inbound-{n:03}");
        let mut events = vec![
            scenario.event(&id, "inbound_receiving", "receiving", None),
            scenario.event(&id, "inbound_received", "received", None),
        ];
        if n % 4 == 0 {
            events.reverse();
        }
        lists.push(events);
    }
    let stream = interleave(lists, &mut scenario.rng);
    for event in &stream {
        expected.entry(event.message_id.clone()).or_default().arrive(event);
    }
    let mut records: Vec<Record> = stream.iter().map(|event| scenario.encode(event)).collect();
    for (campaign, size) in sizes {
        let (_, record) = scenario.campaign_event(campaign, "dispatch_finished", json!({"dispatched": size}));
        campaign_records.push(record);
    }

    // Poison records, each with the reason it must be dead-lettered for.
    let topic = topics.message_events.clone();
    let poison = |key: &str, value: &[u8], content_type: Option<&'static str>| Record {
        topic: topic.clone(),
        key: Some(key.as_bytes().to_vec()),
        value: value.to_vec(),
        content_type,
    };
    let direction_conflict = json!({"event_id": "poison-6", "occurred_at": 1, "message_id": "camp-a-m00001", "kind": "inbound_received"});
    let expected_dead_letters: Vec<(Record, &str)> = vec![
        (poison("bad-1", b"{\"event_id\": \"x\"", Some("application/json")), "invalid_json"),
        (poison("bad-2", br#"{"event_id":"poison-2","occurred_at":1,"message_id":"bad-2","kind":"teleported"}"#, Some("application/json")), "unknown_kind"),
        (poison("bad-3", br#"{"event_id":"poison-3","occurred_at":1,"kind":"queued"}"#, Some("application/json")), "missing_field"),
        (poison("bad-4", &vec![b'x'; 20_000], Some("application/json")), "too_large"),
        (poison("someone-else", br#"{"event_id":"poison-5","occurred_at":1,"message_id":"bad-5","kind":"queued"}"#, None), "key_mismatch"),
        (poison("bad-6", b"\xff\xff\xff\xff", Some("application/x-protobuf")), "invalid_protobuf"),
        (poison("bad-7", b"id,status", Some("text/csv")), "unsupported_content_type"),
        (poison("camp-a-m00001", direction_conflict.to_string().as_bytes(), Some("application/json")), "direction_conflict"),
    ];
    records.extend(expected_dead_letters.iter().map(|(record, _)| record.clone()));

    produce(&campaign_records[..campaign_records.len() - 2]).await;
    produce(&records).await;
    produce(&campaign_records[campaign_records.len() - 2..]).await;

    // The cancelled campaign: 1000 messages queued, 400 of them handed on
    // before the cancellation arrives.
    let cancelled = "camp-c";
    let mut phase_one = Vec::new();
    let mut campaign_c = Vec::new();
    for (kind, extra) in [("created", json!({"account_id": "acct-2", "name": "C"})), ("started_sending", json!({"recipients": 1000}))] {
        let (id, record) = scenario.campaign_event(cancelled, kind, extra);
        campaign_c.push(id);
        phase_one.push(record);
    }
    for n in 0..1000 {
        let id = format!("{cancelled}-m{n:04}");
        let mut events = vec![scenario.event(&id, "accepted", "accepted", Some(cancelled)), scenario.event(&id, "queued", "queued", None)];
        if n < 400 {
            events.push(scenario.event(&id, "sent", "sent", None));
        }
        for event in &events {
            expected.entry(id.clone()).or_default().arrive(event);
            phase_one.push(scenario.encode(event));
        }
    }
    produce(&phase_one).await;
    let probe_queued = format!("{cancelled}-m0999");
    let probe_sent = format!("{cancelled}-m0399");
    wait_until("the cancelled campaign's messages to be folded", Duration::from_secs(120), || {
        message_status(&instances, &probe_queued).as_deref() == Some("queued")
            && message_status(&instances, &probe_sent).as_deref() == Some("sent")
            && (0..1000).all(|n| message_status(&instances, &format!("{cancelled}-m{n:04}")).is_some())
    })
    .await;

    let (cancel_id, cancel_record) = scenario.campaign_event(cancelled, "cancelled", json!({}));
    produce(&[cancel_record]).await;
    for n in 0..1000 {
        expected.get_mut(&format!("{cancelled}-m{n:04}")).expect("known").cancel(&cancel_id);
    }
    // Messages that turn up after the cancellation are canceled too, and a
    // late event for a canceled message changes nothing.
    let mut phase_three = Vec::new();
    for n in 1000..1010 {
        let id = format!("{cancelled}-m{n:04}");
        let event = scenario.event(&id, "accepted", "accepted", Some(cancelled));
        let entry = expected.entry(id.clone()).or_default();
        entry.arrive(&event);
        entry.cancel(&cancel_id);
        phase_three.push(scenario.encode(&event));
    }
    let late = scenario.event(&format!("{cancelled}-m0500"), "sending", "sending", None);
    expected.get_mut(&late.message_id).expect("known").arrive(&late);
    phase_three.push(scenario.encode(&late));
    produce(&phase_three).await;
    expected_campaigns.insert(
        cancelled.to_owned(),
        vec![
            (None, "draft".into(), campaign_c[0].clone()),
            (Some("draft".into()), "sending".into(), campaign_c[1].clone()),
            (Some("sending".into()), "cancelled".into(), cancel_id.clone()),
        ],
    );

    // Wait for the outputs, then stop the workers cleanly.
    let expected_changes: usize = expected.values().map(|e| e.changes.len()).sum();
    let changes = read_topic(&topics.message_changes, expected_changes, Duration::from_secs(120));
    let campaign_changes = read_topic(&topics.campaign_changes, 11, Duration::from_secs(30));
    let dead_letters = read_topic(&topics.dead_letter, expected_dead_letters.len(), Duration::from_secs(30));

    // Message changes: each message's sequence, exactly once, in order.
    let mut actual: HashMap<String, Vec<(Option<String>, String, String)>> = HashMap::new();
    for record in &changes {
        let change = MessageStatusChange::decode(Format::Json, record.payload().expect("a value")).expect("a valid change");
        assert_eq!(key_text(record), change.message_id, "change keyed by message id");
        assert_eq!(header_text(record, "content-type").as_deref(), Some("application/json"));
        // A change names the campaign once the message's accepted event has
        // been folded, so early changes of a reordered history may not.
        if let Some(campaign) = change.campaign_id.as_deref() {
            let expected_campaign = expected.get(change.message_id.as_ref()).and_then(|e| e.campaign.as_deref());
            assert_eq!(Some(campaign), expected_campaign, "campaign of {}", change.message_id);
        }
        actual.entry(change.message_id.into_owned()).or_default().push((
            change.previous.map(|s| s.as_str().to_owned()),
            change.status.as_str().to_owned(),
            change.cause_event_id.into_owned(),
        ));
    }
    assert_eq!(changes.len(), expected_changes, "number of message status changes");
    assert_eq!(actual.len(), expected.len(), "messages with changes");
    for (message_id, expectation) in &expected {
        assert_eq!(actual.get(message_id), Some(&expectation.changes), "changes of {message_id}");
    }

    // Campaign changes.
    let mut actual_campaigns: BTreeMap<String, Vec<(Option<String>, String, String)>> = BTreeMap::new();
    let mut completion_counts = HashMap::new();
    for record in &campaign_changes {
        let change = CampaignStatusChange::decode(Format::Json, record.payload().expect("a value")).expect("a valid change");
        assert_eq!(key_text(record), change.campaign_id);
        if change.status.as_str() == "completed" {
            completion_counts.insert(change.campaign_id.to_string(), change.counts);
        }
        actual_campaigns.entry(change.campaign_id.into_owned()).or_default().push((
            change.previous.map(|s| s.as_str().to_owned()),
            change.status.as_str().to_owned(),
            change.cause_event_id.into_owned(),
        ));
    }
    for (campaign, size) in sizes {
        let sequence = actual_campaigns.get(campaign).unwrap_or_else(|| panic!("no changes for {campaign}"));
        assert_eq!(&sequence[..3], &expected_campaigns[campaign][..], "lifecycle of {campaign}");
        assert_eq!(sequence.len(), 4, "changes of {campaign}");
        assert_eq!((sequence[3].0.as_deref(), sequence[3].1.as_str()), (Some("sending"), "completed"));
        let counts = completion_counts[campaign];
        let settled = counts.sent + counts.canceled + counts.failed + counts.undelivered + counts.delivered;
        assert_eq!(counts.messages, size, "messages of {campaign} at completion");
        assert_eq!(settled, size, "settled messages of {campaign} at completion");
        assert_eq!(counts.dispatched, Some(size));
    }
    assert_eq!(actual_campaigns.get(cancelled), expected_campaigns.get(cancelled), "lifecycle of {cancelled}");

    // Dead letters: original bytes and headers, with the reason.
    assert_eq!(dead_letters.len(), expected_dead_letters.len(), "number of dead letters");
    for (record, reason) in &expected_dead_letters {
        let found = dead_letters
            .iter()
            .find(|dead| dead.key() == record.key.as_deref() && dead.payload() == Some(record.value.as_slice()))
            .unwrap_or_else(|| panic!("no dead letter for key {:?} ({reason})", record.key.as_ref().map(|k| String::from_utf8_lossy(k))));
        assert_eq!(header_text(found, "smsfold-dlq-reason").as_deref(), Some(*reason));
        assert_eq!(header_text(found, "content-type").as_deref(), record.content_type);
        assert_eq!(header_text(found, "smsfold-dlq-topic").as_deref(), Some(topics.message_events.as_str()));
        assert!(header_text(found, "smsfold-dlq-error").is_some_and(|e| !e.is_empty()), "error text for {reason}");
    }

    // Projections: every message's final status and every campaign's counts.
    wait_until("the campaign projections to settle", Duration::from_secs(30), || {
        instances.iter().any(|instance| {
            let projections = instance.projections.lock().unwrap();
            projections.campaign(cancelled).is_some_and(|c| c.counts.messages() == 1010)
        })
    })
    .await;
    let mut final_counts: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for (message_id, expectation) in &expected {
        let status = message_status(&instances, message_id);
        assert_eq!(status.as_deref(), expectation.current(), "projection of {message_id}");
        if let Some(campaign) = &expectation.campaign {
            *final_counts.entry(campaign.clone()).or_default().entry(expectation.current().unwrap().to_owned()).or_default() += 1;
        }
    }
    for (campaign, counts) in &final_counts {
        let projection = instances
            .iter()
            .find_map(|instance| instance.projections.lock().unwrap().campaign(campaign))
            .unwrap_or_else(|| panic!("no projection of {campaign}"));
        for status in OUTBOUND_ORDER {
            let status_value: smsfold_domain::MessageStatus = status.parse().unwrap();
            assert_eq!(
                projection.counts.count(status_value),
                counts.get(status).copied().unwrap_or(0),
                "{status} count of {campaign}"
            );
        }
        assert_eq!(projection.counts.segments, 2 * projection.counts.messages(), "segments of {campaign}");
    }
    println!(
        "checked {} message changes over {} messages, {} campaign changes, {} dead letters",
        changes.len(),
        expected.len(),
        campaign_changes.len(),
        dead_letters.len()
    );

    shutdown_tx.send(true).expect("workers listening");
    for instance in instances {
        instance.task.await.expect("worker task").expect("worker ran cleanly");
    }
}
