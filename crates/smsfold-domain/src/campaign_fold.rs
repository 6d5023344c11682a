//! The per-campaign fold of one campaign partition: each campaign's status
//! and its counts of messages per status, segments and delivery outcomes.
//!
//! It takes two inputs, both keyed by campaign id: the campaign's own
//! lifecycle events, and [`MessageUpdate`]s that the message folds publish
//! whenever one of the campaign's messages changes status. An update carries
//! the message's current status and the one its previous update carried.
//!
//! Two ways to count them:
//! - [`CampaignFold::record`] keeps an entry per message and takes the
//!   higher of its status and the update's, so a repeated or late update
//!   never counts a message twice or moves it back. At-least-once delivery
//!   needs that.
//! - [`CampaignFold::count`] keeps no entry: it moves the message's count
//!   from the previous status to the current one. It is exact when every
//!   update is applied once and in order, as exactly-once processing
//!   guarantees, and saves the entry's memory and its changelog record.
//!
//! A message that has an entry is always counted by its entry, so a fold
//! can go from one way to the other.
//!
//! When a campaign completes: a dispatch-finished event gives the number of
//! messages the platform dispatched, and the campaign is Completed as soon
//! as that many of its messages are sent or in a final status. The
//! recipient count from started-sending is reported, never used to decide.

use hashbrown::HashMap;

use crate::event::{CampaignEvent, CampaignEventKind};
use crate::key::MessageKey;
use crate::reject::Reject;
use crate::status::{CampaignStatus, MessageStatus};
use crate::time::Timestamp;

mod message_set;

use message_set::{MessageEntry, MessageSet};

/// The current status of one of a campaign's messages, as its message fold
/// reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageUpdate<'a> {
    pub campaign_id: &'a str,
    pub message_id: &'a str,
    pub status: MessageStatus,
    pub segments: u16,
    /// When the message's status happened.
    pub at: Timestamp,
    /// The status and segments of the message's previous update, `None` for
    /// its first.
    pub previous: Option<(MessageStatus, u16)>,
}

/// A campaign's message counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CampaignCounts {
    /// Messages in each status, indexed by [`MessageStatus::index`].
    pub by_status: [u64; 11],
    /// Segments of all the campaign's messages.
    pub segments: u64,
    /// Segments of the messages a carrier took (sent, delivered,
    /// undelivered): what the campaign is charged for.
    pub billable_segments: u64,
}

impl CampaignCounts {
    pub fn messages(&self) -> u64 {
        self.by_status.iter().sum()
    }

    pub fn count(&self, status: MessageStatus) -> u64 {
        self.by_status[status.index()]
    }

    pub fn delivered(&self) -> u64 {
        self.count(MessageStatus::Delivered)
    }

    /// Returns the messages that could not be sent or delivered: failed plus
    /// undelivered.
    pub fn failed(&self) -> u64 {
        self.count(MessageStatus::Failed) + self.count(MessageStatus::Undelivered)
    }

    /// Returns the messages that are sent or in a final status.
    pub fn settled(&self) -> u64 {
        MessageStatus::ALL
            .into_iter()
            .filter(|status| status.is_settled())
            .map(|status| self.count(status))
            .sum()
    }

    /// Returns delivered messages over messages with a delivery outcome
    /// (delivered, undelivered or failed), or `None` before the first one.
    /// Canceled messages are left out: they were never meant to go out.
    pub fn delivery_rate(&self) -> Option<f64> {
        let outcomes = self.delivered() + self.failed();
        (outcomes > 0).then(|| self.delivered() as f64 / outcomes as f64)
    }
}

/// A status change of one campaign, with its counts at that moment.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignChange {
    /// `None` when the campaign had no status yet.
    pub previous: Option<CampaignStatus>,
    pub status: CampaignStatus,
    pub at: Timestamp,
    pub counts: CampaignCounts,
}

/// A read-only view of one campaign's projection.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignProjection {
    pub campaign_id: String,
    /// `None` while only the campaign's messages have been seen.
    pub status: Option<CampaignStatus>,
    pub status_at: Option<Timestamp>,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub send_at: Option<Timestamp>,
    /// Recipients the campaign started sending to.
    pub recipients: Option<u64>,
    /// Messages dispatched, from the dispatch-finished event.
    pub dispatched: Option<u64>,
    pub counts: CampaignCounts,
}

