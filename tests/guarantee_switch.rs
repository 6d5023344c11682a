//! Campaign counts when exactly-once takes over from at-least-once on a real
//! broker.
//!
//! An at-least-once worker can send a batch's message updates and stop
//! before it commits the events behind them. The exactly-once worker that
//! takes over folds those events again and sends the same updates a second
//! time, so the campaign stage topic contains two copies: the first marked as
//! possibly repeated, the second not. The campaign stage must count each
//! message once, and a restart must restore the same counts. A group that
//! runs at-least-once and then exactly-once on real events must count every
//! message once as well.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde_json::json;
use smsfold_domain::{CampaignCounts, MessageStatus, Timestamp};
use smsfold_suite::{create_topics, header_text, produce, read_topic, start_worker, unique, wait_until, Instance, Record};
use smsfold_wire::internal::{MessageUpdatePack, MessageUpdateRecord};
use smsfold_worker::processor::RECORD_TYPE_HEADER;
use smsfold_worker::{Guarantee, Topics, WorkerConfig};
use tokio::sync::watch;

const CAMPAIGN: &str = "camp-switch";

fn update(message_id: &str, status: MessageStatus, previous: Option<MessageStatus>, may_repeat: bool) -> MessageUpdateRecord {
    MessageUpdateRecord {
        campaign_id: CAMPAIGN.to_owned(),
        message_id: message_id.to_owned(),
        status,
        segments: 1,
        status_at: Timestamp::from_millis(1_000),
        cause_event_id: format!("{message_id}-{}", status.as_str()),
        previous: previous.map(|status| (status, 1)),
        previous_known: true,
        may_repeat,
    }
}

/// Sends packs of updates to the campaign stage topic, in order, as a
/// message stage does.
async fn send_packs(topic: &str, packs: Vec<Vec<MessageUpdateRecord>>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", smsfold_suite::bootstrap())
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for updates in packs {
        let mut pack = MessageUpdatePack::new(CAMPAIGN);
        for update in updates {
            pack.push(update);
        }
        let payload = pack.encode();
        let headers = OwnedHeaders::new().insert(Header { key: RECORD_TYPE_HEADER, value: Some("message-updates") });
        let record = FutureRecord::to(topic).key(CAMPAIGN).payload(&payload).headers(headers);
        producer.send(record, Duration::from_secs(10)).await.expect("pack written");
    }
}

fn counts_of(instance: &Instance) -> Option<CampaignCounts> {
    instance.projections.lock().unwrap().campaign(CAMPAIGN).map(|campaign| campaign.counts)
}

