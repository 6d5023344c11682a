//! The checks both formats share for the carrier's side of a message: the
//! carrier ids of a sent event, and a delivery receipt that carries either
//! a decided outcome or the receipt in SMPP form.

use smsfold_domain::{MessageEventKind, NetworkErrorCode, ReceiptOutcome, SmppReceipt, Timestamp, MAX_CARRIER_ID_LEN};

use crate::error::DecodeError;

/// The fields of a delivery receipt event, as either format gives them.
#[derive(Debug, Default)]
pub(super) struct ReceiptFields {
    /// The decided outcome, already checked to be delivered or undelivered.
    pub outcome: Option<ReceiptOutcome>,
    pub error_code: u32,
    pub done_at: Option<Timestamp>,
    pub receipt_text: Option<String>,
    pub receipted_message_id: Option<String>,
    pub message_state: Option<u8>,
    pub network_error_code: Option<NetworkErrorCode>,
}

impl ReceiptFields {
    /// Returns true when any field of the SMPP form is set.
    pub fn is_smpp(&self) -> bool {
        self.receipt_text.is_some()
            || self.receipted_message_id.is_some()
            || self.message_state.is_some()
            || self.network_error_code.is_some()
    }

    /// Builds the event kind: an SMPP receipt, or a receipt with its decided
    /// outcome. Exactly one of the two forms must be given.
    pub fn into_kind(self) -> Result<MessageEventKind, DecodeError> {
        if let Some(id) = &self.receipted_message_id {
            check_length("receipted_message_id", id)?;
        }
        match (self.is_smpp(), self.outcome) {
            (true, Some(_)) => Err(DecodeError::invalid(
                "outcome",
                "is set together with the receipt in SMPP form (receipt_text, receipted_message_id, \
                 message_state or network_error_code); give one of the two",
            )),
            (true, None) => Ok(MessageEventKind::SmppReceipt {
                receipt: SmppReceipt {
                    text: self.receipt_text,
                    receipted_message_id: self.receipted_message_id,
                    message_state: self.message_state,
                    network_error_code: self.network_error_code,
                },
                error_code: self.error_code,
                done_at: self.done_at,
            }),
            (false, Some(outcome)) => Ok(MessageEventKind::DeliveryReceipt {
                outcome,
                error_code: self.error_code,
                done_at: self.done_at,
                carrier: None,
                segment: None,
            }),
            (false, None) => Err(DecodeError::MissingField("outcome")),
        }
    }
}

/// Builds a sent event's kind from its carrier id and its segments' ids.
///
/// The segments' ids, when given, are the message's carrier ids, and
/// `carrier_message_id` must then be empty or the first of them.
pub(super) fn sent_kind(carrier_message_id: Option<String>, segment_ids: Vec<String>) -> Result<MessageEventKind, DecodeError> {
    let carrier_message_id = carrier_message_id.filter(|id| !id.is_empty());
    if let Some(id) = &carrier_message_id {
        check_length("carrier_message_id", id)?;
    }
    if segment_ids.is_empty() {
        return Ok(MessageEventKind::Sent { carrier_message_ids: carrier_message_id.into_iter().collect() });
    }

    const FIELD: &str = "segment_carrier_message_ids";
    if segment_ids.len() > usize::from(u16::MAX) {
        return Err(DecodeError::invalid(FIELD, format!("lists {} ids; the maximum is 65535", segment_ids.len())));
    }
    for (position, id) in segment_ids.iter().enumerate() {
        if id.trim().is_empty() {
            return Err(DecodeError::invalid(FIELD, format!("id {position} is empty")));
        }
        check_length(FIELD, id)?;
    }
    if let Some(id) = carrier_message_id.filter(|id| *id != segment_ids[0]) {
        return Err(DecodeError::invalid(
            "carrier_message_id",
            format!("is {id:?}, but the first segment's id is {:?}; leave it empty or make it the first", segment_ids[0]),
        ));
    }
    Ok(MessageEventKind::Sent { carrier_message_ids: segment_ids })
}

fn check_length(field: &'static str, id: &str) -> Result<(), DecodeError> {
    if id.len() > MAX_CARRIER_ID_LEN {
        return Err(DecodeError::invalid(
            field,
            format!("a carrier message id is {} bytes long; the maximum is {MAX_CARRIER_ID_LEN}", id.len()),
        ));
    }
    Ok(())
}

/// Reads a protobuf `uint32` that must fit in a `u8`.
pub(super) fn byte(field: &'static str, value: u32) -> Result<u8, DecodeError> {
    u8::try_from(value).map_err(|_| DecodeError::invalid(field, format!("{value} is above 255")))
}

/// Reads a protobuf `uint32` that must fit in a `u16`.
pub(super) fn word(field: &'static str, value: u32) -> Result<u16, DecodeError> {
    u16::try_from(value).map_err(|_| DecodeError::invalid(field, format!("{value} is above 65535")))
}
