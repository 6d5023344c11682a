//! Several pipelines in one process.
//!
//! A pipeline is a whole worker: its own group member, transactional
//! producer and transactional id, folds and commit cycle. The group shares
//! the partitions among the pipelines as among instances, so they fold and
//! commit in parallel, as Kafka Streams' stream threads do. Each pipeline
//! runs on a thread of its own; the process serves one HTTP view and one
//! set of gauges over all of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::{FuturesUnordered, StreamExt};
use smsfold_domain::{CampaignProjection, CampaignStatus, MessageProjection};
use tokio::sync::{oneshot, watch};
use tracing::{error, info_span, Instrument};

use crate::config::WorkerConfig;
use crate::error::WorkerError;
use crate::metrics;
use crate::projections::Projections;
use crate::worker::Worker;

/// The state one pipeline shares with the rest of the process.
#[derive(Debug, Clone, Default)]
pub struct Share {
    pub projections: Arc<Mutex<Projections>>,
    /// True while the pipeline owns partitions and their state is restored.
    pub ready: Arc<AtomicBool>,
    /// True once the pipeline was given an assignment, even an empty one.
    pub assigned: Arc<AtomicBool>,
}

impl Share {
    fn lock(&self) -> MutexGuard<'_, Projections> {
        self.projections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The projections and readiness of every pipeline of one process, for the
/// HTTP views and the gauges.
#[derive(Debug, Clone, Default)]
pub struct ProcessView {
    shares: Arc<[Share]>,
    /// Serializes the readiness gauge's updates, so that the last one
    /// written saw every pipeline's latest state.
    readiness_gauge: Arc<Mutex<()>>,
}

impl ProcessView {
    pub fn new(shares: Vec<Share>) -> Self {
        ProcessView { shares: shares.into(), readiness_gauge: Arc::default() }
    }

    /// Sets the `smsfold_ready` gauge to the process's readiness.
    pub fn export_readiness(&self) {
        let _serialized = self.readiness_gauge.lock().unwrap_or_else(|e| e.into_inner());
        metrics::ready(self.is_ready());
    }

    /// True when at least one pipeline is ready and none is restoring. A
    /// pipeline the group has not assigned anything yet, which happens when
    /// there are more pipelines than partitions, does not hold readiness
    /// back.
    pub fn is_ready(&self) -> bool {
        let ready = |share: &Share| share.ready.load(Ordering::Acquire);
        let waiting = |share: &Share| !share.assigned.load(Ordering::Acquire);
        self.shares.iter().any(ready) && self.shares.iter().all(|share| ready(share) || waiting(share))
    }

    /// Returns one message's projection if a pipeline contains it.
    pub fn message(&self, message_id: &str) -> Option<MessageProjection> {
        self.shares.iter().find_map(|share| share.lock().message(message_id))
    }

    /// Returns one campaign's projection if a pipeline contains it.
    pub fn campaign(&self, campaign_id: &str) -> Option<CampaignProjection> {
        self.shares.iter().find_map(|share| share.lock().campaign(campaign_id))
    }

    /// Returns every campaign of every pipeline.
    pub fn campaign_projections(&self) -> Vec<CampaignProjection> {
        self.shares.iter().flat_map(|share| share.lock().campaign_projections()).collect()
    }

    pub fn live_messages(&self) -> usize {
        self.shares.iter().map(|share| share.lock().live_messages()).sum()
    }

    /// Returns the receipts waiting for their sent event and the carrier
    /// links, over every pipeline.
    pub fn carrier_join_sizes(&self) -> (usize, usize) {
        self.shares.iter().fold((0, 0), |(pending, links), share| {
            let (more_pending, more_links) = share.lock().carrier_join_sizes();
            (pending + more_pending, links + more_links)
        })
    }

