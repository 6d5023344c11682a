use std::collections::{HashMap, HashSet};

use smsfold_domain::{
    CampaignFold, CampaignStatus, Channel, MessageEvent, MessageEventKind, MessageFold, MessageUpdate,
    ReceiptOutcome,
};
use smsfold_wire::{decode_campaign_event, decode_message_event, Format};

use crate::encode;
use crate::generator::{Event, Generated, Generator};
use crate::{SegmentMix, WorkloadConfig};

fn generate(config: WorkloadConfig) -> Vec<Generated> {
    Generator::new(config).expect("valid settings").collect()
}

fn config(messages: u64) -> WorkloadConfig {
    WorkloadConfig { messages, ..WorkloadConfig::default() }
}

fn message_events(events: &[Generated]) -> impl Iterator<Item = &MessageEvent> {
    events.iter().filter_map(|generated| match &generated.event {
        Event::Message(event) => Some(event),
        Event::Campaign(_) => None,
    })
}

/// Groups the first copy of each message event by message, in event-time
/// order, with its arrival time.
fn lives(events: &[Generated]) -> HashMap<&str, Vec<(&MessageEvent, i64)>> {
    let mut seen = HashSet::new();
    let mut lives: HashMap<&str, Vec<(&MessageEvent, i64)>> = HashMap::new();
    for generated in events {
        if let Event::Message(event) = &generated.event {
            if seen.insert(event.event_id.as_str()) {
                lives.entry(event.message_id.as_str()).or_default().push((event, generated.arrival_ms));
            }
        }
    }
    for life in lives.values_mut() {
        life.sort_by_key(|(event, _)| event.occurred_at);
    }
    lives
}

/// Asserts that `count` out of `trials` is within five standard deviations
/// of `rate`.
fn assert_rate(name: &str, count: usize, trials: usize, rate: f64) {
    assert!(trials > 0, "{name}: no trials");
    let observed = count as f64 / trials as f64;
    let sigma = (rate * (1.0 - rate) / trials as f64).sqrt();
    assert!(
        (observed - rate).abs() <= 5.0 * sigma + 1e-9,
        "{name}: observed {observed:.5} ({count} of {trials}), configured {rate} (5 sigma = {:.5})",
        5.0 * sigma
    );
}

#[test]
fn same_seed_gives_same_bytes() {
    let first: Vec<Vec<u8>> = generate(config(5_000)).iter().map(|g| encode::protobuf(&g.event)).collect();
    let second: Vec<Vec<u8>> = generate(config(5_000)).iter().map(|g| encode::protobuf(&g.event)).collect();
    assert_eq!(first, second);

    let first_json: Vec<String> = generate(config(5_000)).iter().map(|g| encode::json_line(&g.event)).collect();
    let second_json: Vec<String> = generate(config(5_000)).iter().map(|g| encode::json_line(&g.event)).collect();
    assert_eq!(first_json, second_json);
}

#[test]
fn other_seed_gives_other_events() {
    let first = generate(config(2_000));
    let second = generate(WorkloadConfig { seed: 7, ..config(2_000) });
    assert_ne!(first, second);
}

#[test]
fn events_come_in_arrival_order() {
    let events = generate(config(20_000));
    assert!(events.windows(2).all(|pair| pair[0].arrival_ms <= pair[1].arrival_ms));
}

#[test]
fn protobuf_decodes_to_same_event() {
    for generated in generate(config(3_000)) {
        let bytes = encode::protobuf(&generated.event);
        match &generated.event {
            Event::Message(event) => assert_eq!(&decode_message_event(Format::Protobuf, &bytes).unwrap(), event),
            Event::Campaign(event) => assert_eq!(&decode_campaign_event(Format::Protobuf, &bytes).unwrap(), event),
        }
    }
}

#[test]
fn json_decodes_to_same_event() {
    for generated in generate(config(3_000)) {
        let line = encode::json_line(&generated.event);
        assert!(!line.contains('\n'), "a JSON line contains a newline: {line}");
        match &generated.event {
            Event::Message(event) => assert_eq!(&decode_message_event(Format::Json, line.as_bytes()).unwrap(), event),
            Event::Campaign(event) => assert_eq!(&decode_campaign_event(Format::Json, line.as_bytes()).unwrap(), event),
        }
    }
}