#[derive(Debug, Default)]
struct CampaignState {
    status: Option<CampaignStatus>,
    status_at: Option<Timestamp>,
    account_id: Option<String>,
    name: Option<String>,
    send_at: Option<Timestamp>,
    recipients: Option<u64>,
    dispatched: Option<u64>,
    counts: CampaignCounts,
    messages: MessageSet,
}

impl CampaignState {
    /// Moves the campaign to `status` if that is forward, returning the change.
    fn advance(&mut self, status: CampaignStatus, at: Timestamp) -> Option<CampaignChange> {
        let previous = self.status;
        if previous.is_some_and(|current| current.is_final() || current >= status) {
            return None;
        }
        self.status = Some(status);
        self.status_at = Some(at);
        Some(CampaignChange { previous, status, at, counts: self.counts })
    }

    /// Completes the campaign once it has dispatched everything and every
    /// dispatched message is settled. Returns the change it made.
    fn complete_if_done(&mut self, at: Timestamp) -> Option<CampaignChange> {
        let dispatched = self.dispatched?;
        if self.counts.settled() < dispatched {
            return None;
        }
        // A late update can carry an earlier time than the campaign's current
        // status; completion never goes back in time.
        // NOTE: the completion time is the time of whichever update or
        // dispatch-finished event completed the campaign, so it depends on
        // their arrival order (a replay can give another time); the status
        // and counts do not.
        let at = self.status_at.map_or(at, |current| current.max(at));
        self.advance(CampaignStatus::Completed, at)
    }

    /// Counts `update`, keeping an entry for its message when `keep_entry`
    /// is set. Returns false when the update changed nothing.
    fn record(&mut self, update: &MessageUpdate<'_>, keep_entry: bool) -> bool {
        let key = MessageKey::of(update.message_id);
        let counts = &mut self.counts;
        match self.messages.get_mut(&key) {
            None => {
                // Without an entry the counts hold the message as its
                // previous update left it, if it had one.
                if let Some((status, segments)) = update.previous {
                    remove(counts, status, segments);
                }
                add(counts, update.status, update.segments);
                if keep_entry {
                    self.messages.insert(key, MessageEntry { status: update.status, segments: update.segments });
                }
                true
            }
            Some(entry) => {
                let segments = entry.segments.max(update.segments);
                let status = entry.status.max(update.status);
                if status == entry.status && segments == entry.segments {
                    return false;
                }
                remove(counts, entry.status, entry.segments);
                add(counts, status, segments);
                *entry = MessageEntry { status, segments };
                true
            }
        }
    }
}

fn add(counts: &mut CampaignCounts, status: MessageStatus, segments: u16) {
    counts.by_status[status.index()] += 1;
    counts.segments += u64::from(segments);
    if status.is_billable() {
        counts.billable_segments += u64::from(segments);
    }
}

/// Takes one message out of the counts. The counts never go below zero,
/// even for an update whose previous status was never counted (one for a
/// campaign that was retired and forgotten in between, say).
fn remove(counts: &mut CampaignCounts, status: MessageStatus, segments: u16) {
    let count = &mut counts.by_status[status.index()];
    *count = count.saturating_sub(1);
    counts.segments = counts.segments.saturating_sub(u64::from(segments));
    if status.is_billable() {
        counts.billable_segments = counts.billable_segments.saturating_sub(u64::from(segments));
    }
}

/// The campaign fold of one partition.
#[derive(Debug, Default)]
pub struct CampaignFold {
    campaigns: HashMap<String, CampaignState>,
    /// Latest event time seen, in ms since the epoch.
    watermark: i64,
    /// Campaigns that left the live state, with the watermark then (ms).
    retired: HashMap<String, i64>,
}

/// A campaign that left the live state, for the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictedCampaign {
    pub campaign_id: String,
    /// Keys of its messages' entries.
    pub messages: Vec<MessageKey>,
}

