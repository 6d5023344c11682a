//! Receipt outcomes and the SMPP `message_state` values.
//!
//! A receipt state either ends a message (as delivered or undelivered) or is
//! intermediate. [`Outcome::Unknown`] is an intermediate outcome of its own,
//! so that receipts in an unknown or unrecognized state can be counted.
//! The mapping of `message_state` numbers is fixed by SMPP (3.4 for 1 to 8,
//! 5.0 adds 0 and 9) and cannot be configured.

use std::fmt;
use std::str::FromStr;

use smsfold_domain::ReceiptOutcome;

/// The effect of a receipt state on its message: final or not, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The carrier or handset confirmed delivery, so the message ends
    /// delivered.
    Delivered,
    /// The message will not be delivered (undeliverable, expired, deleted,
    /// rejected), so it ends undelivered.
    Undelivered,
    /// The message is on its way (accepted, en route, buffered, scheduled);
    /// a later receipt is expected.
    Intermediate,
    /// The state is `UNKNOWN`, `SKIPPED`, missing or not in the table. Like
    /// an intermediate state it ends nothing.
    Unknown,
}

impl Outcome {
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 4] = [Outcome::Delivered, Outcome::Undelivered, Outcome::Intermediate, Outcome::Unknown];

    /// Returns true for the outcomes that end a message.
    pub const fn is_final(self) -> bool {
        matches!(self, Outcome::Delivered | Outcome::Undelivered)
    }

    /// Returns the domain's receipt outcome for a final outcome, and `None`
    /// for an intermediate or unknown one.
    pub const fn receipt_outcome(self) -> Option<ReceiptOutcome> {
        match self {
            Outcome::Delivered => Some(ReceiptOutcome::Delivered),
            Outcome::Undelivered => Some(ReceiptOutcome::Undelivered),
            Outcome::Intermediate | Outcome::Unknown => None,
        }
    }

    /// Returns the lowercase name used in state table configuration and as a
    /// metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Undelivered => "undelivered",
            Outcome::Intermediate => "intermediate",
            Outcome::Unknown => "unknown",
        }
    }
}

impl From<Outcome> for ReceiptOutcome {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Delivered => ReceiptOutcome::Delivered,
            Outcome::Undelivered => ReceiptOutcome::Undelivered,
            Outcome::Intermediate => ReceiptOutcome::Intermediate,
            Outcome::Unknown => ReceiptOutcome::Unknown,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    /// Parses a lowercase outcome name, as [`Outcome::as_str`] writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL.into_iter().find(|outcome| outcome.as_str() == s).ok_or(UnknownOutcome)
    }
}

/// A string that is not an outcome name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not one of delivered, undelivered, intermediate or unknown")]
pub struct UnknownOutcome;

/// The value of the `message_state` TLV (tag 0x0427).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageState {
    /// Waiting for its send time (SMPP 5.0).
    Scheduled = 0,
    Enroute = 1,
    Delivered = 2,
    /// The validity period passed before delivery.
    Expired = 3,
    /// Deleted by the carrier.
    Deleted = 4,
    Undeliverable = 5,
    /// Read by an operator on behalf of the subscriber. Not final in
    /// practice: a handset receipt may follow.
    Accepted = 6,
    Unknown = 7,
    Rejected = 8,
    /// Skipped (SMPP 5.0).
    Skipped = 9,
}

impl MessageState {
    /// Every state, in the order of its number.
    pub const ALL: [MessageState; 10] = [
        MessageState::Scheduled,
        MessageState::Enroute,
        MessageState::Delivered,
        MessageState::Expired,
        MessageState::Deleted,
        MessageState::Undeliverable,
        MessageState::Accepted,
        MessageState::Unknown,
        MessageState::Rejected,
        MessageState::Skipped,
    ];

    /// Returns the state of a `message_state` number, or `None` above 9.
    pub const fn from_u8(value: u8) -> Option<Self> {
        if (value as usize) < Self::ALL.len() {
            Some(Self::ALL[value as usize])
        } else {
            None
        }
    }

    /// Returns the SMPP name of the state, such as `UNDELIVERABLE`.
    pub const fn name(self) -> &'static str {
        match self {
            MessageState::Scheduled => "SCHEDULED",
            MessageState::Enroute => "ENROUTE",
            MessageState::Delivered => "DELIVERED",
            MessageState::Expired => "EXPIRED",
            MessageState::Deleted => "DELETED",
            MessageState::Undeliverable => "UNDELIVERABLE",
            MessageState::Accepted => "ACCEPTED",
            MessageState::Unknown => "UNKNOWN",
            MessageState::Rejected => "REJECTED",
            MessageState::Skipped => "SKIPPED",
        }
    }

    /// Returns what the state means for its message.
    pub const fn outcome(self) -> Outcome {
        match self {
            MessageState::Delivered => Outcome::Delivered,
            MessageState::Expired
            | MessageState::Deleted
            | MessageState::Undeliverable
            | MessageState::Rejected => Outcome::Undelivered,
            MessageState::Scheduled | MessageState::Enroute | MessageState::Accepted => Outcome::Intermediate,
            MessageState::Unknown | MessageState::Skipped => Outcome::Unknown,
        }
    }
}

/// Returns the outcome of a `message_state` number: that of its
/// [`MessageState`], and [`Outcome::Unknown`] for a number above 9.
pub const fn outcome_of_message_state(value: u8) -> Outcome {
    match MessageState::from_u8(value) {
        Some(state) => state.outcome(),
        None => Outcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_state_numbers_round_trip() {
        for (number, state) in MessageState::ALL.into_iter().enumerate() {
            assert_eq!(state as usize, number, "{}", state.name());
            assert_eq!(MessageState::from_u8(number as u8), Some(state), "{}", state.name());
        }
    }

    #[test]
    fn message_state_above_9_is_unknown() {
        assert_eq!(MessageState::from_u8(10), None);
        assert_eq!(outcome_of_message_state(10), Outcome::Unknown);
        assert_eq!(outcome_of_message_state(255), Outcome::Unknown);
    }

    #[test]
    fn message_state_outcomes() {
        let expected = [
            (0, Outcome::Intermediate),
            (1, Outcome::Intermediate),
            (2, Outcome::Delivered),
            (3, Outcome::Undelivered),
            (4, Outcome::Undelivered),
            (5, Outcome::Undelivered),
            (6, Outcome::Intermediate),
            (7, Outcome::Unknown),
            (8, Outcome::Undelivered),
            (9, Outcome::Unknown),
        ];

        for (number, outcome) in expected {
            assert_eq!(outcome_of_message_state(number), outcome, "message_state {number}");
        }
    }

    #[test]
    fn outcome_names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(outcome.as_str().parse::<Outcome>(), Ok(outcome));
        }
        assert_eq!("Delivered".parse::<Outcome>(), Err(UnknownOutcome));
    }

    #[test]
    fn only_delivered_and_undelivered_are_final() {
        for outcome in Outcome::ALL {
            let is_final = matches!(outcome, Outcome::Delivered | Outcome::Undelivered);
            assert_eq!(outcome.is_final(), is_final, "{outcome}");
            assert_eq!(outcome.receipt_outcome().is_some(), is_final, "{outcome}");
        }
    }
}