#[test]
fn message_classes_match_rates() {
    let settings = WorkloadConfig { inbound_rate: 0.1, one_off_rate: 0.2, mms_rate: 0.15, ..config(40_000) };
    let events = generate(settings.clone());
    let lives = lives(&events);
    assert_eq!(lives.len() as u64, settings.messages);

    let mut inbound = 0;
    let mut one_off = 0;
    let mut outbound = 0;
    let mut mms = 0;
    for life in lives.values() {
        match &life[0].0.kind {
            MessageEventKind::InboundReceiving { attributes } => {
                inbound += 1;
                mms += usize::from(attributes.channel == Channel::Mms);
            }
            MessageEventKind::Accepted { attributes, .. } => {
                outbound += 1;
                one_off += usize::from(attributes.campaign_id.is_none());
                mms += usize::from(attributes.channel == Channel::Mms);
            }
            other => panic!("a message starts with {}", other.name()),
        }
    }
    assert_rate("inbound", inbound, lives.len(), settings.inbound_rate);
    assert_rate("one-off", one_off, outbound, settings.one_off_rate);
    assert_rate("mms", mms, lives.len(), settings.mms_rate);
}

#[test]
fn outcomes_match_rates() {
    let settings = WorkloadConfig {
        inbound_rate: 0.0,
        failure_rate: 0.1,
        no_receipt_rate: 0.05,
        undelivered_rate: 0.2,
        sending_rate: 0.4,
        scheduled_rate: 0.25,
        ..config(40_000)
    };
    let events = generate(settings.clone());
    let lives = lives(&events);

    let (mut failed, mut sent, mut no_receipt, mut receipts, mut undelivered, mut sending, mut scheduled) =
        (0, 0, 0, 0, 0, 0, 0);
    for life in lives.values() {
        let kinds: Vec<&MessageEventKind> = life.iter().map(|(event, _)| &event.kind).collect();
        failed += kinds.iter().filter(|kind| matches!(kind, MessageEventKind::Failed { .. })).count();
        sending += kinds.iter().filter(|kind| matches!(kind, MessageEventKind::Sending)).count();
        scheduled += kinds.iter().filter(|kind| matches!(kind, MessageEventKind::Scheduled { .. })).count();
        if kinds.iter().any(|kind| matches!(kind, MessageEventKind::Sent { .. })) {
            sent += 1;
            match kinds.last() {
                Some(MessageEventKind::DeliveryReceipt { outcome, .. }) => {
                    receipts += 1;
                    undelivered += usize::from(*outcome == ReceiptOutcome::Undelivered);
                }
                _ => no_receipt += 1,
            }
        }
    }
    assert_rate("failed", failed, lives.len(), settings.failure_rate);
    assert_eq!(failed + sent, lives.len(), "a message was neither failed nor sent");
    assert_rate("no receipt", no_receipt, sent, settings.no_receipt_rate);
    assert_rate("undelivered", undelivered, receipts, settings.undelivered_rate);
    assert_rate("sending", sending, lives.len(), settings.sending_rate);
    assert_rate("scheduled", scheduled, lives.len(), settings.scheduled_rate);
}

#[test]
fn segments_follow_mix() {
    let mix: SegmentMix = "1:50,3:30,10:20".parse().unwrap();
    let events = generate(WorkloadConfig { segment_mix: mix, ..config(30_000) });
    let lives = lives(&events);
    let mut by_segments: HashMap<u16, usize> = HashMap::new();
    for life in lives.values() {
        let segments = match &life[0].0.kind {
            MessageEventKind::Accepted { attributes, .. }
            | MessageEventKind::InboundReceiving { attributes }
            | MessageEventKind::InboundReceived { attributes } => attributes.segments,
            other => panic!("a message starts with {}", other.name()),
        };
        *by_segments.entry(segments).or_default() += 1;
    }
    assert_eq!(by_segments.keys().copied().collect::<HashSet<_>>(), HashSet::from([1, 3, 10]));
    assert_rate("1 segment", by_segments[&1], lives.len(), 0.5);
    assert_rate("3 segments", by_segments[&3], lives.len(), 0.3);
    assert_rate("10 segments", by_segments[&10], lives.len(), 0.2);
}

