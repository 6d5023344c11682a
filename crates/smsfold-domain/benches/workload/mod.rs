//! A deterministic stream of outbound campaign message events, shaped like
//! production traffic, for the benchmarks and the memory example.
//!
//! Each message belongs to one of the campaigns and goes accepted, queued,
//! sometimes sending, and then either sent plus a delivery receipt or
//! failed. Events are ordered by when they would reach the consumer: a
//! small transport delay, some sent events delayed long enough that their
//! receipt arrives first, duplicates redelivered later, and a final
//! shuffle within a small window. The same seed always gives the same
//! events.
//!
//! The file is shared by path (`#[path]`) between the domain benchmark, the
//! memory example and the wire benchmark, so all three fold the same traffic.

// Each user of this module calls only part of it.
#![allow(dead_code)]

use smsfold_domain::{
    CampaignEvent, CampaignEventKind, Channel, MessageAttributes, MessageEvent, MessageEventKind,
    MessageFold, MessageUpdate, ReceiptOutcome, Timestamp,
};

/// SplitMix64: a small, fast generator whose output depends only on the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Returns a number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// Returns true with a probability of `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    /// Returns an id shaped like a platform's resource ids: a two-letter
    /// prefix and 32 lowercase hex digits.
    pub fn hex_id(&mut self, prefix: &str) -> String {
        let high = self.next_u64();
        let low = self.next_u64();
        format!("{prefix}{high:016x}{low:016x}")
    }

    /// Returns an E.164 phone number in the +1 range.
    pub fn phone_number(&mut self) -> String {
        format!("+1{}", self.between(2_000_000_000, 9_999_999_999))
    }
}

/// The shape of a generated workload.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub messages: usize,
    pub campaigns: usize,
    /// Events delivered a second time, per mille.
    pub duplicate_per_mille: u64,
    /// Sent events that arrive 30 s late, after their receipt, per mille.
    pub late_sent_per_mille: u64,
    /// Each event may swap places with one up to `reorder_window - 1`
    /// positions later.
    pub reorder_window: usize,
    /// Stops each message at a random stage of its lifecycle, so that the
    /// messages end at a mix of statuses instead of mostly final ones.
    pub in_flight: bool,
}

impl Config {
    /// Returns the traffic mix the benchmarks use for `messages` messages.
    pub fn traffic(messages: usize) -> Self {
        Config {
            seed: 0x5EED_2026,
            messages,
            campaigns: 50,
            duplicate_per_mille: 50,
            late_sent_per_mille: 50,
            reorder_window: 64,
            in_flight: false,
        }
    }
}

/// Generated events and the campaigns they belong to.
pub struct Workload {
    pub events: Vec<MessageEvent>,
    /// Campaign events that create each campaign, start it sending and
    /// finish its dispatch, so the campaign fold checks for completion on
    /// every message update that changes its counts.
    pub campaign_events: Vec<CampaignEvent>,
    pub campaign_ids: Vec<String>,
    /// Events that are redelivered copies of another event.
    pub duplicates: usize,
}

/// Milliseconds since the Unix epoch of 2026-01-05T09:00:00Z, when the
/// generated traffic starts.
const START_MILLIS: i64 = 1_767_603_600_000;

/// A point in a message's lifecycle where an in-flight message may stop.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Accepted,
    Queued,
    Sending,
    Sent,
    Final,
}

