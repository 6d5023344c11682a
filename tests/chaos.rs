//! Exactly-once under fire, on a real broker: three `smsfold run` processes
//! in one group, one of them with two pipelines, fold 200,000+ events over
//! many campaigns while instances are killed with SIGKILL and restarted, and
//! the broker restarts once. At the
//! end the committed status-change topics (read_committed) must hold each
//! change exactly once, in forward order per message, with none missing, and
//! the durable projections (the changelogs) must equal a pure fold of all
//! input events.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::Message;
use serde_json::json;
use smsfold_domain::{MessageEvent, MessageEventKind, MessageFold, MessageProjection, ReceiptOutcome, Timestamp};
use smsfold_suite::process::{free_port, smsfold_binary, topic_flags};
use smsfold_suite::{create_topics, key_text, produce, read_topic, unique, Record};
use smsfold_wire::changelog::{self, ChangelogEntry};
use smsfold_wire::{CampaignStatusChange, Format, MessageStatusChange};
use smsfold_worker::Topics;

const CAMPAIGNS: usize = 40;
const MESSAGES_PER_CAMPAIGN: usize = 1_250;
const INSTANCES: usize = 3;
/// The instance that runs two pipelines, so its kills end two transactions.
const TWO_PIPELINES: usize = 1;

/// A deterministic generator (xorshift64*), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Workers {
    binary: PathBuf,
    group: String,
    topics: Topics,
    log_dir: PathBuf,
    children: Vec<Option<Child>>,
    starts: usize,
}