    /// Counts campaigns per status over every pipeline.
    pub fn campaigns_by_status(&self) -> [(CampaignStatus, usize); 5] {
        let mut counts = CampaignStatus::ALL.map(|status| (status, 0));
        for share in self.shares.iter() {
            for (total, (_, count)) in counts.iter_mut().zip(share.lock().campaigns_by_status()) {
                total.1 += count;
            }
        }
        counts
    }
}

/// Returns the instance id of pipeline `index`: the first keeps the
/// instance's own id, so a single pipeline is named as before.
pub fn instance_id(instance_id: &str, index: usize) -> String {
    if index == 0 {
        instance_id.to_owned()
    } else {
        format!("{instance_id}-pipeline-{index}")
    }
}

/// The pipelines of one process, configured and ready to run.
pub struct Pipelines {
    workers: Vec<Worker>,
    view: ProcessView,
}

impl Pipelines {
    /// Configures `config.pipelines` workers; connects nothing yet.
    pub fn new(config: WorkerConfig) -> Result<Self, WorkerError> {
        config.validate()?;
        let shares: Vec<Share> = (0..config.pipelines).map(|_| Share::default()).collect();
        let view = ProcessView::new(shares.clone());
        let workers = shares
            .into_iter()
            .enumerate()
            .map(|(index, share)| {
                let mut config = config.clone();
                config.instance_id = instance_id(&config.instance_id, index);
                Worker::sharing(config, share, view.clone())
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pipelines { workers, view })
    }

    pub fn view(&self) -> ProcessView {
        self.view.clone()
    }

    /// Runs every pipeline on a thread of its own until `shutdown` turns
    /// true or one of them fails. A failure stops the others, each after it
    /// committed its open batch, and is returned.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), WorkerError> {
        let (stop, stopping) = watch::channel(false);
        let count = self.workers.len();
        let mut ends = Vec::with_capacity(count);
        for (index, worker) in self.workers.into_iter().enumerate() {
            let (end, ended) = oneshot::channel();
            let stopping = stopping.clone();
            // Every log line of a pipeline names it.
            let instance_id = worker.instance_id().to_owned();
            let span = info_span!("pipeline", instance_id = %instance_id);
            std::thread::Builder::new()
                .name(format!("pipeline-{index}"))
                .spawn(move || {
                    let result = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|error| WorkerError::Pipeline(format!("could not start its runtime: {error}")))
                        .and_then(|runtime| runtime.block_on(worker.run(stopping).instrument(span)));
                    let _ = end.send(result);
                })
                .map_err(|error| WorkerError::Pipeline(format!("could not start thread pipeline-{index}: {error}")))?;
            ends.push(async move { (instance_id, ended.await) });
        }

        let mut first_error = None;
        let mut running: FuturesUnordered<_> = ends.into_iter().collect();
        loop {
            tokio::select! {
                changed = shutdown.changed(), if !*stop.borrow() => {
                    if changed.is_err() || *shutdown.borrow() {
                        let _ = stop.send(true);
                    }
                }
                ended = running.next() => {
                    let Some((instance_id, ended)) = ended else { break };
                    let result = ended.unwrap_or_else(|_| Err(WorkerError::Pipeline("its thread panicked".to_owned())));
                    if let Err(error) = result {
                        // The caller reports the error itself, with secrets
                        // hidden, so it is not logged here.
                        if first_error.is_none() && count > 1 {
                            error!(%instance_id, "a pipeline failed; stopping the others");
                        }
                        first_error.get_or_insert(error);
                        let _ = stop.send(true);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(ready: bool, assigned: bool) -> Share {
        let share = Share::default();
        share.ready.store(ready, Ordering::Release);
        share.assigned.store(assigned, Ordering::Release);
        share
    }

    #[test]
    fn ready_needs_every_assigned_pipeline() {
        let view = ProcessView::new(vec![share(true, true), share(false, true)]);
        assert!(!view.is_ready());

        let view = ProcessView::new(vec![share(true, true), share(true, true)]);
        assert!(view.is_ready());
    }

    #[test]
    fn unassigned_pipeline_does_not_hold_readiness_back() {
        let view = ProcessView::new(vec![share(true, true), share(false, false)]);
        assert!(view.is_ready());

        let view = ProcessView::new(vec![share(false, false), share(false, false)]);
        assert!(!view.is_ready());
    }

    #[test]
    fn first_pipeline_keeps_instance_id() {
        assert_eq!(instance_id("host-a", 0), "host-a");
        assert_eq!(instance_id("host-a", 2), "host-a-pipeline-2");
    }
}