#[test]
fn duplicates_match_rate() {
    let settings = WorkloadConfig { duplicate_rate: 0.12, duplicate_delay_max_ms: 5_000, ..config(20_000) };
    let events = generate(settings.clone());
    let mut first_arrival: HashMap<&str, i64> = HashMap::new();
    let mut repeats = 0;
    for generated in &events {
        let Event::Message(event) = &generated.event else { continue };
        match first_arrival.get(event.event_id.as_str()) {
            None => {
                first_arrival.insert(&event.event_id, generated.arrival_ms);
            }
            Some(first) => {
                repeats += 1;
                let delay = generated.arrival_ms - first;
                assert!((0..=5_000).contains(&delay), "a repeat of {} arrives {delay} ms after the first", event.event_id);
            }
        }
    }
    assert_rate("duplicates", repeats, first_arrival.len(), settings.duplicate_rate);
}

#[test]
fn reordering_matches_rate() {
    let settings = WorkloadConfig { out_of_order_rate: 0.08, ..config(20_000) };
    let events = generate(settings.clone());
    let mut pairs = 0;
    let mut reordered = 0;
    for life in lives(&events).values() {
        for pair in life.windows(2) {
            pairs += 1;
            reordered += usize::from(pair[0].1 > pair[1].1);
        }
    }
    assert_rate("out of order", reordered, pairs, settings.out_of_order_rate);
}

#[test]
fn no_reordering_when_rates_are_zero() {
    let settings = WorkloadConfig { out_of_order_rate: 0.0, duplicate_rate: 0.0, ..config(5_000) };
    let events = generate(settings);
    let ids: HashSet<&str> = events.iter().map(Generated::event_id).collect();
    assert_eq!(ids.len(), events.len(), "an event arrives twice");
    for life in lives(&events).values() {
        assert!(life.windows(2).all(|pair| pair[0].1 < pair[1].1), "events of a message arrive out of order");
    }
}

#[test]
fn receipt_delays_stay_in_range() {
    let settings = WorkloadConfig { receipt_delay_min_ms: 5_000, receipt_delay_max_ms: 9_000, ..config(5_000) };
    let events = generate(settings);
    let mut receipts = 0;
    for life in lives(&events).values() {
        let sent = life.iter().find(|(event, _)| matches!(event.kind, MessageEventKind::Sent { .. }));
        let receipt = life.iter().find(|(event, _)| matches!(event.kind, MessageEventKind::DeliveryReceipt { .. }));
        if let (Some((sent, _)), Some((receipt, _))) = (sent, receipt) {
            receipts += 1;
            let delay = receipt.occurred_at.as_millis() - sent.occurred_at.as_millis();
            assert!((5_000..=9_000).contains(&delay), "a receipt comes {delay} ms after sent");
        }
    }
    assert!(receipts > 4_000, "only {receipts} receipts");
}

#[test]
fn sent_events_carry_carrier_ids() {
    let events = generate(WorkloadConfig { carriers: 4, ..config(5_000) });
    let mut forms = HashSet::new();
    for event in message_events(&events) {
        if let MessageEventKind::Sent { carrier_message_ids } = &event.kind {
            assert_eq!(carrier_message_ids.len(), 1, "one carrier id per sent event");
            let id = carrier_message_ids[0].as_str();
            assert!(!id.is_empty());
            let form = if id.starts_with("carrier") {
                "text"
            } else if id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit()) {
                "decimal"
            } else if id.len() == 16 {
                "upper hex"
            } else {
                "lower hex"
            };
            forms.insert(form);
        }
    }
    assert_eq!(forms.len(), 4, "carrier id forms seen: {forms:?}");
}

#[test]
fn campaigns_open_and_close_around_messages() {
    let generator = Generator::new(WorkloadConfig { campaigns: 20, ..config(20_000) }).unwrap();
    let sizes = generator.campaign_sizes();
    assert!(sizes.windows(2).filter(|pair| pair[0] < pair[1]).count() > 10, "campaign sizes do not grow: {sizes:?}");
    let events: Vec<Generated> = generator.collect();

    let mut opened: HashMap<String, usize> = HashMap::new();
    let mut finished: HashMap<String, (i64, u64)> = HashMap::new();
    // A repeated or reordered accepted event can arrive after the campaign
    // finished dispatching, so event times are compared.
    let mut last_accepted: HashMap<String, i64> = HashMap::new();
    let mut campaign_messages: HashMap<String, HashSet<String>> = HashMap::new();
    let mut first_message = usize::MAX;
    for (index, generated) in events.iter().enumerate() {
        match &generated.event {
            Event::Campaign(event) => match &event.kind {
                smsfold_domain::CampaignEventKind::StartedSending { .. } => {
                    opened.insert(event.campaign_id.clone(), index);
                }
                smsfold_domain::CampaignEventKind::DispatchFinished { dispatched } => {
                    finished.insert(event.campaign_id.clone(), (event.occurred_at.as_millis(), *dispatched));
                }
                _ => {}
            },
            Event::Message(event) => {
                first_message = first_message.min(index);
                if let MessageEventKind::Accepted { attributes, .. } = &event.kind {
                    if let Some(campaign) = &attributes.campaign_id {
                        let at = last_accepted.entry(campaign.clone()).or_default();
                        *at = (*at).max(event.occurred_at.as_millis());
                        campaign_messages.entry(campaign.clone()).or_default().insert(event.message_id.clone());
                    }
                }
            }
        }
    }
    assert_eq!(opened.len(), 20);
    assert!(opened.values().all(|index| *index < first_message));
    for (campaign, (finished_at, dispatched)) in &finished {
        assert!(last_accepted[campaign] < *finished_at, "{campaign} finishes before its last accepted event");
        assert_eq!(*dispatched, campaign_messages[campaign].len() as u64, "dispatched count of {campaign}");
    }
    assert_eq!(finished.len(), 20);
    let total: usize = campaign_messages.values().map(HashSet::len).sum();
    assert_eq!(total as u64, sizes.iter().sum::<u64>());
}

