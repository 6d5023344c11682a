//! Measures the memory one live message costs in a `MessageFold` and in a
//! `CampaignFold`, with exactly 1,000,000 messages in the folds.
//!
//! The messages belong to 50 campaigns and stop at a mix of statuses
//! (accepted, queued, sending, sent, delivered, undelivered, failed). Each
//! figure is printed three ways:
//! - `heap_bytes()`, the fold's own account of its allocations;
//! - the growth of live heap bytes (allocated minus freed) that a counting
//!   global allocator saw while the fold was built, which is the figure the
//!   128-byte target applies to;
//! - the growth of the process's resident set (VmRSS), which also includes
//!   the allocator's own overhead and is only a cross-check.
//!
//! The events are generated before the first measurement and dropped after
//! the last, so they are not counted.
//!
//! Run: `cargo run --release -p smsfold-domain --example memory`

#[path = "../benches/workload/mod.rs"]
mod workload;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use smsfold_domain::{CampaignFold, MessageFold, MessageStatus, MessageUpdate};

use workload::Config;

const MESSAGES: usize = 1_000_000;
const TARGET_BYTES_PER_MESSAGE: f64 = 128.0;

/// The system allocator, counting the bytes it hands out and takes back.
struct CountingAllocator;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static FREED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so it upholds `GlobalAlloc`'s contract exactly as `System` does.
// The counters only observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        FREED.fetch_add(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            FREED.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Returns the bytes allocated and not yet freed.
fn live_heap_bytes() -> usize {
    ALLOCATED.load(Ordering::Relaxed) - FREED.load(Ordering::Relaxed)
}

/// Returns the process's resident set size in bytes, from /proc/self/status.
fn resident_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Heap and resident-set readings taken before or after building a fold.
struct Reading {
    heap: usize,
    resident: Option<usize>,
}

impl Reading {
    fn now() -> Self {
        Reading { heap: live_heap_bytes(), resident: resident_bytes() }
    }
}

fn per_message(bytes: usize) -> f64 {
    bytes as f64 / MESSAGES as f64
}

fn report(name: &str, heap_bytes: usize, before: &Reading, after: &Reading, target: Option<f64>) {
    let growth = after.heap.saturating_sub(before.heap);
    println!("{name} with {MESSAGES} messages:");
    println!("  heap_bytes() / messages:         {:7.1} bytes per message", per_message(heap_bytes));
    print!("  live heap growth / messages:     {:7.1} bytes per message", per_message(growth));
    match target {
        Some(target) if per_message(growth) <= target => println!(" (target <= {target}: met)"),
        Some(target) => println!(" (target <= {target}: missed)"),
        None => println!(" (no target)"),
    }
    if let (Some(start), Some(end)) = (before.resident, after.resident) {
        let rss = end.saturating_sub(start);
        println!("  resident set growth / messages:  {:7.1} bytes per message", per_message(rss));
    }
}

fn main() {
    let config = Config { in_flight: true, ..Config::traffic(MESSAGES) };
    let workload = workload::generate(&config);
    workload::describe("in_flight_1m", &config, &workload);

    let before = Reading::now();
    let mut messages = MessageFold::new();
    for (index, event) in workload.events.iter().enumerate() {
        if let Err(reject) = messages.apply(event) {
            panic!("generated event {index} was rejected: {reject}");
        }
    }
    let after = Reading::now();
    assert_eq!(messages.len(), MESSAGES, "every generated message is live in the fold");
    report("MessageFold", messages.heap_bytes(), &before, &after, Some(TARGET_BYTES_PER_MESSAGE));

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

    // The campaign fold hears one update per message with its final state:
    // the memory it keeps per message is the same however many updates led
    // there. Each projection is dropped before the next, so only the
    // campaign fold's allocations remain.
    let before = Reading::now();
    let mut campaigns = CampaignFold::new();
    for event in &workload.campaign_events {
        campaigns.apply(event).expect("generated campaign events are valid");
    }
    for projection in messages.projections() {
        let campaign_id = projection.campaign_id.as_deref().expect("every generated message has a campaign");
        campaigns.record(&MessageUpdate {
            campaign_id,
            message_id: &projection.message_id,
            status: projection.status,
            segments: projection.segments,
            at: projection.status_at,
        });
    }
    let after = Reading::now();
    report("CampaignFold", campaigns.heap_bytes(), &before, &after, None);
}
