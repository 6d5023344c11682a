//! Errors from reading a delivery receipt and from building a state table.
//!
//! Every [`ReceiptError`] has a [`reason`](ReceiptError::reason): a fixed
//! snake_case string for a dead-letter reason header or a metric label. The
//! error messages quote at most [`MAX_QUOTED_BYTES`] of an input value.

/// The maximum number of bytes of an input value that an error message
/// repeats, so that a huge invalid field cannot make a huge error.
pub const MAX_QUOTED_BYTES: usize = 64;

/// A delivery receipt that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The text has neither an `id` nor a `stat` field.
    #[error("receipt text has neither an id nor a stat field, so it is not a delivery receipt")]
    MissingIdAndStat,
    /// Neither the text nor the `receipted_message_id` TLV names the carrier's
    /// message id, so the receipt cannot be matched to a message.
    #[error("receipt has no carrier message id: no id field in its text and no receipted_message_id TLV")]
    MissingId,
    /// A field occurs twice before the free `text` field.
    #[error("receipt field {field:?} occurs twice")]
    DuplicateField { field: &'static str },
    /// A `submit date` or `done date` that is not a valid date.
    #[error("receipt field {field:?} is {value:?}, not a valid date of the form YYMMDDhhmm or YYMMDDhhmmss")]
    InvalidDate { field: &'static str, value: String },
    /// A `sub`, `dlvrd` or `err` value that is not a decimal number in range.
    #[error("receipt field {field:?} is {value:?}, not a decimal number from 0 to {max}")]
    InvalidNumber { field: &'static str, value: String, max: u64 },
    /// A known TLV whose value has the wrong length or content, or occurs twice.
    #[error("receipt TLV {name} (tag {tag:#06x}) is invalid: {detail}")]
    InvalidTlv { tag: u16, name: &'static str, detail: &'static str },
    /// The carrier id is longer than an SMPP message id can be.
    #[error("receipt carrier id is {len} bytes long; the maximum is {max}")]
    IdTooLong { len: usize, max: usize },
    /// The optional parameters end in the middle of a TLV.
    #[error("receipt TLVs are truncated: {remaining} bytes at offset {offset} do not hold a whole TLV")]
    TruncatedTlvs { offset: usize, remaining: usize },
}

impl ReceiptError {
    /// Returns the low-cardinality reason used as a metric label and in the
    /// dead-letter reason header.
    pub fn reason(&self) -> &'static str {
        match self {
            ReceiptError::MissingIdAndStat => "receipt_missing_id_and_stat",
            ReceiptError::MissingId => "receipt_missing_id",
            ReceiptError::DuplicateField { .. } => "receipt_duplicate_field",
            ReceiptError::InvalidDate { .. } => "receipt_invalid_date",
            ReceiptError::InvalidNumber { .. } => "receipt_invalid_number",
            ReceiptError::InvalidTlv { .. } | ReceiptError::TruncatedTlvs { .. } => "receipt_invalid_tlv",
            ReceiptError::IdTooLong { .. } => "receipt_id_too_long",
        }
    }

    /// Every value [`reason`](Self::reason) can return.
    pub const REASONS: [&'static str; 7] = [
        "receipt_missing_id_and_stat",
        "receipt_missing_id",
        "receipt_duplicate_field",
        "receipt_invalid_date",
        "receipt_invalid_number",
        "receipt_invalid_tlv",
        "receipt_id_too_long",
    ];
}

/// An override for a [`StateTable`](crate::StateTable) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateTableError {
    /// The value is not an outcome name.
    #[error(
        "receipt state {state:?} maps to {value:?}, which is not one of \
         delivered, undelivered, intermediate or unknown"
    )]
    InvalidOutcome { state: String, value: String },
    /// The key could never equal a `stat` value of a receipt text.
    #[error("receipt state {state:?} is invalid: it must be non-empty and contain no whitespace or colon")]
    InvalidState { state: String },
    /// Two keys differ only in case.
    #[error("receipt state {state:?} occurs more than once (state names are case-insensitive)")]
    DuplicateState { state: String },
}

/// Copies at most [`MAX_QUOTED_BYTES`] of `value` for an error message,
/// cut at a character boundary.
pub(crate) fn quote(value: &str) -> String {
    if value.len() <= MAX_QUOTED_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_QUOTED_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_cuts_at_char_boundary() {
        // Byte 64 falls inside a two-byte "é".
        let value = format!("a{}", "é".repeat(MAX_QUOTED_BYTES));

        let quoted = quote(&value);

        assert_eq!(quoted.len(), MAX_QUOTED_BYTES - 1);
        assert!(value.starts_with(&quoted));
    }

    #[test]
    fn quote_keeps_short_value() {
        assert_eq!(quote("2403151261"), "2403151261");
    }
}
