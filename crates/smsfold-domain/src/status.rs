//! Message and campaign statuses and the order in which they may follow
//! each other.
//!
//! Both folds keep, for each message or campaign, the highest-ranked status
//! seen so far. Because "the maximum of a set" ignores order and repetition,
//! the status a message ends in does not depend on the order or duplication
//! of its events.

use std::fmt;
use std::str::FromStr;

/// Whether a message goes out to a handset or comes in from one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outbound,
    Inbound,
}

/// The status of one message.
///
/// The discriminant is the rank: a message only ever moves to a status of a
/// higher rank within its direction. Outbound ranks follow the send path
/// (accepted, scheduled, queued, sending, sent) and then the final outcomes,
/// ordered by how far the message is known to have got:
///
/// - `Canceled` ranks lowest: the message never left the platform.
/// - `Failed` beats `Canceled`: a send was attempted.
/// - `Undelivered` beats `Failed`: a carrier took the message, so it was sent
///   and is charged.
/// - `Delivered` beats everything: the carrier or handset confirmed it.
///
/// So when conflicting final outcomes arrive for one message, in any order,
/// the message ends in the one of highest rank, and the change stream may
/// show one correction from a lower final outcome to a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageStatus {
    Accepted = 1,
    Scheduled = 2,
    Queued = 3,
    Sending = 4,
    Sent = 5,
    Canceled = 6,
    Failed = 7,
    Undelivered = 8,
    Delivered = 9,
    Receiving = 10,
    Received = 11,
}

impl MessageStatus {
    /// Every status, in rank order.
    pub const ALL: [MessageStatus; 11] = [
        MessageStatus::Accepted,
        MessageStatus::Scheduled,
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Canceled,
        MessageStatus::Failed,
        MessageStatus::Undelivered,
        MessageStatus::Delivered,
        MessageStatus::Receiving,
        MessageStatus::Received,
    ];

    /// Returns the status's rank (1 to 11); 0 is left for "no status".
    pub const fn rank(self) -> u8 {
        self as u8
    }

    /// Returns the status of a rank, or `None` for 0 or a rank above 11.
    pub const fn from_rank(rank: u8) -> Option<Self> {
        if rank == 0 || rank as usize > Self::ALL.len() {
            None
        } else {
            Some(Self::ALL[rank as usize - 1])
        }
    }

    /// Returns a zero-based index into per-status arrays.
    pub const fn index(self) -> usize {
        self as usize - 1
    }

    pub const fn direction(self) -> Direction {
        match self {
            MessageStatus::Receiving | MessageStatus::Received => Direction::Inbound,
            _ => Direction::Outbound,
        }
    }

    /// Returns true for the outcomes that end an outbound message, and for
    /// `Received`, which ends an inbound one.
    pub const fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Canceled
                | MessageStatus::Failed
                | MessageStatus::Undelivered
                | MessageStatus::Delivered
                | MessageStatus::Received
        )
    }

    /// Returns true once a carrier has taken the message: `Sent` or a final
    /// outcome other than `Canceled` and `Failed`. Such messages are charged.
    pub const fn is_billable(self) -> bool {
        matches!(self, MessageStatus::Sent | MessageStatus::Undelivered | MessageStatus::Delivered)
    }

    /// Returns true when a campaign can count the message as handled:
    /// sent or in a final state.
    pub const fn is_settled(self) -> bool {
        matches!(self, MessageStatus::Sent) || self.is_final()
    }

    /// Returns true while a campaign cancellation still cancels the message:
    /// it has not been handed towards a carrier yet.
    pub const fn is_cancelable(self) -> bool {
        matches!(self, MessageStatus::Accepted | MessageStatus::Scheduled | MessageStatus::Queued)
    }

    /// Returns the lowercase name used on the wire and in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Accepted => "accepted",
            MessageStatus::Scheduled => "scheduled",
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Canceled => "canceled",
            MessageStatus::Failed => "failed",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Receiving => "receiving",
            MessageStatus::Received => "received",
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MessageStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// The status of a campaign.
///
/// Ranked like message statuses: Draft, Scheduled, Sending, and then one of
/// the two final statuses, Completed and Cancelled. A campaign in a final
/// status stays there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum CampaignStatus {
    Draft = 1,
    Scheduled = 2,
    Sending = 3,
    Completed = 4,
    Cancelled = 5,
}

impl CampaignStatus {
    /// Every status, in rank order.
    pub const ALL: [CampaignStatus; 5] = [
        CampaignStatus::Draft,
        CampaignStatus::Scheduled,
        CampaignStatus::Sending,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
    ];

    pub const fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }

    /// Returns the name used on the wire and in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CampaignStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CampaignStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A status name that is not one of the known statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_round_trip() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::from_rank(status.rank()), Some(status));
            assert_eq!(status.as_str().parse::<MessageStatus>(), Ok(status));
        }
        assert_eq!(MessageStatus::from_rank(0), None);
        assert_eq!(MessageStatus::from_rank(12), None);
    }

    #[test]
    fn final_outcomes_rank_above_sent() {
        for status in [
            MessageStatus::Canceled,
            MessageStatus::Failed,
            MessageStatus::Undelivered,
            MessageStatus::Delivered,
        ] {
            assert!(status > MessageStatus::Sent, "{status}");
            assert!(status.is_final());
        }
        assert!(MessageStatus::Delivered > MessageStatus::Undelivered);
        assert!(MessageStatus::Undelivered > MessageStatus::Failed);
        assert!(MessageStatus::Failed > MessageStatus::Canceled);
    }
}
