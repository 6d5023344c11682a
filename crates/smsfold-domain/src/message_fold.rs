//! The per-message fold of one input partition: the live state of every
//! message seen on it, and the status changes that events cause.
//!
//! Guarantees, for the events of one message in any order and with any
//! repetition:
//! - the projection ends in the same state (status, status time, error code,
//!   campaign, segments, channel);
//! - the changes it returns only ever move to a status of a higher rank, so a
//!   late or repeated event never moves a message back or emits a change twice.
//!
//! A receipt of one segment of a message sent in several parts counts
//! towards the message's delivery, which needs every segment delivered; see
//! `receipts`. An SMPP receipt must be read into a decided receipt before
//! it is applied.
//!
//! The one input whose effect depends on timing is a campaign cancellation.
//! It cancels the campaign's messages that are accepted, scheduled or queued
//! when it is applied, and those that turn up later at one of those stages.
//! A message that is already sending or beyond stays as it is.

use hashbrown::HashMap;

use crate::event::{Channel, MessageAttributes, MessageEvent, MessageEventKind, ReceiptOutcome};
use crate::key::MessageKey;
use crate::reject::Reject;
use crate::status::{Direction, MessageStatus};
use crate::time::Timestamp;

mod eviction;
mod id_arena;
mod message_table;
mod receipts;

use id_arena::IdArena;
use message_table::MessageTable;
pub use receipts::{ProgressReport, ReceiptHistory, SegmentDelivery};
use receipts::{ReceiptBook, Report, NO_REPORT};

/// The maximum message id length the fold stores, in bytes.
pub const MAX_MESSAGE_ID_LEN: usize = u8::MAX as usize;

const NO_CAMPAIGN: u32 = u32::MAX;
const FLAG_MMS: u8 = 1;

/// The live state of one message: 24 bytes, so 40 with its key.
#[derive(Debug, Clone, Copy)]
struct MessageState {
    /// When the current status happened; the earliest time reported for it.
    status_at: i64,
    /// Index into the fold's campaign table, or `NO_CAMPAIGN`.
    campaign: u32,
    /// The error code reported with the current status, 0 for none.
    error_code: u32,
    /// Offset of the length-prefixed message id in the fold's id arena.
    id_offset: u32,
    segments: u16,
    /// `MessageStatus` rank.
    status: u8,
    flags: u8,
}

impl MessageState {
    fn status(&self) -> MessageStatus {
        // Only `MessageStatus::rank` values are ever stored.
        MessageStatus::from_rank(self.status).unwrap_or(MessageStatus::Accepted)
    }
}

/// A status change of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageChange {
    /// `None` when the message was not known before.
    pub previous: Option<MessageStatus>,
    pub status: MessageStatus,
    /// When the new status happened.
    pub at: Timestamp,
    pub error_code: u32,
}

/// The current status and segment count of a campaign's message, for the
/// campaign's fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignLink {
    /// Index into the fold's campaign table; see [`MessageFold::campaign_id`].
    pub campaign: u32,
    pub status: MessageStatus,
    pub segments: u16,
    pub at: Timestamp,
    /// The status and segments of the link sent before this one, `None`
    /// when the message had no campaign yet. The campaign fold moves the
    /// message's count from there without keeping an entry per message.
    pub previous: Option<(MessageStatus, u16)>,
}

/// The result of applying one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The change the event itself caused.
    pub change: Option<MessageChange>,
    /// A cancellation that followed because the message turned out to belong
    /// to a cancelled campaign while still cancelable.
    pub canceled: Option<MessageChange>,
    /// Set when the message's campaign needs its new state.
    pub campaign: Option<CampaignLink>,
}

/// One message canceled by a campaign cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanceledMessage {
    pub message_id: String,
    pub change: MessageChange,
    pub campaign: CampaignLink,
}

/// A read-only view of one message's projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageProjection {
    pub message_id: String,
    pub status: MessageStatus,
    pub status_at: Timestamp,
    pub error_code: u32,
    pub campaign_id: Option<String>,
    pub segments: u16,
    pub channel: Channel,
    /// The carrier's raw reports and the delivered segments.
    pub receipts: ReceiptHistory,
}

/// A campaign cancellation the fold has applied.
#[derive(Debug, Clone)]
struct Cancellation {
    event_id: String,
    at: Timestamp,
}

