//! Reading the SMPP form of a delivery receipt event into what the message
//! fold and the carrier join need: the carrier id, the outcome through the
//! state table, the error code, the done time and the raw report.

use smsfold_domain::{CarrierReport, ReceiptOutcome, SmppReceipt, Timestamp, MAX_CARRIER_ID_LEN};

use crate::error::ReceiptError;
use crate::receipt::Receipt;
use crate::table::StateTable;
use crate::tlv::{NetworkErrorCode, ReceiptTlvs};

/// A receipt event's SMPP form after reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptReading {
    /// The carrier's message id: the TLV's, else the text's.
    pub carrier_id: String,
    pub outcome: ReceiptOutcome,
    /// The receipt's error code, else the event's.
    pub error_code: u32,
    /// The receipt's done date, else the event's done time.
    pub done_at: Option<Timestamp>,
    /// The raw stat and err; see [`Receipt::carrier_report`].
    pub carrier: CarrierReport,
    /// True when the text's id names another id than the TLV, with no
    /// carrier key in common. The TLV's id is used.
    pub ids_disagree: bool,
}

/// Reads `receipt` with `table`. `error_code` and `done_at` are the event's
/// own fields, used when the receipt gives none.
///
/// # Errors
///
/// The errors of [`Receipt::read`], and [`ReceiptError::IdTooLong`] for a
/// carrier id longer than [`MAX_CARRIER_ID_LEN`] bytes.
pub fn read_smpp_receipt(
    receipt: &SmppReceipt,
    error_code: u32,
    done_at: Option<Timestamp>,
    table: &StateTable,
) -> Result<ReceiptReading, ReceiptError> {
    let tlvs = ReceiptTlvs {
        receipted_message_id: receipt.receipted_message_id.as_deref(),
        message_state: receipt.message_state,
        network_error_code: receipt
            .network_error_code
            .map(|code| NetworkErrorCode { network_type: code.network_type, error_code: code.error_code }),
    };
    let read = Receipt::read(receipt.text.as_deref().unwrap_or_default(), &tlvs, table)?;
    let carrier_id = read.carrier_id.trim_matches(|c: char| c.is_ascii_whitespace());
    if carrier_id.len() > MAX_CARRIER_ID_LEN {
        return Err(ReceiptError::IdTooLong { len: carrier_id.len(), max: MAX_CARRIER_ID_LEN });
    }
    let ids_disagree = read.text_id.is_some_and(|text_id| !read.carrier_keys().matches(&crate::carrier_id_keys(text_id)));
    Ok(ReceiptReading {
        carrier_id: carrier_id.to_owned(),
        outcome: read.outcome.into(),
        error_code: read.error_code.unwrap_or(error_code),
        done_at: read.done_at.or(done_at),
        carrier: read.carrier_report(),
        ids_disagree,
    })
}
