//! Throughput of the two folds on already-decoded events, one thread.
//!
//! - `message_fold/apply`: `MessageFold::apply` over every event of the
//!   generated traffic, for 100k and for 1M messages.
//! - `campaign_fold/record`: `CampaignFold::record` over every campaign
//!   update that folding the 1M-message traffic emits.
//! - `message_fold/evict_pass`: one `MessageFold::evict` over the fold of
//!   the 1M-message traffic when no message is old enough to leave, the
//!   scan a worker's eviction pass makes of each partition.
//!
//! Every iteration starts from a new, empty fold, so the figures include
//! the growth of the fold's tables. Building the fold before and dropping
//! it after are outside the timed part.
//!
//! Run: `cargo bench -p smsfold-domain --bench fold`

mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use smsfold_domain::{CampaignChange, CampaignFold, MessageFold, MessageUpdate};

use workload::{Config, Workload};

fn bench_message_fold(criterion: &mut Criterion, workloads: &[(String, Workload)]) {
    let mut group = criterion.benchmark_group("message_fold");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));

    for (name, workload) in workloads {
        // Enough for 10 samples of at least one iteration each.
        let seconds = if workload.events.len() > 1_000_000 { 8 } else { 4 };
        group.measurement_time(Duration::from_secs(seconds));
        group.throughput(Throughput::Elements(workload.events.len() as u64));
        let id = format!("apply/{name}");
        workload::with_cpu_wait(&format!("message_fold/{id}"), || {
            group.bench_function(&id, |bencher| {
                bencher.iter_batched(
                    MessageFold::new,
                    |mut fold| {
                        for event in &workload.events {
                            let _ = black_box(fold.apply(black_box(event)));
                        }
                        fold
                    },
                    BatchSize::PerIteration,
                );
            });
        });
    }
    group.finish();
}

fn bench_campaign_fold(criterion: &mut Criterion, name: &str, workload: &Workload) {
    let (updates, message_fold) = workload::campaign_updates(workload);
    println!("campaign_fold/record/{name}: {} campaign updates", updates.len());
    let updates: Vec<_> =
        updates.iter().map(|record| workload::message_update(workload, &message_fold, record)).collect();
    let started_fold = || {
        let mut fold = CampaignFold::new();
        for event in &workload.campaign_events {
            fold.apply(event).expect("generated campaign events are valid");
        }
        fold
    };

    let mut group = criterion.benchmark_group("campaign_fold");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(updates.len() as u64));
    // `record` keeps an entry per message, as at-least-once runs fold
    // updates; `count` moves counts alone, as exactly-once runs do.
    type Fold = for<'u> fn(&mut CampaignFold, &MessageUpdate<'u>) -> Option<CampaignChange>;
    let ways: [(&str, Fold); 2] = [("record", CampaignFold::record), ("count", CampaignFold::count)];
    for (way, fold_update) in ways {
        let id = format!("{way}/{name}");
        workload::with_cpu_wait(&format!("campaign_fold/{id}"), || {
            group.bench_function(&id, |bencher| {
                bencher.iter_batched(
                    started_fold,
                    |mut fold| {
                        for update in &updates {
                            black_box(fold_update(&mut fold, black_box(update)));
                        }
                        fold
                    },
                    BatchSize::PerIteration,
                );
            });
        });
    }
    group.finish();
}

fn bench_evict_pass(criterion: &mut Criterion, name: &str, workload: &Workload) {
    let (_, mut fold) = workload::campaign_updates(workload);
    let retention = Duration::from_secs(30 * 24 * 3600);
    let eviction = fold.evict(retention);
    assert!(eviction.evicted.is_empty(), "the generated traffic spans less than the retention");

    let mut group = criterion.benchmark_group("message_fold");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(fold.len() as u64));
    let id = format!("evict_pass/{name}");
    workload::with_cpu_wait(&format!("message_fold/{id}"), || {
        group.bench_function(&id, |bencher| bencher.iter(|| black_box(fold.evict(black_box(retention)))));
    });
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();

    let mut workloads = Vec::new();
    for messages in workload::message_counts(&[100_000, 1_000_000]) {
        let name = workload::size_name(messages);
        let config = Config::traffic(messages);
        let workload = workload::generate(&config);
        workload::describe(&name, &config, &workload);
        // Panics if the fold rejects a generated event.
        let (_, fold) = workload::campaign_updates(&workload);
        assert_eq!(fold.len(), messages, "the fold tracks every generated message");
        workloads.push((name, workload));
    }

    bench_message_fold(&mut criterion, &workloads);
    let (name, largest) = &workloads[1];
    bench_campaign_fold(&mut criterion, name, largest);
    bench_evict_pass(&mut criterion, name, largest);

    criterion.final_summary();
}