/// Builds the workload that `config` describes.
pub fn generate(config: &Config) -> Workload {
    let mut rng = Rng::new(config.seed);

    let campaign_ids: Vec<String> = (0..config.campaigns).map(|_| rng.hex_id("CA")).collect();
    let account_ids: Vec<String> = (0..config.campaigns).map(|_| rng.hex_id("AC")).collect();
    let senders: Vec<String> = (0..config.campaigns).map(|_| rng.phone_number()).collect();
    // Campaign sizes vary: each gets a weight from 1 to 10.
    let weights: Vec<u64> = (0..config.campaigns).map(|_| rng.between(1, 10)).collect();
    let total_weight: u64 = weights.iter().sum();
    // Campaigns start within the first hour.
    let starts: Vec<i64> = (0..config.campaigns).map(|_| rng.below(3_600_000) as i64).collect();

    // Pairs of arrival time in ms and event. The arrival time only decides
    // the order.
    let mut arrivals: Vec<(i64, MessageEvent)> = Vec::with_capacity(config.messages * 5);
    let mut duplicates = 0;
    let mut per_campaign = vec![0u64; config.campaigns];
    for _ in 0..config.messages {
        let campaign = pick_weighted(&mut rng, &weights, total_weight);
        per_campaign[campaign] += 1;
        let message_id = rng.hex_id("SM");
        let attributes = MessageAttributes {
            campaign_id: Some(campaign_ids[campaign].clone()),
            account_id: account_ids[campaign].clone(),
            from: senders[campaign].clone(),
            to: rng.phone_number(),
            channel: if rng.chance(50) { Channel::Mms } else { Channel::Sms },
            segments: if rng.chance(200) { rng.between(2, 4) as u16 } else { 1 },
        };
        // A campaign accepts its messages at about 100 per second, so it
        // spreads them over 10 ms times its expected message count.
        let expected = (config.messages as u64 * weights[campaign] / total_weight).max(1);
        let accepted_at = START_MILLIS + starts[campaign] + rng.below(expected * 10) as i64;

        let last_stage = if config.in_flight { pick_stage(&mut rng) } else { Stage::Final };
        for (occurred_at, kind) in lifecycle(&mut rng, accepted_at, attributes, last_stage) {
            let event = MessageEvent {
                event_id: rng.hex_id("EV"),
                occurred_at: Timestamp::from_millis(occurred_at),
                message_id: message_id.clone(),
                kind,
            };
            let mut arrival = occurred_at + rng.between(5, 200) as i64;
            if matches!(event.kind, MessageEventKind::Sent { .. }) && rng.chance(config.late_sent_per_mille) {
                arrival += 30_000;
            }
            if rng.chance(config.duplicate_per_mille) {
                // Redelivered after a consumer restart or a producer retry.
                let again = arrival + rng.between(100, 60_000) as i64;
                arrivals.push((again, event.clone()));
                duplicates += 1;
            }
            arrivals.push((arrival, event));
        }
    }

    // Stable, so events with one arrival time keep their generation order.
    arrivals.sort_by_key(|(arrival, _)| *arrival);
    let mut events: Vec<MessageEvent> = arrivals.into_iter().map(|(_, event)| event).collect();
    shuffle_within_window(&mut rng, &mut events, config.reorder_window);
    // Copy the events in arrival order, so that their strings lie in memory
    // in the order the fold reads them, as they would right after decoding.
    // Without this, each event's message id is a cache miss of its own.
    let events = events.iter().cloned().collect();

    let campaign_events = campaign_lifecycles(&mut rng, &campaign_ids, &account_ids, &starts, &per_campaign);
    Workload { events, campaign_events, campaign_ids, duplicates }
}

fn pick_weighted(rng: &mut Rng, weights: &[u64], total: u64) -> usize {
    let mut point = rng.below(total);
    for (index, &weight) in weights.iter().enumerate() {
        if point < weight {
            return index;
        }
        point -= weight;
    }
    weights.len() - 1
}

/// Picks where an in-flight message stops: 10% accepted, 20% queued, 10%
/// sending, 30% sent and 30% with a final outcome.
fn pick_stage(rng: &mut Rng) -> Stage {
    match rng.below(10) {
        0 => Stage::Accepted,
        1 | 2 => Stage::Queued,
        3 => Stage::Sending,
        4..=6 => Stage::Sent,
        _ => Stage::Final,
    }
}