impl CampaignFold {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.campaigns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.campaigns.is_empty()
    }

    /// Applies one campaign lifecycle event.
    ///
    /// Returns the status change it caused, or a [`Reject`] for a
    /// cancellation of a Completed campaign.
    pub fn apply(&mut self, event: &CampaignEvent) -> Result<Option<CampaignChange>, Reject> {
        let at = event.occurred_at;
        if self.retired.contains_key(event.campaign_id.as_str()) {
            return Err(Reject::CampaignRetired { campaign_id: event.campaign_id.clone() });
        }
        self.watermark = self.watermark.max(at.as_millis());
        let campaign = self.campaigns.entry_ref(event.campaign_id.as_str()).or_default();
        let change = match &event.kind {
            CampaignEventKind::Created { account_id, name } => {
                campaign.account_id = Some(account_id.clone());
                campaign.name = Some(name.clone());
                campaign.advance(CampaignStatus::Draft, at)
            }
            CampaignEventKind::Scheduled { send_at } => {
                campaign.send_at = Some(*send_at);
                campaign.advance(CampaignStatus::Scheduled, at)
            }
            CampaignEventKind::StartedSending { recipients } => {
                campaign.recipients = Some(*recipients);
                let started = campaign.advance(CampaignStatus::Sending, at);
                merge(started, campaign.complete_if_done(at))
            }
            CampaignEventKind::Cancelled => {
                if campaign.status == Some(CampaignStatus::Completed) {
                    return Err(Reject::CampaignFinal {
                        campaign_id: event.campaign_id.clone(),
                        status: CampaignStatus::Completed.as_str(),
                        event: event.kind.name(),
                    });
                }
                campaign.advance(CampaignStatus::Cancelled, at)
            }
            CampaignEventKind::DispatchFinished { dispatched } => {
                campaign.dispatched = Some(*dispatched);
                let sending = campaign.advance(CampaignStatus::Sending, at);
                merge(sending, campaign.complete_if_done(at))
            }
        };
        Ok(change)
    }

    /// Records the current status of one of a campaign's messages, and
    /// keeps it in an entry of the message, so that a repeated or late
    /// update counts nothing twice.
    ///
    /// Returns the campaign's status change when the message completes it.
    /// An update for a campaign that left the live state changes nothing.
    pub fn record(&mut self, update: &MessageUpdate<'_>) -> Option<CampaignChange> {
        self.update(update, true)
    }

    /// Moves one of a campaign's messages from the status of its previous
    /// update to its current one, keeping no entry of the message. For
    /// updates that arrive once each and in order; a message with an entry
    /// from [`record`](Self::record) or a restore is still counted by it.
    ///
    /// Returns the campaign's status change when the message completes it.
    /// An update for a campaign that left the live state changes nothing.
    pub fn count(&mut self, update: &MessageUpdate<'_>) -> Option<CampaignChange> {
        // NOTE: a message id that the message fold retired and then forgot,
        // and that comes back with a recent event, starts over with no
        // previous status, so the campaign counts it a second time. `record`
        // counts it once while the campaign keeps its entry.
        self.update(update, false)
    }

    fn update(&mut self, update: &MessageUpdate<'_>, keep_entry: bool) -> Option<CampaignChange> {
        if self.retired.contains_key(update.campaign_id) {
            return None;
        }
        self.watermark = self.watermark.max(update.at.as_millis());
        let campaign = self.campaigns.entry_ref(update.campaign_id).or_default();
        if !campaign.record(update, keep_entry) {
            return None;
        }
        campaign.complete_if_done(update.at)
    }

    /// Returns true when the fold keeps an entry for any of the campaign's
    /// messages (see [`record`](Self::record)).
    pub fn has_message_entries(&self, campaign_id: &str) -> bool {
        self.campaigns.get(campaign_id).is_some_and(|campaign| !campaign.messages.is_empty())
    }

    /// Returns the status and segments the fold holds for one of a
    /// campaign's messages.
    pub fn message(&self, campaign_id: &str, message_id: &str) -> Option<(MessageStatus, u16)> {
        let entry = self.campaigns.get(campaign_id)?.messages.get(&MessageKey::of(message_id))?;
        Some((entry.status, entry.segments))
    }

    /// Puts a campaign's counts back as a changelog entry contains them. The
    /// counts cover every message counted when the entry was written, those
    /// with an entry of their own included. Those entries stay, so a later
    /// update of such a message is still counted by its entry.
    pub fn restore_counts(&mut self, campaign_id: &str, counts: CampaignCounts) {
        self.campaigns.entry_ref(campaign_id).or_default().counts = counts;
    }

    /// Puts a campaign's lifecycle fields back as `projection` describes
    /// them; its counts are ignored, because they follow from the restored
    /// messages or from [`restore_counts`](Self::restore_counts).
    pub fn restore_campaign(&mut self, projection: &CampaignProjection) {
        if let Some(at) = projection.status_at {
            self.watermark = self.watermark.max(at.as_millis());
        }
        let campaign = self.campaigns.entry_ref(projection.campaign_id.as_str()).or_default();
        campaign.status = projection.status;
        campaign.status_at = projection.status_at;
        campaign.account_id = projection.account_id.clone();
        campaign.name = projection.name.clone();
        campaign.send_at = projection.send_at;
        campaign.recipients = projection.recipients;
        campaign.dispatched = projection.dispatched;
    }

    /// Puts one of a campaign's messages back with its status and segments,
    /// replacing what the fold had, and adjusts the counts: the message
    /// moves from its restored entry or, without one, from `counted`, what
    /// the counts held for it when the entry was written.
    pub fn restore_message(
        &mut self,
        campaign_id: &str,
        message_id: &str,
        status: MessageStatus,
        segments: u16,
        counted: Option<(MessageStatus, u16)>,
    ) {
        let campaign = self.campaigns.entry_ref(campaign_id).or_default();
        let entry = MessageEntry { status, segments };
        let old = campaign.messages.insert(MessageKey::of(message_id), entry).map(|old| (old.status, old.segments));
        if let Some((status, segments)) = old.or(counted) {
            remove(&mut campaign.counts, status, segments);
        }
        add(&mut campaign.counts, status, segments);
    }

    /// Removes every Completed or Cancelled campaign whose status time is
    /// more than `retention` before the watermark, and remembers its id for
    /// one more `retention`, during which its events are rejected and its
    /// message updates ignored. Returns the campaigns removed and the ids
    /// forgotten.
    pub fn evict(&mut self, retention: std::time::Duration) -> (Vec<EvictedCampaign>, Vec<String>) {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let horizon = self.watermark.saturating_sub(retention_ms);
        let mut evicted = Vec::new();
        let watermark = self.watermark;
        let retired = &mut self.retired;
        self.campaigns.retain(|campaign_id, state| {
            let ended = state.status.is_some_and(CampaignStatus::is_final);
            let old = state.status_at.is_some_and(|at| at.as_millis() < horizon);
            if !(ended && old) {
                return true;
            }
            retired.insert(campaign_id.clone(), watermark);
            evicted.push(EvictedCampaign {
                campaign_id: campaign_id.clone(),
                messages: state.messages.keys().collect(),
            });
            false
        });
        let mut forgotten = Vec::new();
        self.retired.retain(|campaign_id, retired_at| {
            let keep = *retired_at >= horizon;
            if !keep {
                forgotten.push(campaign_id.clone());
            }
            keep
        });
        (evicted, forgotten)
    }

    /// Returns the fold's event-time watermark: the latest event time seen.
    pub fn watermark(&self) -> Timestamp {
        Timestamp::from_millis(self.watermark)
    }

    /// Remembers a retired campaign, as restored from a changelog.
    pub fn restore_retired(&mut self, campaign_id: &str, retired_at: Timestamp) {
        // A retired campaign is not live: state restored for it from records
        // written before its eviction, not compacted away yet, is dropped.
        self.campaigns.remove(campaign_id);
        self.retired.insert(campaign_id.to_owned(), retired_at.as_millis());
        self.watermark = self.watermark.max(retired_at.as_millis());
    }

    /// Returns one campaign's projection, if the fold has seen it.
    pub fn get(&self, campaign_id: &str) -> Option<CampaignProjection> {
        let (id, state) = self.campaigns.get_key_value(campaign_id)?;
        Some(project(id, state))
    }

    /// Returns every campaign's projection, in no particular order.
    pub fn projections(&self) -> impl Iterator<Item = CampaignProjection> + '_ {
        self.campaigns.iter().map(|(id, state)| project(id, state))
    }

    /// Returns the bytes the live state occupies on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.campaigns.allocation_size()
            + self
                .campaigns
                .iter()
                .map(|(id, state)| id.capacity() + state.messages.allocation_size())
                .sum::<usize>()
    }
}

/// Folds two consecutive changes of one event into one, so that a skipped
/// status (Scheduled straight to Completed, say) is reported as one change.
fn merge(first: Option<CampaignChange>, second: Option<CampaignChange>) -> Option<CampaignChange> {
    match (first, second) {
        (Some(first), Some(second)) => Some(CampaignChange { previous: first.previous, ..second }),
        (first, None) => first,
        (None, second) => second,
    }
}

fn project(id: &str, state: &CampaignState) -> CampaignProjection {
    CampaignProjection {
        campaign_id: id.to_owned(),
        status: state.status,
        status_at: state.status_at,
        account_id: state.account_id.clone(),
        name: state.name.clone(),
        send_at: state.send_at,
        recipients: state.recipients,
        dispatched: state.dispatched,
        counts: state.counts,
    }
}

#[cfg(test)]
mod tests;
