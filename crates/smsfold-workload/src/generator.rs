//! The event stream of a workload, in arrival order.
//!
//! Each message's life is planned from its own random stream, seeded from
//! the workload seed and the message's index, so a message's events do not
//! depend on the others. Messages are accepted at a steady rate of event
//! time. Every other event happens after the message's accepted event and
//! arrives at its event time, unless it is one of the reordered or repeated
//! events, which arrive later. Campaigns are created and start sending
//! before the first message, and report dispatch-finished 1 to 1,000 ms
//! after their last message is accepted.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use smsfold_domain::{
    CampaignEvent, CampaignEventKind, Channel, MessageAttributes, MessageEvent, MessageEventKind, ReceiptOutcome,
    Timestamp,
};

use crate::config::{ConfigError, WorkloadConfig};
use crate::rng::{mix, Rng};

/// How long before the first accepted message the campaigns are created.
const CREATED_LEAD_MS: i64 = 60_000;
/// How long before the first accepted message the campaigns start sending.
const STARTED_LEAD_MS: i64 = 30_000;
/// Error codes of failed messages, platform-side (made-up values).
const FAILED_CODES: [u32; 3] = [30_001, 30_002, 30_008];
/// Error codes of undelivered receipts, carrier-side (made-up values).
const UNDELIVERED_CODES: [u32; 4] = [30_003, 30_005, 30_006, 30_007];
/// Accounts the campaigns and inbound messages belong to.
const ACCOUNTS: u64 = 10;

/// The topic an event belongs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Message,
    Campaign,
}

/// A message or campaign event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(MessageEvent),
    Campaign(CampaignEvent),
}

/// One generated event and when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// When the event reaches the platform's event stream, in milliseconds
    /// since the Unix epoch; the stream is ordered by it.
    pub arrival_ms: i64,
    pub event: Event,
}

impl Generated {
    pub fn topic(&self) -> Topic {
        match self.event {
            Event::Message(_) => Topic::Message,
            Event::Campaign(_) => Topic::Campaign,
        }
    }

    /// Returns the record key: the message id or the campaign id.
    pub fn key(&self) -> &str {
        match &self.event {
            Event::Message(event) => &event.message_id,
            Event::Campaign(event) => &event.campaign_id,
        }
    }

    pub fn event_id(&self) -> &str {
        match &self.event {
            Event::Message(event) => &event.event_id,
            Event::Campaign(event) => &event.event_id,
        }
    }

    /// Returns the event time in milliseconds since the Unix epoch.
    pub fn occurred_ms(&self) -> i64 {
        match &self.event {
            Event::Message(event) => event.occurred_at.as_millis(),
            Event::Campaign(event) => event.occurred_at.as_millis(),
        }
    }

    /// Moves the event time to `occurred_ms`, and a receipt's done time with
    /// it. Load tests that measure latency from event time stamp each event
    /// with the time it is sent.
    pub fn set_occurred_ms(&mut self, occurred_ms: i64) {
        let at = Timestamp::from_millis(occurred_ms);
        match &mut self.event {
            Event::Message(event) => {
                event.occurred_at = at;
                if let MessageEventKind::DeliveryReceipt { done_at: Some(done_at), .. } = &mut event.kind {
                    *done_at = Timestamp::from_millis(occurred_ms - occurred_ms.rem_euclid(60_000));
                }
            }
            Event::Campaign(event) => event.occurred_at = at,
        }
    }
}

/// A message's kind, decided before its events are planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Inbound,
    OneOff,
    Campaign(u32),
}

const CLASS_INBOUND: u32 = u32::MAX;
const CLASS_ONE_OFF: u32 = u32::MAX - 1;

/// The event a planned arrival stands for; the strings are built when it
/// leaves the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Accepted { send_at: Option<i64>, segments: u16, mms: bool },
    Scheduled { send_at: i64 },
    Queued,
    Sending,
    Sent,
    Failed { error_code: u32 },
    Receipt { delivered: bool, error_code: u32 },
    Receiving { segments: u16, mms: bool },
    Received { segments: u16, mms: bool },
    CampaignCreated,
    CampaignStarted { recipients: u64 },
    CampaignFinished { dispatched: u64 },
}

/// One event waiting for its arrival time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Planned {
    arrival_ms: i64,
    /// Breaks ties in the order the events were planned.
    sequence: u64,
    /// Message index, or campaign index for campaign steps.
    subject: u64,
    occurred_ms: i64,
    /// Position in the message's life; a repeated event keeps the position,
    /// and so the event id, of the first copy.
    position: u8,
    step: Step,
}

