//! Throughput of SMPP receipt parsing and carrier id keys, one thread.
//!
//! - `receipt/parse_text`: `parse_receipt_text` over a mix of 4,096 receipt
//!   texts in the forms carriers send (see `receipt_texts`).
//! - `receipt/read`: `Receipt::read` over the same texts, a quarter of them
//!   with a `receipted_message_id` and `message_state` TLV, through the
//!   default state table.
//! - `carrier_id_keys`: `carrier_id_keys` over 4,096 ids, hexadecimal,
//!   decimal and text.
//!
//! Criterion's throughput is in elements per second, and one element is one
//! receipt or one id. The target for `receipt/parse_text` is at least
//! 3 million receipts per second.
//!
//! Run: `cargo bench -p smsfold-smpp --bench receipt` (about 30 s after the
//! build). `cargo test --benches` runs each benchmark once, as a check.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use smsfold_smpp::{carrier_id_keys, parse_receipt_text, Receipt, ReceiptTlvs, StateTable};

const RECEIPTS: usize = 4096;
const SEED: u64 = 0x5eed_2026;

/// A small deterministic generator (64-bit LCG, Knuth's constants), so every
/// run measures the same input.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// The receipt forms of the mix and their share of it, in percent.
const FORMS: [(&str, u64); 8] = [
    ("standard, hex id", 40),
    ("spaces after colons, Text:", 15),
    ("intermediate ACCEPTD, empty text", 10),
    ("12-digit dates", 10),
    ("fields reordered", 5),
    ("lower-case names", 5),
    ("8-letter stat, 4-digit err", 10),
    ("decimal id with leading zeros, colons in text", 5),
];

fn receipt_text(form: usize, random: &mut Lcg) -> String {
    let id = random.next() << 16 | random.below(1 << 16);
    let minute = random.below(60);
    let stat = ["DELIVRD", "DELIVRD", "DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"][random.below(6) as usize];
    match form {
        0 => format!(
            "id:{id:010X} sub:001 dlvrd:001 submit date:24031512{minute:02} done date:24031513{minute:02} stat:{stat} err:000 text:Your code is 4821"
        ),
        1 => format!(
            "id: {id} sub: 001 dlvrd: 000 submit date: 24031512{minute:02} done date: 24031513{minute:02} stat: {stat} err: 001 Text: Your code"
        ),
        2 => format!(
            "id:{id:08x} sub:001 dlvrd:000 submit date:24031512{minute:02} done date:24031512{minute:02} stat:ACCEPTD err:000 text:"
        ),
        3 => format!(
            "id:{id:X} sub:001 dlvrd:001 submit date:24031512{minute:02}07 done date:24031512{minute:02}59 stat:{stat} err:000 text:Hi there"
        ),
        4 => format!(
            "stat:{stat} err:000 id:{id:X} done date:24031513{minute:02} submit date:24031512{minute:02} sub:001 dlvrd:001 text:Reordered"
        ),
        5 => format!(
            "ID:{id:x} SUB:001 DLVRD:001 SUBMIT DATE:24031512{minute:02} DONE DATE:24031513{minute:02} STAT:{stat} ERR:000 TEXT:Lower"
        ),
        6 => format!(
            "id:{id:X} sub:001 dlvrd:001 submit date:24031512{minute:02} done date:24031513{minute:02} stat:DELIVERED err:0000 text:Vendor"
        ),
        _ => format!(
            "id:000{id} sub:001 dlvrd:001 submit date:24031512{minute:02} done date:24031513{minute:02} stat:{stat} err:000 text:stat: ok, id: 1"
        ),
    }
}