/// Returns one message's events up to `last_stage`, with their event times.
/// Of the messages that run to the end, 90% end delivered, 7% undelivered
/// and 3% failed instead of sent. 30% report sending.
fn lifecycle(
    rng: &mut Rng,
    accepted_at: i64,
    attributes: MessageAttributes,
    last_stage: Stage,
) -> Vec<(i64, MessageEventKind)> {
    let mut events = Vec::with_capacity(5);
    events.push((accepted_at, MessageEventKind::Accepted { attributes, send_at: None }));
    if last_stage == Stage::Accepted {
        return events;
    }

    let queued_at = accepted_at + rng.between(5, 50) as i64;
    events.push((queued_at, MessageEventKind::Queued));
    let mut handed_at = queued_at;
    let reports_sending = rng.chance(300);
    if reports_sending && last_stage >= Stage::Sending {
        handed_at += rng.between(10, 200) as i64;
        events.push((handed_at, MessageEventKind::Sending));
    }
    if last_stage <= Stage::Sending {
        return events;
    }

    let sent_at = handed_at + rng.between(100, 2_000) as i64;
    let outcome = rng.below(100);
    if outcome < 3 {
        if last_stage == Stage::Final {
            let error_code = 30_008;
            events.push((sent_at, MessageEventKind::Failed { error_code }));
        }
        return events;
    }
    let carrier_message_ids = vec![format!("{:012x}", rng.next_u64() >> 16)];
    events.push((sent_at, MessageEventKind::Sent { carrier_message_ids }));
    if last_stage == Stage::Sent {
        return events;
    }

    let done_at = sent_at + rng.between(1_000, 20_000) as i64;
    let (receipt, error_code) = if outcome < 10 {
        (ReceiptOutcome::Undelivered, rng.between(30_003, 30_007) as u32)
    } else {
        (ReceiptOutcome::Delivered, 0)
    };
    let reported_at = done_at + rng.below(500) as i64;
    events.push((
        reported_at,
        MessageEventKind::DeliveryReceipt {
            outcome: receipt,
            error_code,
            done_at: Some(Timestamp::from_millis(done_at)),
            carrier: None,
            segment: None,
        },
    ));
    events
}

/// Swaps each event with one at most `window - 1` positions later, so events
/// arrive out of order only locally, as when several producers publish the
/// events of one message.
fn shuffle_within_window<T>(rng: &mut Rng, items: &mut [T], window: usize) {
    if window < 2 {
        return;
    }
    for index in 0..items.len() {
        let last = (index + window - 1).min(items.len() - 1);
        let other = index + rng.below((last - index + 1) as u64) as usize;
        items.swap(index, other);
    }
}

fn campaign_lifecycles(
    rng: &mut Rng,
    campaign_ids: &[String],
    account_ids: &[String],
    starts: &[i64],
    sizes: &[u64],
) -> Vec<CampaignEvent> {
    let mut events = Vec::with_capacity(campaign_ids.len() * 3);
    for (index, campaign_id) in campaign_ids.iter().enumerate() {
        let start = START_MILLIS + starts[index];
        let kinds = [
            (
                start - 600_000,
                CampaignEventKind::Created {
                    account_id: account_ids[index].clone(),
                    name: format!("Spring promotion {index}"),
                },
            ),
            (start, CampaignEventKind::StartedSending { recipients: sizes[index] }),
            (start + 1_000, CampaignEventKind::DispatchFinished { dispatched: sizes[index] }),
        ];
        for (at, kind) in kinds {
            events.push(CampaignEvent {
                event_id: rng.hex_id("EV"),
                occurred_at: Timestamp::from_millis(at),
                campaign_id: campaign_id.clone(),
                kind,
            });
        }
    }
    events
}

/// One message update as the message fold publishes it, with the ids as
/// indices so that a million of them stay small.
#[derive(Clone, Copy)]
pub struct UpdateRecord {
    pub campaign: u32,
    /// Index of the event in `Workload::events` that caused the update.
    pub event: u32,
    pub status: smsfold_domain::MessageStatus,
    pub segments: u16,
    pub at: Timestamp,
    pub previous: Option<(smsfold_domain::MessageStatus, u16)>,
}