/// The per-campaign facts the plan needs.
#[derive(Debug, Clone, Copy, Default)]
struct CampaignPlan {
    size: u64,
    last_message: u64,
}

/// Streams a workload's events in arrival order.
#[derive(Debug)]
pub struct Generator {
    config: WorkloadConfig,
    /// The class of every message: a campaign index, or `CLASS_INBOUND` or
    /// `CLASS_ONE_OFF`. Four bytes per message.
    classes: Vec<u32>,
    campaigns: Vec<CampaignPlan>,
    /// Campaign ids by index, built once.
    campaign_ids: Vec<String>,
    next_message: u64,
    sequence: u64,
    pending: BinaryHeap<Reverse<Planned>>,
}

impl Generator {
    /// Checks the settings and decides each message's class and each
    /// campaign's size.
    pub fn new(config: WorkloadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut classes = Vec::with_capacity(usize::try_from(config.messages).unwrap_or(0));
        let mut campaigns = vec![CampaignPlan::default(); config.campaigns as usize];
        for message in 0..config.messages {
            let class = draw_class(&mut message_rng(&config, message), &config);
            let code = match class {
                Class::Inbound => CLASS_INBOUND,
                Class::OneOff => CLASS_ONE_OFF,
                Class::Campaign(campaign) => {
                    let plan = &mut campaigns[campaign as usize];
                    plan.size += 1;
                    plan.last_message = message;
                    campaign
                }
            };
            classes.push(code);
        }
        let campaign_ids = (0..config.campaigns).map(|campaign| campaign_id(config.seed, campaign)).collect();
        let mut generator =
            Generator { config, classes, campaigns, campaign_ids, next_message: 0, sequence: 0, pending: BinaryHeap::new() };
        generator.plan_campaign_openings();
        Ok(generator)
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// Returns the number of messages each campaign has, by campaign index.
    pub fn campaign_sizes(&self) -> Vec<u64> {
        self.campaigns.iter().map(|plan| plan.size).collect()
    }

    /// Returns the id of campaign `campaign` (from 0).
    pub fn campaign_id(&self, campaign: u32) -> &str {
        &self.campaign_ids[campaign as usize]
    }

    fn accepted_ms(&self, message: u64) -> i64 {
        self.config.start_ms + (message as i64).saturating_mul(1_000) / i64::from(self.config.accepted_per_second)
    }

    fn plan(&mut self, subject: u64, position: u8, step: Step, occurred_ms: i64, arrival_ms: i64) {
        self.sequence += 1;
        let planned = Planned { arrival_ms, sequence: self.sequence, subject, occurred_ms, position, step };
        self.pending.push(Reverse(planned));
    }

    /// Plans every campaign's created and started-sending events, before
    /// the first message. Campaigns without messages are left out.
    fn plan_campaign_openings(&mut self) {
        let start = self.config.start_ms;
        for campaign in 0..self.campaigns.len() {
            let size = self.campaigns[campaign].size;
            if size == 0 {
                continue;
            }
            let offset = campaign as i64;
            let created = start - CREATED_LEAD_MS + offset;
            self.plan(campaign as u64, 0, Step::CampaignCreated, created, created);
            // Some recipients are skipped (opt-outs, invalid numbers), so the
            // platform dispatches fewer messages than it had recipients.
            let started = start - STARTED_LEAD_MS + offset;
            self.plan(campaign as u64, 1, Step::CampaignStarted { recipients: size + size / 50 }, started, started);
        }
    }

    /// Plans every event of the next message, and its campaign's
    /// dispatch-finished event after the campaign's last message.
    fn plan_next_message(&mut self) {
        let message = self.next_message;
        self.next_message += 1;
        let config = &self.config;
        let mut rng = message_rng(config, message);
        let class = draw_class(&mut rng, config);
        let accepted = self.accepted_ms(message);
        let segments = config.segment_mix.pick(rng.below(config.segment_mix.total_weight()));
        let mms = rng.chance(config.mms_rate);

        // The message's life as (step, event time), in event-time order.
        let mut life: Vec<(Step, i64)> = Vec::with_capacity(8);
        if class == Class::Inbound {
            life.push((Step::Receiving { segments, mms }, accepted));
            life.push((Step::Received { segments, mms }, accepted + rng.between(100, 500) as i64));
        } else {
            let send_at = rng.chance(config.scheduled_rate).then(|| accepted + rng.between(1_000, 60_000) as i64);
            life.push((Step::Accepted { send_at, segments, mms }, accepted));
            let queued = match send_at {
                Some(send_at) => {
                    life.push((Step::Scheduled { send_at }, accepted + rng.between(10, 200) as i64));
                    send_at
                }
                None => accepted + rng.between(50, 500) as i64,
            };
            life.push((Step::Queued, queued));
            let mut handed_over = queued;
            if rng.chance(config.sending_rate) {
                handed_over += rng.between(10, 200) as i64;
                life.push((Step::Sending, handed_over));
            }
            let sent = handed_over + rng.between(500, 3_000) as i64;
            if rng.chance(config.failure_rate) {
                let error_code = FAILED_CODES[rng.below(FAILED_CODES.len() as u64) as usize];
                life.push((Step::Failed { error_code }, sent));
            } else {
                life.push((Step::Sent, sent));
                if !rng.chance(config.no_receipt_rate) {
                    let delay = rng.between(config.receipt_delay_min_ms, config.receipt_delay_max_ms) as i64;
                    let delivered = !rng.chance(config.undelivered_rate);
                    let error_code = if delivered {
                        0
                    } else {
                        UNDELIVERED_CODES[rng.below(UNDELIVERED_CODES.len() as u64) as usize]
                    };
                    life.push((Step::Receipt { delivered, error_code }, sent + delay));
                }
            }
        }

        // Arrival times, from the last event back: a reordered event arrives
        // 0.1 to 3 s after the message's next event has arrived.
        let mut arrivals = vec![0_i64; life.len()];
        for index in (0..life.len()).rev() {
            let (_, occurred) = life[index];
            arrivals[index] = if index + 1 < life.len() && rng.chance(config.out_of_order_rate) {
                arrivals[index + 1] + rng.between(100, 3_000) as i64
            } else {
                occurred
            };
        }
        let duplicate_delay_max = config.duplicate_delay_max_ms;
        let duplicate_rate = config.duplicate_rate;
        for (position, (&(step, occurred), &arrival)) in life.iter().zip(&arrivals).enumerate() {
            self.plan(message, position as u8, step, occurred, arrival);
            if rng.chance(duplicate_rate) {
                let repeat = arrival + rng.between(1, duplicate_delay_max) as i64;
                self.plan(message, position as u8, step, occurred, repeat);
            }
        }

        if let Class::Campaign(campaign) = class {
            let plan = self.campaigns[campaign as usize];
            if plan.last_message == message {
                let finished = accepted + rng.between(1, 1_000) as i64;
                let step = Step::CampaignFinished { dispatched: plan.size };
                self.plan(u64::from(campaign), 2, step, finished, finished);
            }
        }
    }

    /// Builds the event a planned arrival stands for.
    fn materialize(&self, planned: &Planned) -> Event {
        let at = Timestamp::from_millis(planned.occurred_ms);
        let campaign_event = |name: &str, kind: CampaignEventKind| {
            let campaign_id = self.campaign_ids[planned.subject as usize].clone();
            Event::Campaign(CampaignEvent {
                event_id: format!("{campaign_id}-{name}"),
                occurred_at: at,
                campaign_id,
                kind,
            })
        };
        let kind = match planned.step {
            Step::CampaignCreated => {
                let campaign = planned.subject;
                let kind = CampaignEventKind::Created {
                    account_id: account_id(self.config.seed, campaign % ACCOUNTS),
                    name: format!("Load test campaign {campaign}"),
                };
                return campaign_event("created", kind);
            }
            Step::CampaignStarted { recipients } => {
                return campaign_event("started", CampaignEventKind::StartedSending { recipients })
            }
            Step::CampaignFinished { dispatched } => {
                return campaign_event("finished", CampaignEventKind::DispatchFinished { dispatched })
            }
            Step::Accepted { send_at, segments, mms } => MessageEventKind::Accepted {
                attributes: self.outbound_attributes(planned.subject, segments, mms),
                send_at: send_at.map(Timestamp::from_millis),
            },
            Step::Scheduled { send_at } => MessageEventKind::Scheduled { send_at: Some(Timestamp::from_millis(send_at)) },
            Step::Queued => MessageEventKind::Queued,
            Step::Sending => MessageEventKind::Sending,
            Step::Sent => MessageEventKind::Sent { carrier_message_ids: vec![self.carrier_message_id(planned.subject)] },
            Step::Failed { error_code } => MessageEventKind::Failed { error_code },
            Step::Receipt { delivered, error_code } => MessageEventKind::DeliveryReceipt {
                outcome: if delivered { ReceiptOutcome::Delivered } else { ReceiptOutcome::Undelivered },
                error_code,
                // Carrier receipts state the done time to the minute.
                done_at: Some(Timestamp::from_millis(planned.occurred_ms - planned.occurred_ms.rem_euclid(60_000))),
                carrier: None,
                segment: None,
            },
            Step::Receiving { segments, mms } => {
                MessageEventKind::InboundReceiving { attributes: self.inbound_attributes(planned.subject, segments, mms) }
            }
            Step::Received { segments, mms } => {
                MessageEventKind::InboundReceived { attributes: self.inbound_attributes(planned.subject, segments, mms) }
            }
        };
        let hash = self.message_hash(planned.subject);
        Event::Message(MessageEvent {
            event_id: format!("EV{:016x}-{}", mix(hash), planned.position),
            occurred_at: at,
            message_id: format!("SM{hash:016x}{:016x}", mix(hash ^ 1)),
            kind,
        })
    }

    fn message_hash(&self, message: u64) -> u64 {
        mix(mix(self.config.seed) ^ message)
    }

    fn outbound_attributes(&self, message: u64, segments: u16, mms: bool) -> MessageAttributes {
        let hash = self.message_hash(message);
        let (campaign_id, account) = match self.classes[message as usize] {
            CLASS_ONE_OFF | CLASS_INBOUND => (None, hash % ACCOUNTS),
            campaign => (Some(self.campaign_ids[campaign as usize].clone()), u64::from(campaign) % ACCOUNTS),
        };
        MessageAttributes {
            campaign_id,
            account_id: account_id(self.config.seed, account),
            from: account_number(account),
            to: handset_number(hash),
            channel: if mms { Channel::Mms } else { Channel::Sms },
            segments,
        }
    }

    fn inbound_attributes(&self, message: u64, segments: u16, mms: bool) -> MessageAttributes {
        let hash = self.message_hash(message);
        let account = hash % ACCOUNTS;
        MessageAttributes {
            campaign_id: None,
            account_id: account_id(self.config.seed, account),
            from: handset_number(hash),
            to: account_number(account),
            channel: if mms { Channel::Mms } else { Channel::Sms },
            segments,
        }
    }

    /// Returns the carrier's id for a message, in that carrier's form.
    fn carrier_message_id(&self, message: u64) -> String {
        let hash = mix(self.message_hash(message) ^ 0xca11);
        let carrier = hash % u64::from(self.config.carriers);
        match carrier % 4 {
            0 => format!("{:016X}", hash >> 1),
            1 => format!("{:020}", hash >> 1),
            2 => format!("{:012x}", hash >> 16),
            _ => format!("carrier{carrier}-{:010x}", hash >> 24),
        }
    }
}

impl Iterator for Generator {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        // Every event of a message arrives at or after its accepted time, so
        // planning messages up to the earliest pending arrival is enough.
        while self.next_message < self.config.messages {
            let next_accepted = self.accepted_ms(self.next_message);
            match self.pending.peek() {
                Some(Reverse(earliest)) if earliest.arrival_ms < next_accepted => break,
                _ => self.plan_next_message(),
            }
        }
        let Reverse(planned) = self.pending.pop()?;
        Some(Generated { arrival_ms: planned.arrival_ms, event: self.materialize(&planned) })
    }
}

