//! Measures the memory one live message costs in a `MessageFold` and in a
//! `CampaignFold`, with exactly 1,000,000 messages in the folds, or the
//! count given as the first argument.
//!
//! The messages belong to 50 campaigns and stop at a mix of statuses
//! (accepted, queued, sending, sent, delivered, undelivered, failed). Each
//! figure is printed two ways:
//! - `heap_bytes()`, the fold's own account of its allocations;
//! - the growth of live heap bytes (allocated minus freed) that a counting
//!   global allocator saw while the fold was built, which is the figure the
//!   128-byte target applies to.
//!
//! Both count requested bytes. The allocator's own per-block overhead is not
//! included. The example also prints the peak growth while each fold was
//! built, when a table being resized and its replacement are both live. The
//! events are generated before the first measurement and dropped after the
//! last, so they are not counted.
//!
//! Run: `cargo run --release -p smsfold-domain --example memory [MESSAGES]`

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use smsfold_domain::{CampaignFold, MessageFold, MessageStatus, MessageUpdate};

use workload::Config;

const DEFAULT_MESSAGES: usize = 1_000_000;
const TARGET_BYTES_PER_MESSAGE: f64 = 128.0;

/// The system allocator, counting the bytes it hands out and takes back.
struct CountingAllocator;

/// Bytes allocated minus bytes freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest value `LIVE` has reached since `Phase::start` last reset it.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn count_allocation(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn count_free(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so it upholds `GlobalAlloc`'s contract exactly as `System` does.
// The counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count_allocation(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count_allocation(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        count_free(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            // Counts the new block before freeing the old one, so the peak
            // includes both, as they are while the allocator copies.
            count_allocation(new_size);
            count_free(layout.size());
        }
        moved
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The live heap bytes when a measured step began, which its growth and
/// peak are taken from.
struct Phase {
    live_at_start: usize,
}

impl Phase {
    fn start() -> Self {
        let live_at_start = LIVE.load(Ordering::Relaxed);
        PEAK.store(live_at_start, Ordering::Relaxed);
        Phase { live_at_start }
    }

    /// Returns the live heap bytes added since the start.
    fn growth(&self) -> usize {
        LIVE.load(Ordering::Relaxed).saturating_sub(self.live_at_start)
    }

    /// Returns the highest live heap bytes above the start at any moment.
    fn peak_growth(&self) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.live_at_start)
    }
}

/// Prints one fold's bytes per message, and whether the live heap growth
/// meets `target` when there is one.
fn report(name: &str, messages: usize, heap_bytes: usize, phase: &Phase, target: Option<f64>) {
    let per_message = |bytes: usize| bytes as f64 / messages as f64;
    let growth = per_message(phase.growth());
    println!("{name} with {messages} messages:");
    println!("  heap_bytes() / messages:          {:7.1} bytes per message", per_message(heap_bytes));
    print!("  live heap growth / messages:      {growth:7.1} bytes per message");
    match target {
        Some(target) if growth <= target => println!(" (target <= {target}: met)"),
        Some(target) => println!(" (target <= {target}: missed)"),
        None => println!(" (no target)"),
    }
    let peak = per_message(phase.peak_growth());
    println!("  peak live heap growth / messages: {peak:7.1} bytes per message, while building");
}

/// Reads the message count from the first argument, if there is one.
fn message_count() -> usize {
    let Some(argument) = std::env::args().nth(1) else { return DEFAULT_MESSAGES };
    match argument.replace('_', "").parse() {
        Ok(count) if count > 0 => count,
        _ => {
            eprintln!(
                "error: invalid message count {argument:?}; expected a positive integer such as 1000000"
            );
            std::process::exit(2);
        }
    }
}

fn main() {
    let message_total = message_count();
    let config = Config { in_flight: true, ..Config::traffic(message_total) };
    let workload = workload::generate(&config);
    workload::describe(&format!("in_flight_{}", workload::size_name(message_total)), &config, &workload);

    let phase = Phase::start();
    let mut messages = MessageFold::new();
    for (index, event) in workload.events.iter().enumerate() {
        if let Err(reject) = messages.apply(event) {
            panic!("generated event {index} was rejected: {reject}");
        }
    }
    assert_eq!(messages.len(), message_total, "every generated message is live in the fold");
    let heap_bytes = messages.heap_bytes();
    report("MessageFold", message_total, heap_bytes, &phase, Some(TARGET_BYTES_PER_MESSAGE));

    let mut by_status = [0usize; MessageStatus::ALL.len()];
    for projection in messages.projections() {
        by_status[projection.status.index()] += 1;
    }
    let mix: Vec<String> = MessageStatus::ALL
        .iter()
        .zip(by_status)
        .filter(|(_, count)| *count > 0)
        .map(|(status, count)| format!("{status} {count}"))
        .collect();
    println!("  messages by status: {}", mix.join(", "));

    // The campaign fold receives one update per message, with its final
    // state. The memory it keeps per message does not depend on how many
    // updates led there. Each projection is dropped before the next, so only
    // the campaign fold's allocations remain.
    // Folded as at-least-once runs do, with an entry per message, and as
    // exactly-once runs do, with counts alone.
    for (name, keep_entries) in [("CampaignFold, record (at-least-once)", true), ("CampaignFold, count (exactly-once)", false)] {
        let phase = Phase::start();
        let mut campaigns = CampaignFold::new();
        for event in &workload.campaign_events {
            campaigns.apply(event).expect("generated campaign events are valid");
        }
        for projection in messages.projections() {
            let campaign_id = projection.campaign_id.as_deref().expect("every generated message has a campaign");
            let update = MessageUpdate {
                campaign_id,
                message_id: &projection.message_id,
                status: projection.status,
                segments: projection.segments,
                at: projection.status_at,
                previous: None,
            };
            if keep_entries {
                campaigns.record(&update);
            } else {
                campaigns.count(&update);
            }
        }
        report(name, message_total, campaigns.heap_bytes(), &phase, None);
    }
}