async fn stop(shutdown: &watch::Sender<bool>, instance: Instance) {
    shutdown.send(true).expect("worker listening");
    instance.task.await.expect("worker task").expect("worker ran cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_updates_count_once() {
    let topics = Topics::with_prefix(&format!("{}-", unique("switch")));
    create_topics(&[(&topics.message_events, 1), (&topics.campaign_events, 1), (&topics.campaign_stage, 1)]).await;
    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("switch-group");
    config.topics = topics.clone();

    use MessageStatus::{Delivered, Queued, Sent};
    // The at-least-once run sent m-1 and m-2 as queued and m-1 as sent,
    // then stopped before it committed the events behind them.
    let at_least_once = vec![
        update("m-1", Queued, None, true),
        update("m-2", Queued, None, true),
        update("m-1", Sent, Some(Queued), true),
    ];
    // Exactly-once folds those events again and sends the same updates,
    // unmarked, then goes on: m-1 delivered, m-3 queued.
    let mut exactly_once: Vec<MessageUpdateRecord> =
        at_least_once.iter().map(|update| MessageUpdateRecord { may_repeat: false, ..update.clone() }).collect();
    exactly_once.push(update("m-1", Delivered, Some(Sent), false));
    exactly_once.push(update("m-3", Queued, None, false));
    send_packs(&topics.campaign_stage, vec![at_least_once, exactly_once]).await;

    let (shutdown, receiver) = watch::channel(false);
    let worker = start_worker(&config, "first", &receiver);
    let limit = Duration::from_secs(120);
    wait_until("m-3 to be counted", limit, || counts_of(&worker).is_some_and(|counts| counts.count(Delivered) == 1)).await;
    let counts = counts_of(&worker).expect("the campaign");
    stop(&shutdown, worker).await;

    let by_status = (counts.count(Queued), counts.count(Sent), counts.count(Delivered));
    assert_eq!(by_status, (2, 0, 1), "m-2 and m-3 queued, m-1 delivered");
    assert_eq!(counts.messages(), 3);
    assert_eq!(counts.segments, 3);

    // A restart restores the same counts from the changelog, and keeps
    // counting m-1 by its entry.
    send_packs(&topics.campaign_stage, vec![vec![update("m-1", Delivered, Some(Sent), false), update("m-2", Sent, Some(Queued), false)]])
        .await;
    let (shutdown, receiver) = watch::channel(false);
    let worker = start_worker(&config, "second", &receiver);
    wait_until("m-2 to be counted as sent", limit, || counts_of(&worker).is_some_and(|counts| counts.count(Sent) == 1)).await;
    let after = counts_of(&worker).expect("the campaign");
    stop(&shutdown, worker).await;

    assert_eq!((after.count(Queued), after.count(Sent), after.count(Delivered)), (1, 1, 1));
    assert_eq!(after.messages(), 3);
}

fn event(topic: &str, key: &str, value: serde_json::Value) -> Record {
    Record {
        topic: topic.to_owned(),
        key: Some(key.as_bytes().to_vec()),
        value: value.to_string().into_bytes(),
        content_type: Some("application/json"),
    }
}

fn message_event(topic: &str, id: &str, kind: &str, at: i64, extra: serde_json::Value) -> Record {
    let mut value = json!({"event_id": format!("{id}-{kind}"), "occurred_at": at, "message_id": id, "kind": kind});
    value.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    event(topic, id, value)
}

/// Returns the `may_repeat` mark of every update in the campaign stage
/// topic. The updates of one campaign keep their order, since they share a
/// partition.
fn repeat_marks(topic: &str, expected: usize) -> Vec<bool> {
    let records = read_topic(topic, expected, Duration::from_secs(10));
    let packs = records.iter().filter(|record| header_text(record, RECORD_TYPE_HEADER).as_deref() == Some("message-updates"));
    packs
        .flat_map(|record| MessageUpdatePack::decode(record.payload().unwrap_or_default()).expect("a pack"))
        .map(|update| update.may_repeat)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_to_exactly_once_counts_once() {
    const MESSAGES: usize = 20;
    let topics = Topics::with_prefix(&format!("{}-", unique("switch-live")));
    create_topics(&[(&topics.message_events, 2), (&topics.campaign_events, 1)]).await;
    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("switch-live-group");
    config.topics = topics.clone();
    let campaign = "camp-live";
    let started = json!({"event_id": "c1", "occurred_at": 1, "campaign_id": campaign, "kind": "started_sending", "recipients": MESSAGES});
    let mut records = vec![event(&topics.campaign_events, campaign, started)];
    for n in 0..MESSAGES {
        let id = format!("live-{n:02}");
        records.push(message_event(&topics.message_events, &id, "accepted", 10, json!({"campaign_id": campaign})));
        records.push(message_event(&topics.message_events, &id, "sent", 20, json!({})));
    }
    produce(&records).await;

    // At least once: every message accepted, then sent.
    config.guarantee = Guarantee::AtLeastOnce;
    let (shutdown, receiver) = watch::channel(false);
    let worker = start_worker(&config, "first", &receiver);
    let campaign_counts = |instance: &Instance| instance.projections.lock().unwrap().campaign(campaign).map(|c| c.counts);
    let limit = Duration::from_secs(120);
    let all_sent = |counts: Option<CampaignCounts>| counts.is_some_and(|c| c.count(MessageStatus::Sent) == MESSAGES as u64);
    wait_until("every message to be counted as sent", limit, || all_sent(campaign_counts(&worker))).await;
    stop(&shutdown, worker).await;
    let first_marks = repeat_marks(&topics.campaign_stage, 1);
    assert_eq!(first_marks.len(), 2 * MESSAGES, "an update per accepted and sent event");
    assert!(first_marks.iter().all(|&mark| mark), "at-least-once marks every update");

    // Exactly once from here: half delivered, half undelivered, then the
    // campaign's dispatch finishes.
    let mut records = Vec::new();
    for n in 0..MESSAGES {
        let outcome = if n % 2 == 0 { "delivered" } else { "undelivered" };
        let id = format!("live-{n:02}");
        records.push(message_event(&topics.message_events, &id, "delivery_receipt", 30, json!({"outcome": outcome})));
    }
    let finished = json!({"event_id": "c2", "occurred_at": 40, "campaign_id": campaign, "kind": "dispatch_finished", "dispatched": MESSAGES});
    records.push(event(&topics.campaign_events, campaign, finished));
    produce(&records).await;
    config.guarantee = Guarantee::ExactlyOnce;
    let (shutdown, receiver) = watch::channel(false);
    let worker = start_worker(&config, "second", &receiver);
    // A sent message counts as settled, so the campaign may complete
    // before the receipts are folded: wait for the outcomes as well.
    let done = |instance: &Instance| {
        let campaign = instance.projections.lock().unwrap().campaign(campaign);
        campaign.is_some_and(|c| {
            let outcomes = c.counts.count(MessageStatus::Delivered) + c.counts.count(MessageStatus::Undelivered);
            c.status.map(|s| s.as_str()) == Some("completed") && outcomes == MESSAGES as u64
        })
    };
    wait_until("the campaign to complete with every outcome", limit, || done(&worker)).await;
    let counts = campaign_counts(&worker).expect("the campaign");
    stop(&shutdown, worker).await;

    let half = (MESSAGES / 2) as u64;
    assert_eq!(counts.count(MessageStatus::Delivered), half);
    assert_eq!(counts.count(MessageStatus::Undelivered), half);
    assert_eq!(counts.messages(), MESSAGES as u64);
    let marks = repeat_marks(&topics.campaign_stage, 3 * MESSAGES);
    assert_eq!(marks.len(), 3 * MESSAGES, "an update per receipt more");
    assert!(marks[2 * MESSAGES..].iter().all(|&mark| !mark), "exactly-once marks no update");
}
