//! SMPP delivery receipts on a real broker, as carriers send them. Two
//! worker instances in one group read receipts in SMPP form and match the
//! ones that name only a carrier id to their messages through the carrier
//! join. They survive a restart with a receipt still waiting for its sent
//! event, and dead-letter the receipts they cannot read or match. The test
//! checks each message's status changes, the raw stat and err, the
//! campaign's counts and the dead letters. Ids and numbers are made up.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use prost::Message as _;
use rdkafka::Message;
use serde_json::{json, Value};
use smsfold_domain::MessageStatus;
use smsfold_smpp::link_join_keys;
use smsfold_suite::{
    create_topics, header_text, key_text, message_status, produce, read_topic, start_worker, unique, wait_until,
    Instance, Record,
};
use smsfold_wire::proto::{self, message_event::Kind};
use smsfold_wire::{Format, MessageStatusChange};
use smsfold_worker::{Topics, WorkerConfig};
use tokio::sync::watch;

const CAMPAIGN: &str = "camp-receipts";
/// 2026-05-28T00:00:00Z, in milliseconds.
const BASE: i64 = 1_779_926_400_000;

/// The four receipts every carrier integration must handle, and the others
/// this test sends.
const DELIVERED_HEX: &str = "id:0A1B2C3D sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hello";
const UNDELIVERED_SPACES: &str = "id: 7731 sub: 001 dlvrd: 000 submit date: 2403151230 done date: 2403151302 stat: UNDELIV err: 001 Text: Your code";
const ACCEPTED_55: &str = "id:55 sub:001 dlvrd:000 submit date:2403151230 done date:2403151230 stat:ACCEPTD err:000 text:";
const DELIVERED_55: &str = "id:55 sub:001 dlvrd:001 submit date:2403151230 done date:2403151240 stat:DELIVRD err:000 text:";
const TEXT_4F2A: &str = "id:0000004F2A sub:001 dlvrd:001 submit date:2403151230 done date:2403151231 stat:DELIVRD err:000 text:Hi";

fn receipt_text(id: &str, stat: &str, err: &str) -> String {
    format!("id:{id} sub:001 dlvrd:000 submit date:2403151230 done date:2403151235 stat:{stat} err:{err} text:")
}

/// Builds the test's events, each with its own event id and time.
struct Events {
    topics: Topics,
    sequence: i64,
}

impl Events {
    fn next(&mut self) -> (String, i64) {
        self.sequence += 1;
        (format!("ev-{}", self.sequence), BASE + self.sequence * 10)
    }

    fn json(&mut self, key: &str, fields: Value) -> (String, Record) {
        let (event_id, at) = self.next();
        self.json_at(key, fields, event_id, at)
    }

    fn json_at(&mut self, key: &str, fields: Value, event_id: String, at: i64) -> (String, Record) {
        let mut event = json!({"event_id": event_id, "occurred_at": at});
        if let (Value::Object(event), Value::Object(fields)) = (&mut event, fields) {
            event.extend(fields);
        }
        let record = Record {
            topic: self.topics.message_events.clone(),
            key: Some(key.as_bytes().to_vec()),
            value: event.to_string().into_bytes(),
            content_type: Some("application/json"),
        };
        (event_id, record)
    }

    fn accepted(&mut self, message_id: &str, segments: u16) -> (String, Record) {
        let fields = json!({"message_id": message_id, "kind": "accepted", "campaign_id": CAMPAIGN, "segments": segments});
        self.json(message_id, fields)
    }

    fn sent(&mut self, message_id: &str, carrier_id: &str) -> (String, Record) {
        self.json(message_id, json!({"message_id": message_id, "kind": "sent", "carrier_message_id": carrier_id}))
    }

