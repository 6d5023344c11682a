//! `smsfold run`: the worker, its HTTP endpoints and its shutdown.
//!
//! On SIGTERM or SIGINT the worker commits its open batch and stops. If it
//! has not stopped within `shutdown_timeout_ms`, or a second signal arrives,
//! smsfold exits with an error without waiting any longer.

use std::future::Future;
use std::time::Duration;

use anyhow::{bail, Context};
use smsfold_worker::{http, metrics, Pipelines, WorkerConfig, WorkerError};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};

use crate::settings::{self, Resolved, DEFAULT_HTTP_ADDR};
use crate::version;

/// Maximum wait for the HTTP server to close its connections after the worker
/// stopped.
const HTTP_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// How often histogram samples are folded into their buckets.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(config: WorkerConfig, resolved: &Resolved) -> anyhow::Result<()> {
    info!(version = version::SHORT, commit = version::COMMIT, "starting smsfold");
    info!(config = %settings::render_line(&resolved.rows(&config)), "effective configuration");

    let http_addr = config.http_addr.unwrap_or(DEFAULT_HTTP_ADDR);
    let pipelines = Pipelines::new(config).map_err(|error| worker_error(error, resolved))?;
    let metrics = metrics::install_with_commit(crate::version::COMMIT).context("could not install the Prometheus recorder")?;
    let mut signals = listen_for_signals()?;
    let (shutdown_tx, shutdown) = watch::channel(false);

    // The server ends early only when it fails, e.g. when http_addr is in use.
    let (server_failed_tx, server_failed) = oneshot::channel();
    // Histogram samples wait in the recorder until they are folded into their
    // buckets; fold them regularly, so that memory stays flat when nothing
    // scrapes /metrics. The folding runs on a thread of its own, because as
    // a task on the runtime it fell behind while the worker was busy, and a
    // saturation run's samples piled up to 70 MiB (BENCHMARKS.md, "Memory").
    let upkeep = metrics.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(METRICS_UPKEEP_INTERVAL);
            upkeep.run_upkeep();
        })
        .context("could not start the metrics upkeep thread")?;
    let serving = http::serve(http_addr, Some(metrics), pipelines.view(), shutdown.clone());
    let server = tokio::spawn(async move {
        if let Err(error) = serving.await {
            let _ = server_failed_tx.send(format!("{error}; set http_addr to a free address"));
        }
    });
    let server_failure = async {
        match server_failed.await {
            Ok(problem) => resolved.invalid("http_addr", problem),
            Err(_closed) => std::future::pending().await,
        }
    };
    info!(%http_addr, "serving /metrics, /healthz and /readyz");

    let running = tokio::spawn(pipelines.run(shutdown));
    let worker_done = async {
        match running.await {
            Ok(result) => result.map_err(|error| worker_error(error, resolved)),
            Err(join_error) => Err(anyhow::Error::new(join_error).context("the worker task panicked")),
        }
    };
    let result = supervise(worker_done, server_failure, &mut signals, &shutdown_tx, resolved.shutdown_timeout()).await;

    // The worker stopped or was given up on: stop serving too.
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(HTTP_SHUTDOWN_WAIT, server).await;
    if result.is_ok() {
        info!("smsfold stopped");
    }
    result
}

/// `smsfold rebuild`: rebuilds the projections, printing progress on stderr.
pub async fn rebuild(config: WorkerConfig, resolved: &Resolved) -> anyhow::Result<()> {
    let done = smsfold_worker::rebuild::rebuild(config, |progress| {
        let percent = if progress.total > 0 { progress.replayed * 100 / progress.total } else { 100 };
        eprintln!("rebuild: {percent}% ({} of {} input records)", progress.replayed, progress.total);
    })
    .await
    .map_err(|error| worker_error(error, resolved))?;
    eprintln!("rebuild: done, {} input records folded again", done.total);
    Ok(())
}

/// Names the source of an invalid setting the worker reports, and keeps
/// secret property values out of the message.
fn worker_error(error: WorkerError, resolved: &Resolved) -> anyhow::Error {
    match error {
        WorkerError::Config(error) => resolved.invalid(error.setting, &error.problem),
        WorkerError::Kafka(error) => match settings::config_error(&error) {
            Some((setting, problem)) => resolved.invalid(&setting, problem),
            None => WorkerError::Kafka(error).into(),
        },
        other => other.into(),
    }
}

