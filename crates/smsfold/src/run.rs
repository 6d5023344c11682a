//! `smsfold run`: the worker, its HTTP endpoints and its shutdown on SIGINT
//! or SIGTERM.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use smsfold_wire::Format;
use smsfold_worker::{http, metrics, GroupProtocol, Guarantee, Topics, Worker, WorkerConfig};
use tokio::sync::watch;
use tracing::info;

use crate::cli::{GroupProtocolArg, GuaranteeArg, OutputFormat, RunArgs};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = config_from_args(&args)?;
    let worker = Worker::new(config.clone())?;
    let metrics = metrics::install().context("could not install the Prometheus recorder")?;
    let (shutdown_tx, shutdown) = watch::channel(false);

    let http_addr = args.http_addr;
    let server = tokio::spawn(http::serve(
        http_addr,
        Some(metrics),
        worker.projections(),
        worker.ready(),
        shutdown.clone(),
    ));
    info!(%http_addr, "serving /metrics, /healthz and /readyz");

    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested; committing the open batch");
        let _ = shutdown_tx.send(true);
    });

    let result = worker.run(shutdown).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    result.map_err(Into::into)
}

/// `smsfold rebuild`: rebuilds the projections, printing progress on stderr.
pub async fn rebuild(args: RunArgs) -> anyhow::Result<()> {
    let config = config_from_args(&args)?;
    let done = smsfold_worker::rebuild::rebuild(config, |progress| {
        let percent = if progress.total > 0 { progress.replayed * 100 / progress.total } else { 100 };
        eprintln!("rebuild: {percent}% ({} of {} input records)", progress.replayed, progress.total);
    })
    .await?;
    eprintln!("rebuild: done, {} input records folded again", done.total);
    Ok(())
}

pub fn config_from_args(args: &RunArgs) -> anyhow::Result<WorkerConfig> {
    let mut config = WorkerConfig::new(args.bootstrap_servers.clone());
    config.group_id = args.group_id.clone();
    if let Some(instance_id) = &args.instance_id {
        config.instance_id = instance_id.clone();
    }
    config.group_protocol = match args.group_protocol {
        GroupProtocolArg::Consumer => GroupProtocol::Consumer,
        GroupProtocolArg::Classic => GroupProtocol::Classic,
    };
    config.guarantee = match args.guarantee {
        GuaranteeArg::ExactlyOnce => Guarantee::ExactlyOnce,
        GuaranteeArg::AtLeastOnce => Guarantee::AtLeastOnce,
    };
    config.topics = Topics {
        message_events: args.topics.message_events_topic.clone(),
        campaign_events: args.topics.campaign_events_topic.clone(),
        message_changes: args.topics.message_changes_topic.clone(),
        campaign_changes: args.topics.campaign_changes_topic.clone(),
        dead_letter: args.topics.dead_letter_topic.clone(),
        campaign_stage: args.topics.campaign_stage_topic.clone(),
        message_commands: args.topics.message_commands_topic.clone(),
    };
    config.output_format = match args.output_format {
        OutputFormat::Json => Format::Json,
        OutputFormat::Protobuf => Format::Protobuf,
    };
    config.max_record_bytes = args.max_record_bytes;
    config.batch_max_records = args.batch_max_records;
    config.batch_max_wait = Duration::from_millis(args.batch_max_wait_ms);
    config.retention = Duration::from_secs(args.retention_hours.saturating_mul(3600));
    config.campaign_stage_partitions = args.campaign_stage_partitions;
    config.replication_factor = args.replication_factor;
    config.http_addr = Some(args.http_addr);
    config.kafka_properties = parse_properties(&args.kafka_properties)?;
    config.validate()?;
    Ok(config)
}

fn parse_properties(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut properties = BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid setting --kafka-property {pair:?}: write it as KEY=VALUE, e.g. security.protocol=SSL");
        };
        properties.insert(key.trim().to_owned(), value.to_owned());
    }
    Ok(properties)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
