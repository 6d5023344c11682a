//! Generated traffic for the end-to-end benchmarks, encoded as protobuf.
//!
//! Messages belong to 50 campaigns of uneven size (campaign `c` gets a share
//! proportional to `c + 1`). Each message is accepted, queued, then sent and
//! given a delivery receipt (92% delivered, 8% undelivered), or failed instead
//! of sent (3%). For 5% of the sent messages the sent event arrives after the
//! receipt, and 5% of the receipts arrive a second time, with the same event
//! id, up to a minute later. Messages are accepted at 2,000 per simulated
//! second and events are produced in arrival order, so a receipt arrives
//! 2.5 to 23.5 simulated seconds (5,000 to 47,000 messages) after its
//! accepted event. Everything derives from a fixed seed, so two benchmark runs produce
//! the same records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use prost::Message;
use smsfold_domain::MessageFold;
use smsfold_wire::proto::{self, campaign_event, message_event};
use smsfold_wire::{decode_message_event, Format};

pub const CAMPAIGNS: usize = 50;
const SEED: u64 = 0x5eed_e2e0;
/// Messages accepted per simulated second.
const ACCEPTED_PER_SECOND: i64 = 2_000;
/// The latest arrival after a message's accepted event, in milliseconds:
/// a receipt at most 23.5 s later, and its repeat up to 60 s after that.
const MAX_SPREAD_MS: i64 = 90_000;

/// A record value with its key.
pub struct Encoded {
    pub key: String,
    pub value: Vec<u8>,
}

/// The traffic for a number of messages.
pub struct Traffic {
    messages: usize,
    /// Campaign index of every message.
    campaign_of: Vec<u8>,
    campaign_sizes: [u64; CAMPAIGNS],
    /// Event time of the first accepted event, in milliseconds since the
    /// Unix epoch, chosen so that the last event lies in the past.
    base_ms: i64,
}

impl Traffic {
    pub fn new(messages: usize, now_ms: i64) -> Self {
        let total_weight: usize = (1..=CAMPAIGNS).sum();
        let mut campaign_sizes = [0_u64; CAMPAIGNS];
        let mut assigned = 0;
        for (campaign, size) in campaign_sizes.iter_mut().enumerate() {
            *size = (messages * (campaign + 1) / total_weight) as u64;
            assigned += *size as usize;
        }
        campaign_sizes[CAMPAIGNS - 1] += (messages - assigned) as u64;

        let mut campaign_of = Vec::with_capacity(messages);
        for (campaign, size) in campaign_sizes.iter().enumerate() {
            campaign_of.extend(std::iter::repeat_n(campaign as u8, *size as usize));
        }
        let mut rng = Rng(SEED);
        for index in (1..campaign_of.len()).rev() {
            campaign_of.swap(index, rng.below(index as u64 + 1) as usize);
        }

        let span_ms = messages as i64 * 1000 / ACCEPTED_PER_SECOND + MAX_SPREAD_MS;
        Traffic { messages, campaign_of, campaign_sizes, base_ms: now_ms - span_ms - 60_000 }
    }

    /// Returns the number of messages that yields at least `events` events.
    pub fn messages_for_events(events: usize) -> usize {
        // About 4.02 events per message. A dry run counts them exactly.
        let mut messages = events * 100 / 402;
        loop {
            let counted = Traffic::new(messages, 0).message_events().count();
            if counted >= events {
                return messages;
            }
            messages += (events - counted) / 4 + 1;
        }
    }

    pub fn messages(&self) -> usize {
        self.messages
    }

    pub fn campaign_id(campaign: usize) -> String {
        format!("camp-{campaign:02}")
    }

    /// Returns the created and started-sending events of every campaign,
    /// produced before the message events.
    pub fn campaign_openings(&self) -> Vec<Encoded> {
        let mut records = Vec::new();
        for campaign in 0..CAMPAIGNS {
            let created = proto::CampaignCreated {
                account_id: account_id(campaign),
                name: format!("benchmark campaign {campaign}"),
            };
            records.push(self.campaign_event(campaign, "created", 0, campaign_event::Kind::Created(created)));
            let started = proto::CampaignStartedSending { recipients: self.campaign_sizes[campaign] };
            records.push(self.campaign_event(campaign, "started", 1, campaign_event::Kind::StartedSending(started)));
        }
        records
    }