/// The message fold of one partition.
#[derive(Debug, Default)]
pub struct MessageFold {
    messages: MessageTable,
    /// Every message id once; `MessageState::id_offset` addresses it.
    ids: IdArena,
    campaign_ids: Vec<String>,
    campaign_index: HashMap<String, u32>,
    cancellations: HashMap<u32, Cancellation>,
    /// Receipt details of the messages that have any.
    receipts: ReceiptBook,
    /// Retention bookkeeping: the event-time watermark, retired keys and
    /// the arena bytes of evicted ids.
    retention: crate::retention::RetentionState,
}

impl MessageFold {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the number of messages in the live state.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Returns the campaign id behind a [`CampaignLink::campaign`] index.
    pub fn campaign_id(&self, campaign: u32) -> &str {
        &self.campaign_ids[campaign as usize]
    }

    /// Returns the id of the cancellation event that cancels a campaign's
    /// messages, if the campaign is cancelled.
    pub fn cancellation_event_id(&self, campaign: u32) -> Option<&str> {
        self.cancellations.get(&campaign).map(|c| c.event_id.as_str())
    }

    /// Returns the bytes the live state occupies on the heap: the message
    /// table, the id arena and the campaign tables.
    pub fn heap_bytes(&self) -> usize {
        let campaign_strings: usize = self.campaign_ids.iter().map(|id| id.capacity() * 2).sum();
        self.messages.allocation_size()
            + self.ids.allocation_size()
            + self.campaign_ids.capacity() * std::mem::size_of::<String>()
            + self.campaign_index.allocation_size()
            + campaign_strings
            + self.cancellations.allocation_size()
            + self.receipts.heap_bytes()
    }

    /// Applies one message event.
    ///
    /// Returns the changes it caused, or a [`Reject`] when the event
    /// contradicts what is known of the message or is an SMPP receipt that
    /// was not read; a rejected event changes nothing.
    pub fn apply(&mut self, event: &MessageEvent) -> Result<Applied, Reject> {
        if matches!(event.kind, MessageEventKind::SmppReceipt { .. }) {
            return Err(Reject::ReceiptNotRead { message_id: event.message_id.clone() });
        }
        let status = event.kind.status();
        let at = event.occurred_at.as_millis();
        let attributes = event.kind.attributes();
        let key = MessageKey::of(&event.message_id);

        let Some(state) = self.messages.get(&key).copied() else {
            self.retention.check_unknown(key, event)?;
            self.retention.observe(at);
            return self.insert(key, event, attributes);
        };
        self.retention.observe(at);

        // Check every contradiction before changing anything.
        let current = state.status();
        if current.direction() != status.direction() {
            return Err(direction_conflict(&event.message_id, status, current));
        }
        let claimed_campaign = attributes.and_then(|a| a.campaign_id.as_deref());
        if let (Some(claimed), true) = (claimed_campaign, state.campaign != NO_CAMPAIGN) {
            let known = &self.campaign_ids[state.campaign as usize];
            if known != claimed {
                return Err(Reject::CampaignConflict {
                    message_id: event.message_id.clone(),
                    known: known.clone(),
                    claimed: claimed.to_owned(),
                });
            }
        }

        let mut next = state;
        let mut linked = false;
        if let Some(attributes) = attributes {
            if next.campaign == NO_CAMPAIGN {
                if let Some(campaign_id) = &attributes.campaign_id {
                    next.campaign = self.intern_campaign(campaign_id);
                    linked = true;
                }
            }
            if attributes.channel == Channel::Mms {
                next.flags |= FLAG_MMS;
            }
        }
        next.segments = next.segments.max(event.kind.segments_hint());

        let (status, report) = self.report_of(key, event);
        let mut applied = Applied::default();
        if status.rank() > state.status {
            next.status = status.rank();
            next.status_at = report.at;
            next.error_code = report.error_code;
            self.receipts.set_status_report(key, report.report);
            applied.change = Some(MessageChange {
                previous: Some(current),
                status,
                at: Timestamp::from_millis(report.at),
                error_code: report.error_code,
            });
        } else if status.rank() == state.status {
            // The same status reported again: keep the earliest report, so
            // the result does not depend on arrival order.
            let current_report = Report {
                at: state.status_at,
                error_code: state.error_code,
                report: self.receipts.status_report(&key),
            };
            if self.receipts.is_before(report, current_report) {
                next.status_at = report.at;
                next.error_code = report.error_code;
                self.receipts.set_status_report(key, report.report);
            }
        }

        applied.canceled = self.cancel_if_campaign_cancelled(&mut next);
        let segments_grew = next.segments != state.segments;
        let moved = applied.change.is_some() || applied.canceled.is_some();
        if next.campaign != NO_CAMPAIGN && (moved || linked || segments_grew) {
            applied.campaign = Some(link(&next, Some(&state)));
        }
        self.messages.insert(key, next);
        Ok(applied)
    }