/// Waits for the worker to end, and bounds its drain after the first signal.
///
/// Returns the worker's own result when it ends, before or after a signal.
/// Returns an error when it has not ended `timeout` after the first signal,
/// or when a second signal arrives first. When `failure` (a part the worker
/// cannot run without) ends first, stops the worker the same way and returns
/// that failure.
async fn supervise(
    worker: impl Future<Output = anyhow::Result<()>>,
    failure: impl Future<Output = anyhow::Error>,
    signals: &mut mpsc::Receiver<&'static str>,
    shutdown: &watch::Sender<bool>,
    timeout: Duration,
) -> anyhow::Result<()> {
    tokio::pin!(worker);
    let cause = tokio::select! {
        result = &mut worker => return result,
        Some(signal) = signals.recv() => signal,
        failure = failure => {
            error!(error = format!("{failure:#}"), "stopping the worker");
            let _ = shutdown.send(true);
            if let Ok(Err(worker_error)) = tokio::time::timeout(timeout, &mut worker).await {
                warn!(error = format!("{worker_error:#}"), "the worker failed while stopping");
            }
            return Err(failure);
        }
    };

    let timeout_ms = timeout.as_millis();
    info!(signal = cause, timeout_ms, "shutdown requested; committing the open batch");
    let _ = shutdown.send(true);
    tokio::select! {
        result = &mut worker => result,
        () = tokio::time::sleep(timeout) => bail!(
            "the worker did not stop within {timeout_ms} ms of {cause} (shutdown_timeout_ms); exiting without its \
             last commit, so the records of its open batch will be processed again"
        ),
        Some(second) = signals.recv() => bail!(
            "received {second} while the worker was stopping; exiting without its last commit, so the records \
             of its open batch will be processed again"
        ),
    }
}

/// Starts a task that sends the name of each SIGTERM or SIGINT received.
fn listen_for_signals() -> anyhow::Result<mpsc::Receiver<&'static str>> {
    let (sender, receiver) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate()).context("could not install the SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("could not install the SIGINT handler")?;
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                if sender.send(name).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if sender.send("Ctrl-C").await.is_err() {
                break;
            }
        }
    });
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn drain_that_never_ends_times_out() {
        let (signal_tx, mut signals) = mpsc::channel(4);
        let (shutdown_tx, shutdown) = watch::channel(false);
        signal_tx.send("SIGTERM").await.unwrap();

        let result =
            supervise(std::future::pending(), std::future::pending(), &mut signals, &shutdown_tx, TIMEOUT).await;

        let error = result.unwrap_err().to_string();
        assert!(error.contains("did not stop within 100 ms of SIGTERM"), "{error}");
        assert!(*shutdown.borrow(), "the worker was not asked to stop");
    }

    #[tokio::test]
    async fn drain_that_ends_returns_worker_result() {
        let (signal_tx, mut signals) = mpsc::channel(4);
        let (shutdown_tx, mut shutdown) = watch::channel(false);
        signal_tx.send("SIGINT").await.unwrap();
        let worker = async move {
            shutdown.wait_for(|stop| *stop).await.unwrap();
            Ok(())
        };

        let result = supervise(worker, std::future::pending(), &mut signals, &shutdown_tx, TIMEOUT).await;

        assert!(result.is_ok(), "{result:?}");
    }

    #[tokio::test]
    async fn second_signal_stops_at_once() {
        let (signal_tx, mut signals) = mpsc::channel(4);
        let (shutdown_tx, _shutdown) = watch::channel(false);
        signal_tx.send("SIGTERM").await.unwrap();
        signal_tx.send("SIGINT").await.unwrap();

        let result = supervise(
            std::future::pending(),
            std::future::pending(),
            &mut signals,
            &shutdown_tx,
            Duration::from_secs(60),
        )
        .await;

        let error = result.unwrap_err().to_string();
        assert!(error.contains("received SIGINT while the worker was stopping"), "{error}");
    }

    #[tokio::test]
    async fn failure_stops_worker() {
        let (_signal_tx, mut signals) = mpsc::channel(4);
        let (shutdown_tx, mut shutdown) = watch::channel(false);
        let worker = async move {
            shutdown.wait_for(|stop| *stop).await.unwrap();
            Ok(())
        };
        let failure = async { anyhow::anyhow!("invalid setting http_addr: address in use") };

        let result = supervise(worker, failure, &mut signals, &shutdown_tx, TIMEOUT).await;

        assert_eq!(result.unwrap_err().to_string(), "invalid setting http_addr: address in use");
    }

    #[tokio::test]
    async fn worker_failure_without_signal_returned() {
        let (_signal_tx, mut signals) = mpsc::channel(4);
        let (shutdown_tx, _shutdown) = watch::channel(false);

        let result =
            supervise(async { bail!("broker gone") }, std::future::pending(), &mut signals, &shutdown_tx, TIMEOUT)
                .await;

        assert_eq!(result.unwrap_err().to_string(), "broker gone");
    }
}