/// Builds the receipt mix: each text's form is drawn with the weights of
/// [`FORMS`]. Returns the texts and how many of each form were drawn.
fn receipt_texts() -> (Vec<String>, [usize; FORMS.len()]) {
    let mut random = Lcg(SEED);
    let mut counts = [0; FORMS.len()];
    let texts = (0..RECEIPTS)
        .map(|_| {
            let mut draw = random.below(100);
            let mut form = 0;
            while draw >= FORMS[form].1 {
                draw -= FORMS[form].1;
                form += 1;
            }
            counts[form] += 1;
            receipt_text(form, &mut random)
        })
        .collect();
    (texts, counts)
}

/// Builds carrier ids: half hexadecimal, a third decimal, the rest text.
fn carrier_ids() -> Vec<String> {
    let mut random = Lcg(SEED ^ 1);
    (0..RECEIPTS)
        .map(|_| {
            let id = random.next() << 16 | random.below(1 << 16);
            match random.below(6) {
                0..=2 => format!("{id:010X}"),
                3 | 4 => id.to_string(),
                _ => format!("carrier-{id:x}"),
            }
        })
        .collect()
}

/// Runs `bench` and prints how long this thread waited for a CPU meanwhile,
/// from `/proc/thread-self/schedstat` (run time and wait time in ns), so the
/// output shows when a figure was taken on a busy machine.
fn with_cpu_wait(name: &str, bench: impl FnOnce()) {
    fn read() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let mut fields = text.split_whitespace().map(|field| field.parse::<u64>().ok());
        Some((fields.next()??, fields.next()??))
    }

    let before = read();
    bench();
    if let (Some(before), Some(after)) = (before, read()) {
        let running = (after.0 - before.0) as f64 / 1e9;
        let waiting = (after.1 - before.1) as f64 / 1e9;
        let share = 100.0 * waiting / (running + waiting).max(f64::MIN_POSITIVE);
        println!("{name}: ran {running:.1} s, waited {waiting:.2} s for a CPU ({share:.1}% of the time)");
    }
}

fn main() {
    let (texts, counts) = receipt_texts();
    let bytes: usize = texts.iter().map(String::len).sum();
    let mix: Vec<String> = FORMS.iter().zip(counts).map(|((form, _), count)| format!("{form} {count}")).collect();
    println!(
        "receipt mix: {RECEIPTS} texts, {:.1} bytes on average, seed {SEED:#x}; {}",
        bytes as f64 / RECEIPTS as f64,
        mix.join(", ")
    );
    for text in &texts {
        if let Err(error) = parse_receipt_text(text) {
            panic!("benchmark receipt {text:?} was rejected: {error}");
        }
    }
    let tlv_ids: Vec<String> = texts.iter().map(|text| format!("{:X}", text.len() * 7919)).collect();
    let tlvs: Vec<ReceiptTlvs<'_>> = tlv_ids
        .iter()
        .enumerate()
        .map(|(index, id)| match index % 4 {
            0 => ReceiptTlvs { receipted_message_id: Some(id), message_state: Some(2), network_error_code: None },
            _ => ReceiptTlvs::default(),
        })
        .collect();
    let table = StateTable::new();
    let ids = carrier_ids();

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("receipt");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(RECEIPTS as u64));

    with_cpu_wait("receipt/parse_text", || {
        group.bench_function("parse_text", |bencher| {
            bencher.iter(|| {
                for text in &texts {
                    let _ = black_box(parse_receipt_text(black_box(text)));
                }
            });
        });
    });
    with_cpu_wait("receipt/read", || {
        group.bench_function("read", |bencher| {
            bencher.iter(|| {
                for (text, tlvs) in texts.iter().zip(&tlvs) {
                    let _ = black_box(Receipt::read(black_box(text), tlvs, &table));
                }
            });
        });
    });
    group.finish();

    let mut group = criterion.benchmark_group("carrier_id_keys");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(ids.len() as u64));
    with_cpu_wait("carrier_id_keys/mixed", || {
        group.bench_function("mixed", |bencher| {
            bencher.iter(|| {
                for id in &ids {
                    black_box(carrier_id_keys(black_box(id)));
                }
            });
        });
    });
    group.finish();

    criterion.final_summary();
}