/// Returns the random stream of one message.
fn message_rng(config: &WorkloadConfig, message: u64) -> Rng {
    Rng::new(mix(config.seed).wrapping_add(message.wrapping_mul(0xd1b5_4a32_d192_ed03)))
}

/// Draws a message's class: the first draws of its random stream.
fn draw_class(rng: &mut Rng, config: &WorkloadConfig) -> Class {
    if rng.chance(config.inbound_rate) {
        return Class::Inbound;
    }
    let one_off = rng.chance(config.one_off_rate);
    // Campaign c has weight c + 1: invert the triangular numbers.
    let campaigns = u64::from(config.campaigns);
    let point = if campaigns == 0 { 0 } else { rng.below(campaigns * (campaigns + 1) / 2) };
    if one_off || campaigns == 0 {
        return Class::OneOff;
    }
    let mut campaign = (((8 * point + 1) as f64).sqrt() as u64).saturating_sub(1) / 2;
    while (campaign + 1) * (campaign + 2) / 2 <= point {
        campaign += 1;
    }
    while campaign > 0 && campaign * (campaign + 1) / 2 > point {
        campaign -= 1;
    }
    Class::Campaign(campaign as u32)
}

fn campaign_id(seed: u64, campaign: u32) -> String {
    format!("CP{:08x}{campaign:06}", mix(seed ^ 0xc0de) as u32)
}

fn account_id(seed: u64, account: u64) -> String {
    format!("AC{:032x}", u128::from(mix(seed ^ (account << 8))) << 64 | u128::from(mix(account)))
}

fn account_number(account: u64) -> String {
    format!("+1555{:07}", 100 + account)
}

fn handset_number(hash: u64) -> String {
    format!("+1{:010}", 2_000_000_000 + hash % 7_000_000_000)
}
