//! Campaign counts when exactly-once takes over from at-least-once on a real
//! broker.
//!
//! An at-least-once worker can send a batch's message updates and stop
//! before it commits the events behind them. The exactly-once worker that
//! takes over folds those events again and sends the same updates a second
//! time, so the campaign stage topic contains two copies: the first marked as
//! possibly repeated, the second not. The campaign stage must count each
//! message once, and a restart must restore the same counts.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use smsfold_domain::{CampaignCounts, MessageStatus, Timestamp};
use smsfold_suite::{create_topics, start_worker, unique, wait_until, Instance};
use smsfold_wire::internal::{MessageUpdatePack, MessageUpdateRecord};
use smsfold_worker::processor::RECORD_TYPE_HEADER;
use smsfold_worker::{Topics, WorkerConfig};
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