impl Workers {
    fn start(&mut self, index: usize) {
        self.starts += 1;
        let log = File::create(self.log_dir.join(format!("worker-{index}-{}.log", self.starts))).expect("log file");
        let topics = &self.topics;
        let child = Command::new(&self.binary)
            .args(["run", "--bootstrap-servers", &smsfold_suite::bootstrap()])
            .args(["--group-id", &self.group, "--instance-id", &format!("worker-{index}")])
            .args(topic_flags(topics))
            .args(["--http-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--batch-max-wait-ms", "200"])
            .args(["--pipelines", if index == TWO_PIPELINES { "2" } else { "1" }])
            .env("RUST_LOG", "warn,smsfold_worker=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("smsfold starts");
        self.children[index] = Some(child);
    }

    fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.children[index].take() {
            // Child::kill sends SIGKILL on Unix: no shutdown, no commit.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts any instance that stopped by itself, as a supervisor would.
    fn revive(&mut self) {
        for index in 0..self.children.len() {
            let exited = match self.children[index].as_mut() {
                Some(child) => child.try_wait().ok().flatten().is_some(),
                None => true,
            };
            if exited {
                eprintln!("chaos: worker-{index} had stopped; restarting it");
                self.start(index);
            }
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_keeps_changes_exactly_once() {
    let prefix = unique("chaos");
    let topics = Topics::with_prefix(&format!("{prefix}-"));
    create_topics(&[(&topics.message_events, 6), (&topics.campaign_events, 3)]).await;
    let log_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&prefix);
    std::fs::create_dir_all(&log_dir).expect("log dir");
    let mut workers = Workers {
        binary: smsfold_binary(),
        group: unique("chaos-group"),
        topics: topics.clone(),
        log_dir: log_dir.clone(),
        children: (0..INSTANCES).map(|_| None).collect(),
        starts: 0,
    };
    let group = workers.group.clone();
    for index in 0..INSTANCES {
        workers.start(index);
    }

    // The input: per message accepted, queued, then sent and a receipt (or
    // failed), with repeated and early receipts.
    let mut rng = Rng(0xc4a0_5eed);
    let mut by_message: BTreeMap<String, Vec<MessageEvent>> = BTreeMap::new();
    let mut lists: Vec<Vec<MessageEvent>> = Vec::new();
    let base = 1_780_000_000_000_i64;
    let mut sequence = 0_i64;
    let mut event = |message_id: &str, kind: MessageEventKind| {
        sequence += 1;
        MessageEvent {
            event_id: format!("ev-{sequence}"),
            occurred_at: Timestamp::from_millis(base + sequence),
            message_id: message_id.to_owned(),
            kind,
        }
    };
    for campaign in 0..CAMPAIGNS {
        for n in 0..MESSAGES_PER_CAMPAIGN {
            let id = format!("c{campaign:02}-m{n:05}");
            let attributes = smsfold_domain::MessageAttributes {
                campaign_id: Some(format!("camp-{campaign:02}")),
                account_id: "acct".into(),
                segments: 1 + (n % 3) as u16,
                ..Default::default()
            };
            let mut events = vec![
                event(&id, MessageEventKind::Accepted { attributes, send_at: None }),
                event(&id, MessageEventKind::Queued),
            ];
            if rng.chance(5) {
                events.push(event(&id, MessageEventKind::Failed { error_code: 30001 }));
            } else {
                events.push(event(&id, MessageEventKind::Sent { carrier_message_ids: Vec::new() }));
                let outcome = if rng.chance(90) { ReceiptOutcome::Delivered } else { ReceiptOutcome::Undelivered };
                let receipt = event(&id, MessageEventKind::DeliveryReceipt {
                    outcome,
                    error_code: 0,
                    done_at: None,
                    carrier: None,
                    segment: None,
                });
                if rng.chance(20) {
                    let sent = events.len() - 1;
                    events.insert(sent, receipt.clone());
                } else {
                    events.push(receipt.clone());
                }
                if rng.chance(10) {
                    events.push(receipt);
                }
            }
            lists.push(events);
        }
    }
    // Interleave messages while keeping each message's own order.
    let mut stream = Vec::new();
    let mut cursors: Vec<usize> = vec![0; lists.len()];
    let mut open: Vec<usize> = (0..lists.len()).collect();
    while !open.is_empty() {
        let pick = rng.below(open.len());
        let list = open[pick];
        stream.push(lists[list][cursors[list]].clone());
        cursors[list] += 1;
        if cursors[list] == lists[list].len() {
            open.swap_remove(pick);
        }
    }
    for event in &stream {
        by_message.entry(event.message_id.clone()).or_default().push(event.clone());
    }

    let campaign_record = |campaign: usize, kind: &str, extra: serde_json::Value| {
        let id = format!("camp-{campaign:02}");
        let mut value = json!({"event_id": format!("{id}-{kind}"), "occurred_at": base, "campaign_id": id, "kind": kind});
        value.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        Record {
            topic: topics.campaign_events.clone(),
            key: Some(id.into_bytes()),
            value: value.to_string().into_bytes(),
            content_type: Some("application/json"),
        }
    };
    let mut openings = Vec::new();
    for campaign in 0..CAMPAIGNS {
        openings.push(campaign_record(campaign, "created", json!({"account_id": "acct", "name": "chaos"})));
        openings.push(campaign_record(campaign, "started_sending", json!({"recipients": MESSAGES_PER_CAMPAIGN})));
    }
    produce(&openings).await;

    let records: Vec<Record> = stream.iter().map(|event| encode(&topics.message_events, event)).collect();
    let total_events = records.len() + 3 * CAMPAIGNS;
    assert!(total_events >= 200_000, "{total_events} events");

    // Produce in chunks, killing an instance after most chunks and
    // restarting the broker once in the middle.
    let chunks: Vec<&[Record]> = records.chunks(records.len() / 10 + 1).collect();
    let mut kills = 0;
    for (index, chunk) in chunks.iter().enumerate() {
        produce(chunk).await;
        workers.revive();
        if index == 5 {
            eprintln!("chaos: restarting the broker");
            let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka-broker.sh"))
                .arg("restart")
                .status()
                .expect("broker script runs");
            assert!(status.success(), "broker restart failed");
        } else if index % 2 == 1 || index == chunks.len() - 1 {
            let victim = rng.below(INSTANCES);
            eprintln!("chaos: SIGKILL worker-{victim}");
            workers.kill(victim);
            kills += 1;
            tokio::time::sleep(Duration::from_millis(500 + rng.below(1500) as u64)).await;
            workers.start(victim);
        }
    }
    let closings: Vec<Record> = (0..CAMPAIGNS)
        .map(|campaign| campaign_record(campaign, "dispatch_finished", json!({"dispatched": MESSAGES_PER_CAMPAIGN})))
        .collect();
    produce(&closings).await;

    // The expectation: a pure fold of each message's events in the order
    // they were produced (one partition keeps one message's order).
    let mut expected_changes: HashMap<String, Vec<(Option<String>, String, String)>> = HashMap::new();
    let mut fold = MessageFold::new();
    for event in &stream {
        let applied = fold.apply(event).expect("valid event");
        if let Some(change) = applied.change {
            expected_changes.entry(event.message_id.clone()).or_default().push((
                change.previous.map(|s| s.as_str().to_owned()),
                change.status.as_str().to_owned(),
                event.event_id.clone(),
            ));
        }
    }
    let expected_total: usize = expected_changes.values().map(Vec::len).sum();

    // Wait for the outputs, restarting instances that stop.
    let started = Instant::now();
    loop {
        workers.revive();
        let campaign_changes = read_topic(&topics.campaign_changes, 3 * CAMPAIGNS, Duration::from_secs(5));
        let completed = campaign_changes
            .iter()
            .filter(|record| {
                CampaignStatusChange::decode(Format::Json, record.payload().unwrap_or_default())
                    .is_ok_and(|change| change.status.as_str() == "completed")
            })
            .count();
        if completed >= CAMPAIGNS {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "campaigns completed: {completed} of {CAMPAIGNS}; logs in {}", log_dir.display());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    drop(workers);

    // Message changes: exactly once, forward, none missing.
    let changes = read_topic(&topics.message_changes, expected_total, Duration::from_secs(60));
    let mut actual: HashMap<String, Vec<(Option<String>, String, String)>> = HashMap::new();
    for record in &changes {
        let change = MessageStatusChange::decode(Format::Json, record.payload().expect("a value")).expect("a change");
        assert_eq!(key_text(record), change.message_id);
        actual.entry(change.message_id.to_string()).or_default().push((
            change.previous.map(|s| s.as_str().to_owned()),
            change.status.as_str().to_owned(),
            change.cause_event_id.to_string(),
        ));
    }
    let mut mismatches = 0;
    for (message_id, expected) in &expected_changes {
        if actual.get(message_id) != Some(expected) {
            mismatches += 1;
            if mismatches <= 5 {
                eprintln!("{message_id}: expected {expected:?}, got {:?}", actual.get(message_id));
            }
        }
    }
    assert_eq!(mismatches, 0, "messages whose changes differ; logs in {}", log_dir.display());
    assert_eq!(changes.len(), expected_total, "message changes");

    // Campaign changes: draft, sending, completed, once each.
    let campaign_changes = read_topic(&topics.campaign_changes, 3 * CAMPAIGNS, Duration::from_secs(30));
    let mut per_campaign: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in &campaign_changes {
        let change = CampaignStatusChange::decode(Format::Json, record.payload().expect("a value")).expect("a change");
        if change.status.as_str() == "completed" {
            assert_eq!(change.counts.messages, MESSAGES_PER_CAMPAIGN as u64, "messages of {}", change.campaign_id);
        }
        per_campaign.entry(change.campaign_id.to_string()).or_default().push(change.status.as_str().to_owned());
    }
    assert_eq!(per_campaign.len(), CAMPAIGNS);
    for (campaign, statuses) in &per_campaign {
        assert_eq!(statuses, &["draft", "sending", "completed"], "changes of {campaign}");
    }

    // Durable projections: the last changelog entry of each message equals
    // the pure fold.
    let changelog_topic = format!("{group}-message-changelog");
    let entries = read_topic(&changelog_topic, by_message.len(), Duration::from_secs(60));
    let mut durable: HashMap<String, MessageProjection> = HashMap::new();
    for record in &entries {
        if let Ok(Some(ChangelogEntry::Message(projection))) =
            changelog::decode(record.key().unwrap_or_default(), record.payload())
        {
            durable.insert(projection.message_id.clone(), projection);
        }
    }
    let mut compared = 0;
    for projection in fold.projections() {
        assert_eq!(durable.get(&projection.message_id), Some(&projection), "durable projection");
        compared += 1;
    }

    // A restarted instance may join before the broker let its killed
    // predecessor go. The worker joins again, so librdkafka's fatal error
    // is no error in its log. rdkafka's own line about closing that
    // consumer is left (see the NOTE in the worker).
    let mut rejoins = 0;
    for entry in std::fs::read_dir(&log_dir).expect("log dir") {
        let log = std::fs::read_to_string(entry.expect("a log").path()).unwrap_or_default();
        rejoins += log.matches("has not left the group yet").count();
        let errors: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(" ERROR ") && line.contains("instance ID is still used"))
            .filter(|line| !line.contains("rdkafka::consumer::base_consumer"))
            .collect();
        assert!(errors.is_empty(), "rejoins logged as errors: {errors:#?}");
    }
    println!(
        "chaos: {total_events} events, {kills} kills, {rejoins} rejoins, 1 broker restart; checked {} message changes, {} campaign changes, {compared} projections",
        changes.len(),
        campaign_changes.len()
    );
}

fn encode(topic: &str, event: &MessageEvent) -> Record {
    let mut value = json!({
        "event_id": event.event_id,
        "occurred_at": event.occurred_at.as_millis(),
        "message_id": event.message_id,
        "kind": event.kind.name(),
    });
    let fields = value.as_object_mut().expect("object");
    match &event.kind {
        MessageEventKind::Accepted { attributes, .. } => {
            fields.insert("campaign_id".into(), json!(attributes.campaign_id));
            fields.insert("account_id".into(), json!(attributes.account_id));
            fields.insert("segments".into(), json!(attributes.segments));
        }
        MessageEventKind::Failed { error_code } => {
            fields.insert("error_code".into(), json!(error_code));
        }
        MessageEventKind::DeliveryReceipt { outcome, .. } => {
            let outcome = if *outcome == ReceiptOutcome::Delivered { "delivered" } else { "undelivered" };
            fields.insert("outcome".into(), json!(outcome));
        }
        _ => {}
    }
    Record {
        topic: topic.to_owned(),
        key: Some(event.message_id.clone().into_bytes()),
        value: value.to_string().into_bytes(),
        content_type: Some("application/json"),
    }
}
