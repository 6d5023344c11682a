//! Measures the live heap one carrier link costs in a `CarrierJoin`, with
//! exactly 1,000,000 links in the join, or the count given as the first
//! argument.
//!
//! The sent messages get carrier ids of the four forms the workload
//! generator (`smsfold-workload`) writes, one form per carrier of four:
//! 16 upper-case hexadecimal digits, 20 decimal digits, 12 lower-case
//! hexadecimal digits, and `carrier<n>-` with 10 hexadecimal digits. Each id
//! is added under every key of `link_join_keys`, as the worker does, so an
//! all-digit id adds two links. Message ids are `SM` and 32 hexadecimal
//! digits and event ids `EV`, 16 hexadecimal digits, `-` and a position, as
//! the generator writes them. The link data has the shape of the worker's
//! `LinkTarget` and is written as bytes as the worker writes it.
//!
//! All links go to one join, so the two links of an all-digit id share one
//! record. The worker publishes each key to the partition that the key's
//! hash selects, so the two keys meet in one partition's join only by
//! chance (one in six with six partitions). There a link usually takes a
//! record of its own, more bytes per link than this example shows.
//!
//! The figure is the growth of live heap bytes (allocated minus freed) that a
//! counting global allocator saw while the links were added. It counts
//! requested bytes, so the allocator's own per-block overhead is not
//! included. Temporaries built for each link are freed before the end, so
//! only what the join keeps is counted.
//!
//! It then times `evict_links`, which the worker's eviction pass calls for
//! each partition's join once a minute. The first five calls keep every
//! link (it prints the fastest and the median), and one more call removes
//! the oldest 1% of the links.
//!
//! Run: `cargo run --release -p smsfold-smpp --example memory [LINKS]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smsfold_domain::Segment;
use smsfold_smpp::{link_join_keys, CarrierJoin, Link, LinkData};

const DEFAULT_LINKS: usize = 1_000_000;
const TARGET_BYTES_PER_LINK: f64 = 90.0;

/// The system allocator, counting the bytes it hands out and takes back.
struct CountingAllocator;

/// Bytes allocated minus bytes freed.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The highest value `LIVE` has reached since the measurement began.
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

/// The message segment a link points at, shaped like the worker's
/// `LinkTarget`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    message_id: Box<str>,
    segment: Segment,
    message_partition: i32,
}

/// Written as the worker writes its `LinkTarget`.
impl LinkData for Target {
    fn write_to(&self, out: &mut Vec<u8>) {
        self.message_id.write_to(out);
        self.segment.index.write_to(out);
        self.segment.count.write_to(out);
        self.message_partition.write_to(out);
    }

    fn read_from(bytes: &mut &[u8]) -> Self {
        let message_id = Box::<str>::read_from(bytes);
        let segment = Segment { index: u16::read_from(bytes), count: u16::read_from(bytes) };
        let message_partition = i32::read_from(bytes);
        Target { message_id, segment, message_partition }
    }
}

/// splitmix64's output function: spreads the bits of `value`.
fn mix(value: u64) -> u64 {
    let mut z = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Returns the carrier id of message `hash`, in the form of its carrier.
fn carrier_id(hash: u64) -> String {
    let carrier = hash % 4;
    match carrier {
        0 => format!("{:016X}", hash >> 1),
        1 => format!("{:020}", hash >> 1),
        2 => format!("{:012x}", hash >> 16),
        _ => format!("carrier{carrier}-{:010x}", hash >> 24),
    }
}

/// Reads the link count from the first argument, if there is one.
fn link_count() -> usize {
    let Some(argument) = std::env::args().nth(1) else { return DEFAULT_LINKS };
    match argument.replace('_', "").parse() {
        Ok(count) if count > 0 => count,
        _ => {
            eprintln!("error: invalid link count {argument:?}; expected a positive integer such as 1000000");
            std::process::exit(2);
        }
    }
}

fn main() {
    let link_total = link_count();
    // Sent events a few milliseconds apart, as in a busy partition.
    let start_ms: i64 = 1_767_225_600_000;

    let live_at_start = LIVE.load(Ordering::Relaxed);
    PEAK.store(live_at_start, Ordering::Relaxed);
    let mut join: CarrierJoin<Target, ()> = CarrierJoin::new();
    let mut messages: u64 = 0;
    let mut added = 0;
    'messages: loop {
        let hash = mix(messages ^ 0x5eed);
        let carrier_id = carrier_id(mix(hash ^ 0xca11));
        let message_id = format!("SM{hash:016x}{:016x}", mix(hash ^ 1));
        let event_id = format!("EV{:016x}-{}", mix(hash ^ 2), messages * 5 + 3);
        let sent_at = start_ms + messages as i64 * 3;
        messages += 1;
        for join_key in link_join_keys(&carrier_id) {
            let target = Target {
                message_id: message_id.as_str().into(),
                segment: Segment { index: 0, count: 1 },
                message_partition: (hash % 12) as i32,
            };
            let outcome = join.add_link(&join_key, Link::new(&carrier_id, sent_at, &event_id, target));
            assert!(outcome.stored, "every generated carrier id is new");
            added += 1;
            if added == link_total {
                break 'messages;
            }
        }
    }
    let growth = LIVE.load(Ordering::Relaxed).saturating_sub(live_at_start);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(live_at_start);

    assert_eq!(join.len(), (link_total, 0), "every link is stored");
    let per_link = |bytes: usize| bytes as f64 / link_total as f64;
    println!("CarrierJoin with {link_total} links from {messages} sent carrier ids:");
    print!("  live heap growth / links:      {:7.1} bytes per link", per_link(growth));
    if per_link(growth) <= TARGET_BYTES_PER_LINK {
        println!(" (target <= {TARGET_BYTES_PER_LINK}: met)");
    } else {
        println!(" (target <= {TARGET_BYTES_PER_LINK}: missed)");
    }
    println!("  peak live heap growth / links: {:7.1} bytes per link, while adding", per_link(peak));

    let retention_ms = 30 * 24 * 3600 * 1000;
    let mut scans: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let evicted = join.evict_links(retention_ms);
            let took = started.elapsed();
            assert!(evicted.is_empty(), "the links span less than the retention");
            took
        })
        .collect();
    scans.sort();
    println!(
        "  evict_links with nothing to evict: {:.2} ms fastest, {:.2} ms median of {} scans",
        scans[0].as_secs_f64() * 1000.0,
        scans[scans.len() / 2].as_secs_f64() * 1000.0,
        scans.len()
    );

    // Links are sent 3 ms apart, so this horizon lies after the first 1%.
    let span = (messages as i64 - 1) * 3;
    let started = Instant::now();
    let evicted = join.evict_links(span - span / 100);
    let took = started.elapsed();
    println!(
        "  evict_links removing the oldest {} links: {:.2} ms",
        evicted.len(),
        took.as_secs_f64() * 1000.0
    );
}