    /// Builds a sent event in protobuf that lists one carrier id per segment.
    fn sent_segments(&mut self, message_id: &str, carrier_ids: &[&str]) -> (String, Record) {
        let (event_id, at) = self.next();
        let sent = proto::MessageSent {
            carrier_message_id: String::new(),
            segment_carrier_message_ids: carrier_ids.iter().map(|id| (*id).to_owned()).collect(),
        };
        let event = proto::MessageEvent {
            event_id: event_id.clone(),
            occurred_at: Some(prost_types::Timestamp { seconds: at / 1000, nanos: (at % 1000) as i32 * 1_000_000 }),
            message_id: message_id.to_owned(),
            kind: Some(Kind::Sent(sent)),
        };
        let record = Record {
            topic: self.topics.message_events.clone(),
            key: Some(message_id.as_bytes().to_vec()),
            value: event.encode_to_vec(),
            content_type: Some("application/x-protobuf"),
        };
        (event_id, record)
    }

    /// Builds a receipt that names only the carrier's id, keyed by that id.
    fn carrier_receipt(&mut self, carrier_id: &str, text: &str) -> (String, Record) {
        self.json(carrier_id, json!({"kind": "delivery_receipt", "receipt_text": text}))
    }
}

/// Returns the status changes of one message as (previous, status, cause,
/// receipt stat, receipt err).
type Change = (Option<String>, String, String, Option<String>, Option<String>);

fn change(previous: Option<&str>, status: &str, cause: &str) -> Change {
    (previous.map(str::to_owned), status.to_owned(), cause.to_owned(), None, None)
}

fn receipt_change(previous: &str, status: &str, cause: &str, stat: &str, err: &str) -> Change {
    (Some(previous.to_owned()), status.to_owned(), cause.to_owned(), Some(stat.to_owned()), Some(err.to_owned()))
}

fn projection_of(instances: &[Instance], message_id: &str) -> Option<smsfold_domain::MessageProjection> {
    instances.iter().find_map(|instance| instance.projections.lock().unwrap().message(message_id))
}

fn pending_receipts(instances: &[Instance]) -> usize {
    instances.iter().map(|instance| instance.projections.lock().unwrap().carrier_join_sizes().0).sum()
}

fn carrier_links(instances: &[Instance]) -> usize {
    instances.iter().map(|instance| instance.projections.lock().unwrap().carrier_join_sizes().1).sum()
}