/// Folds the workload's events and returns every campaign update the message
/// fold emits, in order, with the fold. Panics if the fold rejects an event,
/// because generated traffic never contradicts itself.
pub fn campaign_updates(workload: &Workload) -> (Vec<UpdateRecord>, MessageFold) {
    let mut fold = MessageFold::new();
    let mut updates = Vec::with_capacity(workload.events.len());
    for (index, event) in workload.events.iter().enumerate() {
        let applied = fold
            .apply(event)
            .unwrap_or_else(|reject| panic!("generated event {index} was rejected: {reject}"));
        if let Some(link) = applied.campaign {
            updates.push(UpdateRecord {
                campaign: link.campaign,
                event: index as u32,
                status: link.status,
                segments: link.segments,
                at: link.at,
                previous: link.previous,
            });
        }
    }
    (updates, fold)
}

/// Converts `record` to the `MessageUpdate` it describes.
pub fn message_update<'a>(
    workload: &'a Workload,
    fold: &'a MessageFold,
    record: &UpdateRecord,
) -> MessageUpdate<'a> {
    MessageUpdate {
        campaign_id: fold.campaign_id(record.campaign),
        message_id: &workload.events[record.event as usize].message_id,
        status: record.status,
        segments: record.segments,
        at: record.at,
        previous: record.previous,
    }
}

/// Returns true when criterion runs each benchmark once as a test (under
/// `cargo test`, or with `--test`) rather than measuring it. It reads the
/// arguments the same way `Criterion::configure_from_args` does.
pub fn criterion_test_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    !args.iter().any(|arg| arg == "--bench") || args.iter().any(|arg| arg == "--test")
}

/// Returns the message counts a benchmark folds: `sizes` when measuring, and
/// one hundredth of them in test mode, so `cargo test --all-targets` stays
/// quick in a debug build.
pub fn message_counts(sizes: &[usize]) -> Vec<usize> {
    let divisor = if criterion_test_mode() { 100 } else { 1 };
    sizes.iter().map(|messages| messages / divisor).collect()
}

/// Returns a benchmark name for a message count: `100k_messages`,
/// `1m_messages`.
pub fn size_name(messages: usize) -> String {
    match messages {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}m_messages", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k_messages", n / 1_000),
        n => format!("{n}_messages"),
    }
}

/// The calling thread's CPU time and the time it spent runnable but waiting
/// for a CPU, from Linux's `/proc/thread-self/schedstat`.
#[derive(Debug, Clone, Copy)]
pub struct SchedStat {
    pub running_ns: u64,
    pub waiting_ns: u64,
}

impl SchedStat {
    /// Reads the current values; `None` where the file does not exist.
    pub fn read() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = text.split_whitespace().map(str::parse::<u64>);
        let running_ns = fields.next()?.ok()?;
        let waiting_ns = fields.next()?.ok()?;
        Some(SchedStat { running_ns, waiting_ns })
    }
}

/// Runs `bench` and prints how long this thread ran meanwhile and how long
/// it waited for a CPU. Criterion measures wall time, so a wait of more than
/// a few percent means other processes took the core and the benchmark's
/// figures are too low.
pub fn with_cpu_wait(name: &str, bench: impl FnOnce()) {
    let before = SchedStat::read();
    bench();
    if let (Some(before), Some(after)) = (before, SchedStat::read()) {
        let running = (after.running_ns - before.running_ns) as f64 / 1e9;
        let waiting = (after.waiting_ns - before.waiting_ns) as f64 / 1e9;
        let share = 100.0 * waiting / (running + waiting).max(f64::MIN_POSITIVE);
        println!("{name}: ran {running:.1} s, waited {waiting:.2} s for a CPU ({share:.1}% of the time)");
    }
}

/// Prints the workload's size and mix, so each benchmark's output states
/// what it measured.
pub fn describe(name: &str, config: &Config, workload: &Workload) {
    let mut counts = std::collections::BTreeMap::new();
    for event in &workload.events {
        *counts.entry(event.kind.name()).or_insert(0usize) += 1;
    }
    let mix: Vec<String> = counts.iter().map(|(kind, count)| format!("{kind} {count}")).collect();
    println!(
        "workload {name}: {} messages over {} campaigns, {} events ({} duplicates), \
         reorder window {}, seed {:#x}; events by kind: {}",
        config.messages,
        config.campaigns,
        workload.events.len(),
        workload.duplicates,
        config.reorder_window,
        config.seed,
        mix.join(", "),
    );
}
