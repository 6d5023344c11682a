//! SMPP delivery receipts for smsfold, with no IO.
//!
//! A carrier connected over SMPP reports on a message with a `deliver_sm`
//! whose short message text follows the SMPP 3.4 appendix B convention
//! (`id:… sub:… dlvrd:… submit date:… done date:… stat:… err:… text:…`)
//! and whose optional TLVs may repeat those facts. This crate:
//!
//! - parses the text tolerantly, borrowing from it ([`parse_receipt_text`]);
//! - reads the receipt TLVs ([`ReceiptTlvs`]);
//! - combines both into a [`Receipt`], trusting the TLVs where they differ,
//!   and reads a receipt event's SMPP form ([`read_smpp_receipt`]);
//! - maps the receipt state to an [`Outcome`] through a configurable
//!   [`StateTable`];
//! - turns carrier ids into keys that match across hexadecimal and decimal
//!   spellings ([`carrier_id_keys`]);
//! - joins receipts that name only a carrier id to the sent messages that
//!   recorded it ([`CarrierJoin`], with the keys of [`receipt_join_key`] and
//!   [`link_join_keys`]).
//!
//! Errors are [`ReceiptError`]s, each with a dead-letter reason.

#![forbid(unsafe_code)]

mod carrier_id;
mod date;
mod error;
mod join;
mod link_arena;
mod link_data;
mod link_record;
mod link_table;
mod packed_text;
mod reading;
mod receipt;
mod state;
mod table;
mod text;
mod tlv;

pub use carrier_id::{carrier_id_keys, CarrierKey, CarrierKeys};
pub use error::{ReceiptError, StateTableError, MAX_QUOTED_BYTES};
pub use join::{
    carrier_spelling, link_join_keys, receipt_join_key, CarrierJoin, Joined, Link, LinkAdded, MatchRule, Pending,
};
pub use link_data::LinkData;
pub use link_record::StoredLink;
pub use reading::{read_smpp_receipt, ReceiptReading};
pub use receipt::Receipt;
pub use state::{outcome_of_message_state, MessageState, Outcome, UnknownOutcome};
pub use table::StateTable;
pub use text::{parse_receipt_text, ReceiptText};
pub use tlv::{NetworkErrorCode, ReceiptTlvs, TAG_MESSAGE_STATE, TAG_NETWORK_ERROR_CODE, TAG_RECEIPTED_MESSAGE_ID};