#[test]
fn folds_accept_and_complete_everything() {
    let events = generate(config(20_000));
    let mut messages = MessageFold::new();
    let mut campaigns = CampaignFold::new();
    // The same updates moved between counts, as exactly-once processing
    // folds them, must give the same campaigns.
    let mut counted = CampaignFold::new();
    for generated in &events {
        match &generated.event {
            Event::Message(event) => {
                let applied = messages.apply(event).unwrap_or_else(|reject| panic!("{event:?} rejected: {reject}"));
                if let Some(link) = applied.campaign {
                    let campaign_id = messages.campaign_id(link.campaign).to_owned();
                    let update = MessageUpdate {
                        campaign_id: &campaign_id,
                        message_id: &event.message_id,
                        status: link.status,
                        segments: link.segments,
                        at: link.at,
                        previous: link.previous,
                    };
                    campaigns.record(&update);
                    counted.count(&update);
                }
            }
            Event::Campaign(event) => {
                campaigns.apply(event).unwrap_or_else(|reject| panic!("{event:?} rejected: {reject}"));
                counted.apply(event).unwrap_or_else(|reject| panic!("{event:?} rejected: {reject}"));
            }
        }
    }
    assert_eq!(messages.len(), 20_000);
    assert_eq!(campaigns.len(), 50);
    for projection in campaigns.projections() {
        assert_eq!(projection.status, Some(CampaignStatus::Completed), "campaign {}", projection.campaign_id);
        assert_eq!(counted.get(&projection.campaign_id), Some(projection));
    }
}

#[test]
fn invalid_settings_are_rejected() {
    let cases = [
        (WorkloadConfig { duplicate_rate: 1.5, ..WorkloadConfig::default() }, "duplicate_rate"),
        (WorkloadConfig { failure_rate: -0.1, ..WorkloadConfig::default() }, "failure_rate"),
        (WorkloadConfig { accepted_per_second: 0, ..WorkloadConfig::default() }, "accepted_per_second"),
        (WorkloadConfig { carriers: 0, ..WorkloadConfig::default() }, "carriers"),
        (WorkloadConfig { campaigns: 0, ..WorkloadConfig::default() }, "campaigns"),
        (
            WorkloadConfig { receipt_delay_min_ms: 10, receipt_delay_max_ms: 5, ..WorkloadConfig::default() },
            "receipt_delay_min_ms",
        ),
    ];
    for (settings, setting) in cases {
        let error = settings.validate().expect_err(setting);
        assert_eq!(error.setting, setting);
    }
}

#[test]
fn segment_mix_parses_and_rejects() {
    let mix: SegmentMix = " 2:20, 1:70 ,3:10".parse().unwrap();
    assert_eq!(mix.weights, vec![(1, 70), (2, 20), (3, 10)]);
    assert_eq!(mix.to_string(), "1:70,2:20,3:10");
    assert_eq!(mix.pick(0), 1);
    assert_eq!(mix.pick(69), 1);
    assert_eq!(mix.pick(70), 2);
    assert_eq!(mix.pick(99), 3);
    for invalid in ["", "1", "0:5", "1:5,1:6", "x:5", "1:-1", "1:0"] {
        assert!(invalid.parse::<SegmentMix>().is_err(), "{invalid:?} parsed");
    }
}