    /// Returns the dispatch-finished event of every campaign, produced after
    /// the message events.
    pub fn campaign_closings(&self) -> Vec<Encoded> {
        let finished_at = self.messages as i64 * 1000 / ACCEPTED_PER_SECOND;
        (0..CAMPAIGNS)
            .map(|campaign| {
                let finished = proto::CampaignDispatchFinished { dispatched: self.campaign_sizes[campaign] };
                let kind = campaign_event::Kind::DispatchFinished(finished);
                self.campaign_event(campaign, "finished", finished_at, kind)
            })
            .collect()
    }

    fn campaign_event(&self, campaign: usize, name: &str, offset_ms: i64, kind: campaign_event::Kind) -> Encoded {
        let campaign_id = Traffic::campaign_id(campaign);
        let event = proto::CampaignEvent {
            event_id: format!("{campaign_id}-{name}"),
            occurred_at: Some(timestamp(self.base_ms + offset_ms)),
            campaign_id: campaign_id.clone(),
            kind: Some(kind),
        };
        Encoded { key: campaign_id, value: event.encode_to_vec() }
    }

    /// Returns the message events in arrival order.
    pub fn message_events(&self) -> MessageEvents<'_> {
        MessageEvents { traffic: self, rng: Rng(SEED ^ 0x9e37_79b9), next_message: 0, sequence: 0, pending: BinaryHeap::new() }
    }

    /// Folds the traffic with the domain's message fold, as the worker
    /// folds it, and returns the status changes it causes and the messages
    /// it contains at the end.
    pub fn expected(&self) -> Expected {
        let mut fold = MessageFold::new();
        let mut expected = Expected::default();
        for record in self.message_events() {
            let event = decode_message_event(Format::Protobuf, &record.value)
                .unwrap_or_else(|error| panic!("a generated event of {} failed to decode: {error}", record.key));
            let applied = fold.apply(&event).unwrap_or_else(|reject| panic!("the fold rejected {event:?}: {reject}"));
            expected.events += 1;
            expected.message_changes += u64::from(applied.change.is_some()) + u64::from(applied.canceled.is_some());
        }
        expected.live_messages = fold.len() as u64;
        expected
    }
}

/// The results of folding the traffic.
#[derive(Debug, Default, Clone, Copy)]
pub struct Expected {
    pub events: u64,
    pub message_changes: u64,
    pub live_messages: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Accepted,
    Queued,
    Sent,
    Failed,
    Receipt { delivered: bool },
}

/// One event waiting for its arrival time.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Planned {
    arrival_ms: i64,
    /// Breaks ties in the order the events were planned.
    sequence: u64,
    message: u32,
    occurred_ms: i64,
    /// Position of the event in its message's life; a repeated receipt keeps
    /// the position, and so the event id, of the first.
    step: u8,
    kind: Kind,
}

/// The message events of a [`Traffic`], in arrival order.
pub struct MessageEvents<'a> {
    traffic: &'a Traffic,
    rng: Rng,
    next_message: usize,
    sequence: u64,
    pending: BinaryHeap<Reverse<Planned>>,
}