    /// Applies a campaign cancellation: cancels the campaign's messages that
    /// are still accepted, scheduled or queued, and every one that shows up
    /// later at one of those stages. Applying it again changes nothing.
    pub fn cancel_campaign(
        &mut self,
        campaign_id: &str,
        event_id: &str,
        at: Timestamp,
    ) -> Vec<CanceledMessage> {
        let campaign = self.intern_campaign(campaign_id);
        if self.cancellations.contains_key(&campaign) {
            return Vec::new();
        }
        self.cancellations.insert(campaign, Cancellation { event_id: event_id.to_owned(), at });

        let mut canceled = Vec::new();
        for state in self.messages.values_mut() {
            if state.campaign != campaign || !state.status().is_cancelable() {
                continue;
            }
            let previous = state.status();
            let before = *state;
            cancel(state, at);
            canceled.push(CanceledMessage {
                message_id: self.ids.get(state.id_offset).to_owned(),
                change: MessageChange {
                    previous: Some(previous),
                    status: MessageStatus::Canceled,
                    at,
                    error_code: 0,
                },
                campaign: link(state, Some(&before)),
            });
        }
        canceled
    }

    /// Puts a message back into the live state exactly as `projection`
    /// describes it, replacing what the fold had. Restoring from a changelog
    /// uses it; it emits no change.
    pub fn restore(&mut self, projection: &MessageProjection) -> Result<(), Reject> {
        let key = MessageKey::of(&projection.message_id);
        let id_offset = match self.messages.get(&key) {
            Some(state) => state.id_offset,
            None => self.push_id(&projection.message_id)?,
        };
        let campaign = match &projection.campaign_id {
            Some(campaign_id) => self.intern_campaign(campaign_id),
            None => NO_CAMPAIGN,
        };
        let state = MessageState {
            status_at: projection.status_at.as_millis(),
            campaign,
            error_code: projection.error_code,
            id_offset,
            segments: projection.segments,
            status: projection.status.rank(),
            flags: if projection.channel == Channel::Mms { FLAG_MMS } else { 0 },
        };
        self.messages.insert(key, state);
        self.receipts.restore(key, &projection.receipts);
        self.retention.observe(projection.status_at.as_millis());
        Ok(())
    }

    /// Records a campaign cancellation without cancelling anything: the
    /// restored messages already carry its effect.
    pub fn restore_cancellation(&mut self, campaign_id: &str, event_id: &str, at: Timestamp) {
        let campaign = self.intern_campaign(campaign_id);
        self.cancellations.insert(campaign, Cancellation { event_id: event_id.to_owned(), at });
    }

    /// Returns the projection of one message, if the fold has seen it.
    pub fn get(&self, message_id: &str) -> Option<MessageProjection> {
        let key = MessageKey::of(message_id);
        let state = self.messages.get(&key)?;
        Some(self.project(&key, state))
    }

