//! Throughput from raw record values to the message fold, one thread.
//!
//! Uses the same generated traffic as the domain crate's `fold` benchmark,
//! encoded once, before timing, into one contiguous buffer of record values
//! (as a consumer's fetch buffer contains them):
//! - `decode_fold/protobuf`: `decode_message_event(Format::Protobuf, …)`
//!   and then `MessageFold::apply`, for 100k and for 1M messages;
//! - `decode_fold/json`: the same from JSON values, for 100k messages;
//! - `decode_only/protobuf`: decoding alone, to split the cost of the two
//!   steps.
//!
//! Every iteration of a decode-and-fold benchmark starts from a new, empty
//! fold, and building it and dropping it are outside the timed part.
//!
//! Run: `cargo bench -p smsfold-wire --bench decode_fold`

#[path = "../../smsfold-domain/benches/workload/mod.rs"]
mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkGroup, Criterion, SamplingMode, Throughput};
use prost::Message;
use serde_json::json;
use smsfold_domain::{Channel, MessageEvent, MessageEventKind, MessageFold, ReceiptOutcome, Timestamp};
use smsfold_wire::proto::message_event::Kind;
use smsfold_wire::{decode_message_event, proto, Format};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use workload::Config;

/// Record values laid end to end, with each value's start and end offset.
struct Records {
    bytes: Vec<u8>,
    bounds: Vec<(usize, usize)>,
}

impl Records {
    fn encode(events: &[MessageEvent], format: Format) -> Self {
        let mut records = Records { bytes: Vec::new(), bounds: Vec::with_capacity(events.len()) };
        for event in events {
            let start = records.bytes.len();
            match format {
                Format::Protobuf => {
                    to_proto(event).encode(&mut records.bytes).expect("a Vec grows as needed")
                }
                Format::Json => {
                    serde_json::to_writer(&mut records.bytes, &to_json(event)).expect("a Vec grows as needed")
                }
            }
            records.bounds.push((start, records.bytes.len()));
        }
        records
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.bounds.iter().map(|&(start, end)| &self.bytes[start..end])
    }

    /// Checks that every value decodes back to the event it was encoded from,
    /// so the benchmark folds exactly the traffic the domain benchmark folds.
    fn check_round_trip(&self, format: Format, events: &[MessageEvent]) {
        for (index, (value, event)) in self.iter().zip(events).enumerate() {
            let decoded = decode_message_event(format, value)
                .unwrap_or_else(|error| panic!("{format:?} record {index} failed to decode: {error}"));
            assert_eq!(&decoded, event, "{format:?} record {index} decodes to a different event");
        }
    }

    fn describe(&self, name: &str, format: Format) {
        let mean = self.bytes.len() as f64 / self.bounds.len() as f64;
        println!("records {name} {format:?}: {} values, {:.1} bytes on average", self.bounds.len(), mean);
    }
}

fn proto_time(at: Timestamp) -> prost_types::Timestamp {
    let millis = at.as_millis();
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn proto_channel(channel: Channel) -> i32 {
    match channel {
        Channel::Sms => proto::Channel::Sms as i32,
        Channel::Mms => proto::Channel::Mms as i32,
    }
}

fn proto_outcome(outcome: ReceiptOutcome) -> i32 {
    match outcome {
        ReceiptOutcome::Delivered => proto::ReceiptOutcome::Delivered as i32,
        ReceiptOutcome::Undelivered => proto::ReceiptOutcome::Undelivered as i32,
        other => panic!("the workload decides no {} receipts", other.as_str()),
    }
}

/// Encodes an event as protobuf. Only the kinds the workload generates are
/// covered, and others panic.
fn to_proto(event: &MessageEvent) -> proto::MessageEvent {
    let kind = match &event.kind {
        MessageEventKind::Accepted { attributes, send_at } => Kind::Accepted(proto::MessageAccepted {
            campaign_id: attributes.campaign_id.clone().unwrap_or_default(),
            account_id: attributes.account_id.clone(),
            from: attributes.from.clone(),
            to: attributes.to.clone(),
            channel: proto_channel(attributes.channel),
            segments: u32::from(attributes.segments),
            send_at: send_at.map(proto_time),
        }),
        MessageEventKind::Queued => Kind::Queued(proto::MessageQueued {}),
        MessageEventKind::Sending => Kind::Sending(proto::MessageSending {}),
        MessageEventKind::Sent { carrier_message_ids } => Kind::Sent(proto::MessageSent {
            carrier_message_id: carrier_message_ids.first().cloned().unwrap_or_default(),
            segment_carrier_message_ids: Vec::new(),
        }),
        MessageEventKind::Failed { error_code } => {
            Kind::Failed(proto::MessageFailed { error_code: *error_code })
        }
        MessageEventKind::DeliveryReceipt { outcome, error_code, done_at, .. } => {
            Kind::DeliveryReceipt(proto::DeliveryReceipt {
                outcome: proto_outcome(*outcome),
                error_code: *error_code,
                done_at: done_at.map(proto_time),
                ..Default::default()
            })
        }
        other => panic!("the workload generates no {} events", other.name()),
    };
    proto::MessageEvent {
        event_id: event.event_id.clone(),
        occurred_at: Some(proto_time(event.occurred_at)),
        message_id: event.message_id.clone(),
        kind: Some(kind),
    }
}

/// Formats a time as producers write it: RFC 3339 in UTC.
fn rfc3339(at: Timestamp) -> String {
    let nanos = i128::from(at.as_millis()) * 1_000_000;
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos).expect("generated times are in range");
    time.format(&Rfc3339).expect("a UTC time formats as RFC 3339")
}