impl MessageEvents<'_> {
    fn accepted_ms(&self, message: usize) -> i64 {
        self.traffic.base_ms + message as i64 * 1000 / ACCEPTED_PER_SECOND
    }

    fn plan(&mut self, message: u32, step: u8, kind: Kind, occurred_ms: i64, arrival_ms: i64) {
        self.sequence += 1;
        let planned = Planned { arrival_ms, sequence: self.sequence, message, occurred_ms, step, kind };
        self.pending.push(Reverse(planned));
    }

    /// Plans every event of the next message.
    fn plan_next_message(&mut self) {
        let message = self.next_message;
        self.next_message += 1;
        let index = message as u32;
        let accepted = self.accepted_ms(message);
        self.plan(index, 0, Kind::Accepted, accepted, accepted);
        let queued = accepted + 50 + self.rng.below(450) as i64;
        self.plan(index, 1, Kind::Queued, queued, queued);
        let sent = queued + 500 + self.rng.below(2_500) as i64;
        if self.rng.chance(3) {
            self.plan(index, 2, Kind::Failed, sent, sent);
            return;
        }
        let receipt = sent + 2_000 + self.rng.below(18_000) as i64;
        let delivered = !self.rng.chance(8);
        let sent_arrival = if self.rng.chance(5) { receipt + 100 + self.rng.below(2_900) as i64 } else { sent };
        self.plan(index, 2, Kind::Sent, sent, sent_arrival);
        self.plan(index, 3, Kind::Receipt { delivered }, receipt, receipt);
        if self.rng.chance(5) {
            let repeat = receipt + 1_000 + self.rng.below(59_000) as i64;
            self.plan(index, 3, Kind::Receipt { delivered }, receipt, repeat);
        }
    }

    fn encode(&self, planned: &Planned) -> Encoded {
        let hash = mix(SEED ^ u64::from(planned.message));
        let message_id = format!("SM{:016x}{:016x}", hash, mix(hash));
        let kind = match planned.kind {
            Kind::Accepted => {
                let campaign = usize::from(self.traffic.campaign_of[planned.message as usize]);
                message_event::Kind::Accepted(proto::MessageAccepted {
                    campaign_id: Traffic::campaign_id(campaign),
                    account_id: account_id(campaign),
                    from: format!("+1555{:07}", campaign * 1_000 + 7),
                    to: format!("+1{:010}", hash % 10_000_000_000),
                    channel: if hash % 100 < 5 { proto::Channel::Mms as i32 } else { proto::Channel::Sms as i32 },
                    segments: 1 + (hash >> 8) as u32 % 3,
                    send_at: None,
                })
            }
            Kind::Queued => message_event::Kind::Queued(proto::MessageQueued {}),
            Kind::Sent => message_event::Kind::Sent(proto::MessageSent {
                carrier_message_id: format!("{:012x}", hash >> 16),
                segment_carrier_message_ids: Vec::new(),
            }),
            Kind::Failed => message_event::Kind::Failed(proto::MessageFailed { error_code: 30_008 }),
            Kind::Receipt { delivered } => {
                let outcome = if delivered { proto::ReceiptOutcome::Delivered } else { proto::ReceiptOutcome::Undelivered };
                message_event::Kind::DeliveryReceipt(proto::DeliveryReceipt {
                    outcome: outcome as i32,
                    error_code: if delivered { 0 } else { 30_003 },
                    done_at: Some(timestamp(planned.occurred_ms)),
                    ..Default::default()
                })
            }
        };
        let event = proto::MessageEvent {
            event_id: format!("EV{:08x}{}", planned.message, planned.step),
            occurred_at: Some(timestamp(planned.occurred_ms)),
            message_id: message_id.clone(),
            kind: Some(kind),
        };
        Encoded { key: message_id, value: event.encode_to_vec() }
    }
}

impl Iterator for MessageEvents<'_> {
    type Item = Encoded;

    fn next(&mut self) -> Option<Encoded> {
        // A message's events all arrive at or after its accepted event, so
        // planning messages up to the earliest pending arrival is enough.
        while self.next_message < self.traffic.messages {
            let next_accepted = self.accepted_ms(self.next_message);
            match self.pending.peek() {
                Some(Reverse(earliest)) if earliest.arrival_ms < next_accepted => break,
                _ => self.plan_next_message(),
            }
        }
        let Reverse(planned) = self.pending.pop()?;
        Some(self.encode(&planned))
    }
}

fn account_id(campaign: usize) -> String {
    format!("AC{:032x}", mix(campaign as u64 % 5))
}

fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: millis.div_euclid(1000), nanos: (millis.rem_euclid(1000) * 1_000_000) as i32 }
}

/// splitmix64's output function: spreads the bits of a counter or seed.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64*, a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
