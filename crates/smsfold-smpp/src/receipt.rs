//! One delivery receipt, combined from its text and its TLVs, with the
//! outcome its state maps to.
//!
//! Where a TLV and the text both give the carrier id, the state or the
//! error code, the TLV wins, because carriers fill the TLVs from their own
//! records and the text from a free-form template. The raw `stat` and `err`
//! text is kept in either case, so a projection can store what the carrier
//! wrote.

use smsfold_domain::{CarrierReport, ReceiptOutcome, Timestamp};

use crate::carrier_id::{carrier_id_keys, CarrierKeys};
use crate::error::ReceiptError;
use crate::state::{outcome_of_message_state, MessageState, Outcome};
use crate::table::StateTable;
use crate::text::{parse_receipt_text, ReceiptText};
use crate::tlv::{NetworkErrorCode, ReceiptTlvs};

/// A delivery receipt: what the carrier reported about one of its message
/// ids. Borrows its strings from the receipt text and the TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt<'a> {
    /// The carrier's message id: `receipted_message_id` when present, else
    /// the text's `id`. Match it with [`carrier_keys`](Self::carrier_keys).
    pub carrier_id: &'a str,
    /// The text's `id`, kept to detect a disagreement with the TLV.
    pub text_id: Option<&'a str>,
    /// The text's `stat`, as written.
    pub stat: Option<&'a str>,
    /// The `message_state` TLV.
    pub message_state: Option<u8>,
    /// The outcome of the receipt state: from `message_state` when present,
    /// else from `stat` through the [`StateTable`], else
    /// [`Outcome::Unknown`].
    pub outcome: Outcome,
    /// The text's `err`, as written.
    pub err: Option<&'a str>,
    /// The `network_error_code` TLV.
    pub network_error_code: Option<NetworkErrorCode>,
    /// The error code: that of `network_error_code` when present, else the
    /// value of `err`.
    pub error_code: Option<u32>,
    /// The text's `submit date`, read as UTC.
    pub submitted_at: Option<Timestamp>,
    /// The text's `done date`, read as UTC: when the message reached this
    /// state.
    pub done_at: Option<Timestamp>,
    /// The text's `sub`: messages (segments) submitted.
    pub submitted: Option<u16>,
    /// The text's `dlvrd`: messages (segments) delivered.
    pub delivered: Option<u16>,
}

impl<'a> Receipt<'a> {
    /// Parses a receipt's short message text and combines it with its TLVs.
    ///
    /// The text may be empty or contain no receipt fields when the TLVs
    /// carry the id. The outcome then comes from `message_state`, or is
    /// unknown.
    ///
    /// # Errors
    ///
    /// Any error of [`parse_receipt_text`] other than a text without id and
    /// stat, and [`ReceiptError::MissingId`] when neither the text nor the
    /// TLVs name the carrier id. Without TLVs, a text with neither id nor
    /// stat is [`ReceiptError::MissingIdAndStat`].
    pub fn read(short_message: &'a str, tlvs: &ReceiptTlvs<'a>, table: &StateTable) -> Result<Self, ReceiptError> {
        match parse_receipt_text(short_message) {
            Ok(text) => Receipt::combine(Some(&text), tlvs, table),
            Err(ReceiptError::MissingIdAndStat) if tlvs.receipted_message_id.is_some() => {
                Receipt::combine(None, tlvs, table)
            }
            Err(error) => Err(error),
        }
    }

    /// Combines a parsed receipt text, if any, with the receipt's TLVs.
    ///
    /// # Errors
    ///
    /// [`ReceiptError::MissingId`] when neither names the carrier id.
    pub fn combine(
        text: Option<&ReceiptText<'a>>,
        tlvs: &ReceiptTlvs<'a>,
        table: &StateTable,
    ) -> Result<Self, ReceiptError> {
        let text = text.copied().unwrap_or_default();
        let carrier_id = tlvs.receipted_message_id.or(text.id).ok_or(ReceiptError::MissingId)?;

        let outcome = match (tlvs.message_state, text.stat) {
            (Some(state), _) => outcome_of_message_state(state),
            (None, Some(stat)) => table.outcome_of_stat(stat),
            (None, None) => Outcome::Unknown,
        };
        let error_code = match tlvs.network_error_code {
            Some(code) => Some(u32::from(code.error_code)),
            None => text.error_code,
        };

        Ok(Receipt {
            carrier_id,
            text_id: text.id,
            stat: text.stat,
            message_state: tlvs.message_state,
            outcome,
            err: text.err,
            network_error_code: tlvs.network_error_code,
            error_code,
            submitted_at: text.submit_date,
            done_at: text.done_date,
            submitted: text.submitted,
            delivered: text.delivered,
        })
    }

    /// Returns the keys that match the carrier id to a sent event's
    /// `carrier_message_id`.
    pub fn carrier_keys(&self) -> CarrierKeys {
        carrier_id_keys(self.carrier_id)
    }

    /// Returns the domain outcome when the receipt ends its message, and
    /// `None` for an intermediate or unknown state.
    pub fn receipt_outcome(&self) -> Option<ReceiptOutcome> {
        self.outcome.receipt_outcome()
    }

    /// Returns the raw state and error code to keep on the message's
    /// projection. The state is the text's `stat`, or without one the SMPP
    /// name of `message_state` (`DELIVERED`, or the number for a state
    /// above 9). The error code is the text's `err`, or without one the code
    /// of `network_error_code` in decimal.
    pub fn carrier_report(&self) -> CarrierReport {
        let state_name = self.message_state.map(|state| match MessageState::from_u8(state) {
            Some(state) => state.name().to_owned(),
            None => state.to_string(),
        });
        let network_code = self.network_error_code.map(|code| code.error_code.to_string());
        CarrierReport::new(self.stat.or(state_name.as_deref()), self.err.or(network_code.as_deref()))
    }
}