/// Encodes an event as a flat JSON object. Only the kinds the workload
/// generates are covered, and others panic.
fn to_json(event: &MessageEvent) -> serde_json::Value {
    let mut value = json!({
        "event_id": event.event_id,
        "occurred_at": rfc3339(event.occurred_at),
        "message_id": event.message_id,
        "kind": event.kind.name(),
    });
    let fields = value.as_object_mut().expect("built as an object");
    match &event.kind {
        MessageEventKind::Accepted { attributes, send_at } => {
            fields.insert("campaign_id".into(), json!(attributes.campaign_id));
            fields.insert("account_id".into(), json!(attributes.account_id));
            fields.insert("from".into(), json!(attributes.from));
            fields.insert("to".into(), json!(attributes.to));
            fields.insert("channel".into(), json!(attributes.channel.as_str()));
            fields.insert("segments".into(), json!(attributes.segments));
            if let Some(send_at) = send_at {
                fields.insert("send_at".into(), json!(rfc3339(*send_at)));
            }
        }
        MessageEventKind::Queued | MessageEventKind::Sending => {}
        MessageEventKind::Sent { carrier_message_ids } => {
            fields.insert("carrier_message_id".into(), json!(carrier_message_ids.first()));
        }
        MessageEventKind::Failed { error_code } => {
            fields.insert("error_code".into(), json!(error_code));
        }
        MessageEventKind::DeliveryReceipt { outcome, error_code, done_at, .. } => {
            fields.insert("outcome".into(), json!(outcome.as_str()));
            fields.insert("error_code".into(), json!(error_code));
            if let Some(done_at) = done_at {
                fields.insert("done_at".into(), json!(rfc3339(*done_at)));
            }
        }
        other => panic!("the workload generates no {} events", other.name()),
    }
    value
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, seconds: u64) {
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(seconds));
}

fn bench_decode_fold(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    format: Format,
    records: &Records,
) {
    group.throughput(Throughput::Elements(records.bounds.len() as u64));
    workload::with_cpu_wait(&format!("decode_fold/{id}"), || {
        group.bench_function(id, |bencher| {
            bencher.iter_batched(
                MessageFold::new,
                |mut fold| {
                    for value in records.iter() {
                        let event =
                            decode_message_event(format, black_box(value)).expect("checked before timing");
                        let _ = black_box(fold.apply(&event));
                    }
                    fold
                },
                BatchSize::PerIteration,
            );
        });
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let counts = workload::message_counts(&[100_000, 1_000_000]);
    let (small_name, large_name) = (workload::size_name(counts[0]), workload::size_name(counts[1]));

    let config = Config::traffic(counts[0]);
    let small = workload::generate(&config);
    workload::describe(&small_name, &config, &small);
    let small_proto = Records::encode(&small.events, Format::Protobuf);
    small_proto.check_round_trip(Format::Protobuf, &small.events);
    small_proto.describe(&small_name, Format::Protobuf);
    let small_json = Records::encode(&small.events, Format::Json);
    small_json.check_round_trip(Format::Json, &small.events);
    small_json.describe(&small_name, Format::Json);
    drop(small);

    let config = Config::traffic(counts[1]);
    let large = workload::generate(&config);
    workload::describe(&large_name, &config, &large);
    let large_proto = Records::encode(&large.events, Format::Protobuf);
    large_proto.check_round_trip(Format::Protobuf, &large.events);
    large_proto.describe(&large_name, Format::Protobuf);
    drop(large);

    let mut group = criterion.benchmark_group("decode_fold");
    configure(&mut group, 4);
    bench_decode_fold(&mut group, &format!("protobuf/{small_name}"), Format::Protobuf, &small_proto);
    configure(&mut group, 16);
    bench_decode_fold(&mut group, &format!("protobuf/{large_name}"), Format::Protobuf, &large_proto);
    configure(&mut group, 6);
    bench_decode_fold(&mut group, &format!("json/{small_name}"), Format::Json, &small_json);
    group.finish();

    let mut group = criterion.benchmark_group("decode_only");
    configure(&mut group, 3);
    group.throughput(Throughput::Elements(small_proto.bounds.len() as u64));
    let id = format!("protobuf/{small_name}");
    workload::with_cpu_wait(&format!("decode_only/{id}"), || {
        group.bench_function(&id, |bencher| {
            bencher.iter(|| {
                for value in small_proto.iter() {
                    black_box(
                        decode_message_event(Format::Protobuf, black_box(value))
                            .expect("checked before timing"),
                    );
                }
            });
        });
    });
    group.finish();

    criterion.final_summary();
}
