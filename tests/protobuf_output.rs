//! With `output_format = protobuf` the worker publishes status changes as
//! `smsfold.v1.MessageStatusChanged` and `CampaignStatusChanged`, with a
//! protobuf content-type header. Runs one small campaign on a real broker.

use std::time::Duration;

use rdkafka::Message;
use serde_json::json;
use smsfold_domain::{CampaignStatus, MessageStatus};
use smsfold_suite::{create_topics, header_text, key_text, produce, read_topic, unique, Record};
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange};
use smsfold_worker::{Topics, Worker, WorkerConfig};
use tokio::sync::watch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_output_decodes() {
    let prefix = unique("protobuf-output");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    create_topics(&[(&topics.message_events, 2), (&topics.campaign_events, 2)]).await;
    let mut config = WorkerConfig::new(smsfold_suite::bootstrap());
    config.group_id = unique("protobuf-output-group");
    config.topics = topics.clone();
    config.output_format = Format::Protobuf;
    let worker = Worker::new(config).expect("valid config");
    let (shutdown_tx, shutdown) = watch::channel(false);
    let running = tokio::spawn(worker.run(shutdown));

    let json_record = |topic: &str, key: &str, value: serde_json::Value| Record {
        topic: topic.to_owned(),
        key: Some(key.as_bytes().to_vec()),
        value: value.to_string().into_bytes(),
        content_type: Some("application/json"),
    };
    let mut records = vec![json_record(
        &topics.campaign_events,
        "camp-p",
        json!({"event_id": "c1", "occurred_at": 1000, "campaign_id": "camp-p", "kind": "started_sending", "recipients": 20}),
    )];
    for n in 0..20 {
        let id = format!("p-{n:02}");
        let accepted = json!({"event_id": format!("{id}-a"), "occurred_at": 2000 + n, "message_id": id, "kind": "accepted", "campaign_id": "camp-p", "segments": 3});
        let receipt = json!({"event_id": format!("{id}-r"), "occurred_at": 9000 + n, "message_id": id, "kind": "delivery_receipt", "outcome": "delivered"});
        records.push(json_record(&topics.message_events, &id, accepted));
        records.push(json_record(&topics.message_events, &id, receipt));
    }
    records.push(json_record(
        &topics.campaign_events,
        "camp-p",
        json!({"event_id": "c2", "occurred_at": 3000, "campaign_id": "camp-p", "kind": "dispatch_finished", "dispatched": 20}),
    ));
    produce(&records).await;

    let changes = read_topic(&topics.message_changes, 40, Duration::from_secs(60));
    assert_eq!(changes.len(), 40, "two changes per message");
    for record in &changes {
        assert_eq!(header_text(record, "content-type").as_deref(), Some("application/x-protobuf"));
        let change = MessageStatusChange::decode(Format::Protobuf, record.payload().expect("a value")).expect("protobuf");
        assert_eq!(key_text(record), change.message_id);
        assert_eq!(change.campaign_id.as_deref(), Some("camp-p"));
        let expected_cause = match change.status {
            MessageStatus::Accepted => format!("{}-a", change.message_id),
            MessageStatus::Delivered => format!("{}-r", change.message_id),
            other => panic!("unexpected status {other}"),
        };
        assert_eq!(change.cause_event_id, expected_cause);
    }

    let campaign_changes = read_topic(&topics.campaign_changes, 2, Duration::from_secs(60));
    let decoded: Vec<CampaignStatusChange<'static>> = campaign_changes
        .iter()
        .map(|record| CampaignStatusChange::decode(Format::Protobuf, record.payload().expect("a value")).expect("protobuf"))
        .collect();
    assert_eq!(decoded.len(), 2, "sending, then completed");
    assert_eq!((decoded[0].previous, decoded[0].status), (None, CampaignStatus::Sending));
    let completed = &decoded[1];
    assert_eq!((completed.previous, completed.status), (Some(CampaignStatus::Sending), CampaignStatus::Completed));
    assert_eq!(completed.counts.messages, 20);
    assert_eq!(completed.counts.delivered, 20);
    assert_eq!(completed.counts.segments, 60);
    assert_eq!(completed.counts.billable_segments, 60);
    assert_eq!(completed.counts.recipients, Some(20));
    assert_eq!(completed.counts.delivery_rate, Some(1.0));

    shutdown_tx.send(true).expect("worker listening");
    running.await.expect("worker task").expect("worker ran cleanly");
}