    /// Returns every message's projection, in no particular order.
    pub fn projections(&self) -> impl Iterator<Item = MessageProjection> + '_ {
        self.messages.iter().map(|(key, state)| self.project(key, state))
    }

    fn insert(
        &mut self,
        key: MessageKey,
        event: &MessageEvent,
        attributes: Option<&MessageAttributes>,
    ) -> Result<Applied, Reject> {
        let id_offset = self.push_id(&event.message_id)?;

        let campaign = match attributes.and_then(|a| a.campaign_id.as_deref()) {
            Some(campaign_id) => self.intern_campaign(campaign_id),
            None => NO_CAMPAIGN,
        };
        let (status, report) = self.report_of(key, event);
        self.receipts.set_status_report(key, report.report);
        let mut state = MessageState {
            status_at: report.at,
            campaign,
            error_code: report.error_code,
            id_offset,
            segments: event.kind.segments_hint(),
            status: status.rank(),
            flags: if attributes.is_some_and(|a| a.channel == Channel::Mms) { FLAG_MMS } else { 0 },
        };

        let change = MessageChange {
            previous: None,
            status,
            at: Timestamp::from_millis(report.at),
            error_code: report.error_code,
        };
        let mut applied = Applied { change: Some(change), ..Applied::default() };
        applied.canceled = self.cancel_if_campaign_cancelled(&mut state);
        if state.campaign != NO_CAMPAIGN {
            applied.campaign = Some(link(&state, None));
        }
        self.messages.insert(key, state);
        Ok(applied)
    }

    /// Returns the status an event reports and its report, recording what
    /// a receipt adds to the message's receipt details. A segment receipt
    /// that completes its message reports `Delivered`.
    fn report_of(&mut self, key: MessageKey, event: &MessageEvent) -> (MessageStatus, Report) {
        let at = event.occurred_at.as_millis();
        let error_code = event.kind.error_code();
        let MessageEventKind::DeliveryReceipt { outcome, carrier, segment, .. } = &event.kind else {
            return (event.kind.status(), Report { at, error_code, report: NO_REPORT });
        };
        let report = Report { at, error_code, report: self.receipts.intern(carrier.as_ref()) };
        match (outcome, segment) {
            (ReceiptOutcome::Delivered, Some(segment)) if segment.count > 1 => {
                match self.receipts.deliver_segment(key, *segment, report) {
                    Some(completion) => (MessageStatus::Delivered, completion),
                    None => (MessageStatus::Sent, report),
                }
            }
            (ReceiptOutcome::Intermediate | ReceiptOutcome::Unknown, _) => {
                self.receipts.offer_progress(key, *outcome, at, report.report);
                (MessageStatus::Sent, report)
            }
            _ => (event.kind.status(), report),
        }
    }

    /// Appends a message id to the arena and returns its offset.
    fn push_id(&mut self, message_id: &str) -> Result<u32, Reject> {
        let id = message_id.as_bytes();
        if id.len() > MAX_MESSAGE_ID_LEN {
            return Err(Reject::MessageIdTooLong { len: id.len(), max: MAX_MESSAGE_ID_LEN });
        }
        // NOTE: the arena is addressed with u32 offsets, so one partition's
        // fold stores at most 4 GiB of ids (about 100 million messages).
        self.ids.push(message_id).ok_or(Reject::MessageIdTooLong { len: id.len(), max: 0 })
    }

    fn cancel_if_campaign_cancelled(&self, state: &mut MessageState) -> Option<MessageChange> {
        if state.campaign == NO_CAMPAIGN || !state.status().is_cancelable() {
            return None;
        }
        let cancellation = self.cancellations.get(&state.campaign)?;
        let previous = state.status();
        cancel(state, cancellation.at);
        Some(MessageChange {
            previous: Some(previous),
            status: MessageStatus::Canceled,
            at: cancellation.at,
            error_code: 0,
        })
    }

    fn intern_campaign(&mut self, campaign_id: &str) -> u32 {
        if let Some(&index) = self.campaign_index.get(campaign_id) {
            return index;
        }
        let index = self.campaign_ids.len() as u32;
        self.campaign_ids.push(campaign_id.to_owned());
        self.campaign_index.insert(campaign_id.to_owned(), index);
        index
    }

    fn project(&self, key: &MessageKey, state: &MessageState) -> MessageProjection {
        MessageProjection {
            message_id: self.ids.get(state.id_offset).to_owned(),
            status: state.status(),
            status_at: Timestamp::from_millis(state.status_at),
            error_code: state.error_code,
            campaign_id: (state.campaign != NO_CAMPAIGN)
                .then(|| self.campaign_ids[state.campaign as usize].clone()),
            segments: state.segments,
            channel: if state.flags & FLAG_MMS != 0 { Channel::Mms } else { Channel::Sms },
            receipts: self.receipts.history(key),
        }
    }
}

fn cancel(state: &mut MessageState, at: Timestamp) {
    state.status = MessageStatus::Canceled.rank();
    state.status_at = at.as_millis();
    state.error_code = 0;
}

/// Returns the link of `state`, a message with a campaign. `before` is the
/// message's state before the change, `None` for a new message.
fn link(state: &MessageState, before: Option<&MessageState>) -> CampaignLink {
    CampaignLink {
        campaign: state.campaign,
        status: state.status(),
        segments: state.segments,
        at: Timestamp::from_millis(state.status_at),
        // A message with a campaign had a link sent for it when it got the
        // campaign, and for every change since.
        previous: before.filter(|before| before.campaign != NO_CAMPAIGN).map(|before| (before.status(), before.segments)),
    }
}

fn direction_conflict(message_id: &str, status: MessageStatus, current: MessageStatus) -> Reject {
    let name = |direction| match direction {
        Direction::Outbound => "outbound",
        Direction::Inbound => "inbound",
    };
    Reject::DirectionConflict {
        message_id: message_id.to_owned(),
        status: status.as_str(),
        event: name(status.direction()),
        state: name(current.direction()),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod receipt_tests;