async fn stop(instances: Vec<Instance>, shutdown: watch::Sender<bool>) {
    shutdown.send(true).expect("workers listening");
    for instance in instances {
        instance.task.await.expect("worker task").expect("worker ran cleanly");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_reach_their_messages() {
    let prefix = unique("receipts");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    create_topics(&[(&topics.message_events, 4), (&topics.campaign_events, 2)]).await;
    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("receipts-group");
    config.topics = topics.clone();
    config.batch_max_wait = Duration::from_millis(50);
    config.unmatched_receipt_wait = Duration::from_secs(60);
    config.receipt_states = smsfold_smpp::StateTable::with_overrides([("NOROUTE", "undelivered")]).unwrap();

    let (shutdown_tx, shutdown) = watch::channel(false);
    let instances = vec![start_worker(&config, "one", &shutdown), start_worker(&config, "two", &shutdown)];
    wait_until("both instances to get partitions", Duration::from_secs(60), || {
        instances.iter().all(|instance| instance.ready.load(Ordering::Acquire))
    })
    .await;

    let mut events = Events { topics: topics.clone(), sequence: 0 };
    let mut expected: BTreeMap<&str, Vec<Change>> = BTreeMap::new();
    let mut records = Vec::new();
    let mut campaign_records = Vec::new();
    for (kind, extra) in [("created", json!({"name": "receipts"})), ("started_sending", json!({"recipients": 14}))] {
        let mut event = json!({"event_id": format!("cev-{kind}"), "occurred_at": BASE, "campaign_id": CAMPAIGN, "kind": kind});
        if let (Value::Object(event), Value::Object(extra)) = (&mut event, extra) {
            event.extend(extra);
        }
        campaign_records.push(Record {
            topic: topics.campaign_events.clone(),
            key: Some(CAMPAIGN.as_bytes().to_vec()),
            value: event.to_string().into_bytes(),
            content_type: Some("application/json"),
        });
    }
    produce(&campaign_records).await;

    // Every message is accepted into the campaign, and all but one of them
    // sent with their carrier ids.
    let one_segment =
        ["m-hex", "m-spaces", "m-55", "m-tlv", "m-early", "m-late-sent", "m-direct", "m-16", "m-a", "m-noroute", "m-weird", "m-failed"];
    let mut accepted_ids = BTreeMap::new();
    for message_id in one_segment {
        let (id, record) = events.accepted(message_id, 1);
        accepted_ids.insert(message_id, id);
        records.push(record);
    }
    for (message_id, segments) in [("m-three", 3), ("m-two", 2)] {
        let (id, record) = events.accepted(message_id, segments);
        accepted_ids.insert(message_id, id);
        records.push(record);
    }
    let mut sent_ids = BTreeMap::new();
    let mut links = 0;
    for (message_id, carrier_id) in [
        ("m-hex", "169552957"),
        ("m-spaces", "7731"),
        ("m-55", "55"),
        ("m-tlv", "4F2A"),
        ("m-direct", "D1EC7"),
        ("m-16", "16"),
        ("m-a", "A"),
        ("m-noroute", "B0B0B0"),
        ("m-weird", "C0FFEE"),
    ] {
        let (id, record) = events.sent(message_id, carrier_id);
        sent_ids.insert(message_id, id);
        links += link_join_keys(carrier_id).len();
        records.push(record);
    }
    for (message_id, carrier_ids) in [("m-three", &["5F01", "5F02", "5F03"][..]), ("m-two", &["6E01", "6E02"][..])] {
        let (id, record) = events.sent_segments(message_id, carrier_ids);
        sent_ids.insert(message_id, id);
        links += carrier_ids.iter().map(|id| link_join_keys(id).len()).sum::<usize>();
        records.push(record);
    }
    let (failed_id, failed) = events.json("m-failed", json!({"message_id": "m-failed", "kind": "failed", "error_code": 4101}));
    records.push(failed);
    produce(&records).await;
    records.clear();

    // The carrier ids must be in the join before the receipts, so that the
    // ambiguous receipt meets both of its candidates.
    wait_until("the carrier links to be joined", Duration::from_secs(120), || carrier_links(&instances) == links).await;

    // The receipts. The hexadecimal id 0A1B2C3D is the decimal 169552957.
    let (hex, record) = events.carrier_receipt("0A1B2C3D", DELIVERED_HEX);
    records.push(record);
    let (spaces, record) = events.carrier_receipt("7731", UNDELIVERED_SPACES);
    records.push(record);
    let (_accepted_55, record) = events.carrier_receipt("55", ACCEPTED_55);
    records.push(record);
    // The TLV names the id, which the text writes with leading zeros. The
    // TLV state is DELIVERED.
    let tlv_fields = json!({"kind": "delivery_receipt", "receipt_text": TEXT_4F2A, "receipted_message_id": "4F2A", "message_state": 2});
    let (tlv, record) = events.json("4F2A", tlv_fields);
    records.push(record);
    // Receipts that arrive before their sent events: one meets it before
    // the restart and one after.
    let (early, record) = events.carrier_receipt("A1B2C3D4E5", &receipt_text("A1B2C3D4E5", "DELIVRD", "000"));
    records.push(record);
    let (late_sent_receipt, record) = events.carrier_receipt("E1E1E1", &receipt_text("E1E1E1", "DELIVRD", "000"));
    records.push(record);
    // A receipt that names its message id.
    let direct_fields = json!({"message_id": "m-direct", "kind": "delivery_receipt", "receipt_text": receipt_text("D1EC7", "DELIVRD", "000")});
    let (direct, record) = events.json("m-direct", direct_fields);
    records.push(record);
    // Segments: all three of one message delivered, one of two undelivered.
    let mut segment_receipts = BTreeSet::new();
    for id in ["5F01", "5F03", "5F02"] {
        let (event_id, record) = events.carrier_receipt(id, &receipt_text(id, "DELIVRD", "000"));
        segment_receipts.insert(event_id);
        records.push(record);
    }
    let (_two_delivered, record) = events.carrier_receipt("6E01", &receipt_text("6E01", "DELIVRD", "000"));
    records.push(record);
    let (two_failed, record) = events.carrier_receipt("6E02", &receipt_text("6E02", "EXPIRED", "0034"));
    records.push(record);
    // A vendor state configured as undelivered, and one no table contains.
    let (noroute, record) = events.carrier_receipt("B0B0B0", &receipt_text("B0B0B0", "NOROUTE", "012"));
    records.push(record);
    let (_weird, record) = events.carrier_receipt("C0FFEE", &receipt_text("C0FFEE", "WEIRD", "000"));
    records.push(record);

    // Receipts to dead-letter: "10" is 0x10 = 16 and also decimal 10 = 0xA.
    let mut expected_dead_letters = Vec::new();
    let (_, record) = events.carrier_receipt("10", &receipt_text("10", "DELIVRD", "000"));
    expected_dead_letters.push((record.clone(), "receipt_ambiguous_carrier_id"));
    records.push(record);
    let (_, record) = events.carrier_receipt("x-1", "hello there");
    expected_dead_letters.push((record.clone(), "receipt_missing_id_and_stat"));
    records.push(record);
    let (_, record) = events.carrier_receipt("77", "id:77 submit date:2413151230 stat:DELIVRD");
    expected_dead_letters.push((record.clone(), "receipt_invalid_date"));
    records.push(record);
    let (_, unmatched) = events.carrier_receipt("DEADBEEF01", &receipt_text("DEADBEEF01", "DELIVRD", "000"));
    expected_dead_letters.push((unmatched.clone(), "receipt_unmatched"));
    records.push(unmatched);
    produce(&records).await;
    records.clear();

    // Wait for the receipts to be folded, with three still waiting. Then
    // one of them meets its sent event.
    wait_until("the first receipts to be folded", Duration::from_secs(120), || {
        message_status(&instances, "m-three").as_deref() == Some("delivered")
            && message_status(&instances, "m-noroute").as_deref() == Some("undelivered")
            && message_status(&instances, "m-tlv").as_deref() == Some("delivered")
            && pending_receipts(&instances) == 3
    })
    .await;
    let (late_sent, record) = events.sent("m-late-sent", "e1e1e1");
    produce(&[record]).await;
    wait_until("a waiting receipt to meet its sent event", Duration::from_secs(60), || {
        message_status(&instances, "m-late-sent").as_deref() == Some("delivered") && pending_receipts(&instances) == 2
    })
    .await;
    let hex_projection = projection_of(&instances, "m-hex").expect("m-hex");
    let shown = hex_projection.receipts.current_report().expect("a raw report");
    assert_eq!((shown.stat.as_deref(), shown.err.as_deref()), (Some("DELIVRD"), Some("000")));
    let weird = projection_of(&instances, "m-weird").expect("m-weird");
    assert_eq!(weird.status, MessageStatus::Sent, "an unknown state ends nothing");
    assert_eq!(weird.receipts.current_report().and_then(|report| report.stat.as_deref()), Some("WEIRD"));
    let accepted = projection_of(&instances, "m-55").expect("m-55");
    assert_eq!(accepted.status, MessageStatus::Sent, "ACCEPTD ends nothing");

    // Restart both instances: the two receipts still waiting are restored
    // from the carrier join changelog, and the matched one is not.
    stop(instances, shutdown_tx).await;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let instances = vec![start_worker(&config, "one", &shutdown), start_worker(&config, "two", &shutdown)];
    wait_until("both instances to restore", Duration::from_secs(60), || {
        instances.iter().all(|instance| instance.ready.load(Ordering::Acquire)) && pending_receipts(&instances) == 2
    })
    .await;

    // The early receipt's sent event arrives, and m-55 is delivered later.
    let (early_sent, record) = events.sent("m-early", "00A1B2C3D4E5");
    records.push(record);
    let (delivered_55, record) = events.carrier_receipt("55", DELIVERED_55);
    records.push(record);
    produce(&records).await;
    records.clear();
    wait_until("the early receipt to meet its sent event", Duration::from_secs(60), || {
        message_status(&instances, "m-early").as_deref() == Some("delivered")
    })
    .await;

    // A later receipt of the same unknown carrier id moves its join
    // partition's event time past the first one's wait.
    let late_fields = json!({"kind": "delivery_receipt", "receipt_text": receipt_text("DEADBEEF01", "DELIVRD", "000")});
    let (late_id, _) = events.next();
    let (_, late) = events.json_at("DEADBEEF01", late_fields, late_id, BASE + 3_600_000);
    produce(&[late]).await;
    let dispatched = json!({
        "event_id": "cev-dispatch", "occurred_at": BASE + 1000, "campaign_id": CAMPAIGN, "kind": "dispatch_finished",
        "dispatched": 14,
    });
    produce(&[Record {
        topic: topics.campaign_events.clone(),
        key: Some(CAMPAIGN.as_bytes().to_vec()),
        value: dispatched.to_string().into_bytes(),
        content_type: Some("application/json"),
    }])
    .await;

    // Expected changes of each message.
    for message_id in accepted_ids.keys() {
        expected.insert(message_id, vec![change(None, "accepted", &accepted_ids[message_id])]);
    }
    let sent_change = |message_id: &str| change(Some("accepted"), "sent", &sent_ids[message_id]);
    for message_id in ["m-hex", "m-spaces", "m-55", "m-tlv", "m-direct", "m-16", "m-a", "m-noroute", "m-weird", "m-three", "m-two"] {
        expected.get_mut(message_id).unwrap().push(sent_change(message_id));
    }
    expected.get_mut("m-early").unwrap().push(change(Some("accepted"), "sent", &early_sent));
    expected.get_mut("m-late-sent").unwrap().push(change(Some("accepted"), "sent", &late_sent));
    expected.get_mut("m-failed").unwrap().push(change(Some("accepted"), "failed", &failed_id));
    let delivered = |cause: &str, stat: &str| receipt_change("sent", "delivered", cause, stat, "000");
    expected.get_mut("m-hex").unwrap().push(delivered(&hex, "DELIVRD"));
    expected.get_mut("m-spaces").unwrap().push(receipt_change("sent", "undelivered", &spaces, "UNDELIV", "001"));
    expected.get_mut("m-55").unwrap().push(delivered(&delivered_55, "DELIVRD"));
    expected.get_mut("m-tlv").unwrap().push(delivered(&tlv, "DELIVRD"));
    expected.get_mut("m-early").unwrap().push(delivered(&early, "DELIVRD"));
    expected.get_mut("m-late-sent").unwrap().push(delivered(&late_sent_receipt, "DELIVRD"));
    expected.get_mut("m-direct").unwrap().push(delivered(&direct, "DELIVRD"));
    expected.get_mut("m-two").unwrap().push(receipt_change("sent", "undelivered", &two_failed, "EXPIRED", "0034"));
    expected.get_mut("m-noroute").unwrap().push(receipt_change("sent", "undelivered", &noroute, "NOROUTE", "012"));

    // Check the published changes record by record. The segment that
    // completes m-three is whichever of its receipts the worker folds last.
    let total: usize = expected.values().map(Vec::len).sum::<usize>() + 1;
    let changes = read_topic(&topics.message_changes, total, Duration::from_secs(60));
    let mut actual: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    for record in &changes {
        let change = MessageStatusChange::decode(Format::Json, record.payload().expect("a value")).expect("a change");
        assert_eq!(key_text(record), change.message_id, "keyed by message id");
        actual.entry(change.message_id.to_string()).or_default().push((
            change.previous.map(|status| status.as_str().to_owned()),
            change.status.as_str().to_owned(),
            change.cause_event_id.to_string(),
            change.receipt_stat.map(|stat| stat.into_owned()),
            change.receipt_err.map(|err| err.into_owned()),
        ));
    }
    let final_statuses: BTreeMap<String, String> =
        actual.iter().map(|(id, changes)| (id.clone(), changes.last().expect("a change").1.clone())).collect();
    let three = actual.get_mut("m-three").expect("changes of m-three");
    let completion = three.pop().expect("m-three's delivery");
    assert!(segment_receipts.contains(&completion.2), "completed by a segment receipt: {completion:?}");
    assert_eq!((completion.1.as_str(), completion.3.as_deref()), ("delivered", Some("DELIVRD")));
    for (message_id, changes) in &expected {
        assert_eq!(actual.get(*message_id), Some(changes), "changes of {message_id}");
    }
    assert_eq!(changes.len(), total, "number of message changes");

    // The campaign counts: delivered m-hex, m-55, m-tlv, m-early,
    // m-late-sent, m-direct, m-three; undelivered m-spaces, m-two,
    // m-noroute; sent m-16, m-a, m-weird; failed m-failed. Segments
    // 12 + 3 + 2, billed but for m-failed.
    wait_until("the campaign to count every message", Duration::from_secs(60), || {
        instances.iter().any(|instance| {
            let projections = instance.projections.lock().unwrap();
            projections.campaign(CAMPAIGN).is_some_and(|campaign| {
                campaign.counts.count(MessageStatus::Delivered) == 7 && campaign.counts.count(MessageStatus::Undelivered) == 3
            })
        })
    })
    .await;
    let campaign = instances
        .iter()
        .find_map(|instance| instance.projections.lock().unwrap().campaign(CAMPAIGN))
        .expect("the campaign");
    let counts = campaign.counts;
    assert_eq!(counts.count(MessageStatus::Delivered), 7, "delivered");
    assert_eq!(counts.count(MessageStatus::Undelivered), 3, "undelivered");
    assert_eq!(counts.count(MessageStatus::Sent), 3, "sent");
    assert_eq!(counts.count(MessageStatus::Failed), 1, "failed");
    assert_eq!(counts.messages(), 14, "messages");
    assert_eq!(counts.segments, 17, "segments");
    assert_eq!(counts.billable_segments, 16, "billable segments");
    assert_eq!(campaign.status.map(|status| status.as_str()), Some("completed"));
    for (message_id, status) in &final_statuses {
        assert_eq!(message_status(&instances, message_id).as_ref(), Some(status), "projection of {message_id}");
    }

    // Dead letters: original bytes, the reason, and one late receipt still
    // waiting.
    let dead_letters = read_topic(&topics.dead_letter, expected_dead_letters.len(), Duration::from_secs(30));
    assert_eq!(dead_letters.len(), expected_dead_letters.len(), "number of dead letters");
    for (record, reason) in &expected_dead_letters {
        let found = dead_letters
            .iter()
            .find(|dead| dead.key() == record.key.as_deref() && dead.payload() == Some(record.value.as_slice()))
            .unwrap_or_else(|| panic!("no dead letter for {reason}"));
        assert_eq!(header_text(found, "smsfold-dlq-reason").as_deref(), Some(*reason));
        assert_eq!(header_text(found, "smsfold-dlq-topic").as_deref(), Some(topics.message_events.as_str()));
        assert_eq!(header_text(found, "content-type").as_deref(), Some("application/json"));
        assert!(header_text(found, "smsfold-dlq-error").is_some_and(|error| !error.is_empty()), "error of {reason}");
    }
    assert_eq!(pending_receipts(&instances), 1, "the late receipt waits");

    stop(instances, shutdown_tx).await;
}
