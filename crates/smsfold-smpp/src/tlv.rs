//! The optional parameters (TLVs) of a `deliver_sm` that carry the facts of
//! a delivery receipt, and a reader for their wire form.
//!
//! SMPP 3.4 encodes each TLV as a 2-byte tag, a 2-byte value length and the
//! value, big-endian. Three tags matter for a receipt:
//! `receipted_message_id` (0x001E, a NUL-terminated string),
//! `message_state` (0x0427, one byte) and `network_error_code` (0x0423,
//! three bytes: the network type and a 2-byte error code). When they are
//! present they are more reliable than the receipt text, so
//! [`Receipt`](crate::Receipt) prefers them.
//!
//! [`ReceiptTlvs::parse`] borrows the id from its input and skips every
//! other tag. It never reads past the end of its input.

use crate::error::ReceiptError;

/// The tag of `receipted_message_id`.
pub const TAG_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
/// The tag of `message_state`.
pub const TAG_MESSAGE_STATE: u16 = 0x0427;
/// The tag of `network_error_code`.
pub const TAG_NETWORK_ERROR_CODE: u16 = 0x0423;

/// The receipt TLVs of one `deliver_sm`. Each is `None` when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiptTlvs<'a> {
    /// The carrier's id of the message the receipt is for, without its
    /// terminating NUL.
    pub receipted_message_id: Option<&'a str>,
    /// The SMPP message state; see [`MessageState`](crate::MessageState).
    pub message_state: Option<u8>,
    pub network_error_code: Option<NetworkErrorCode>,
}

/// The value of `network_error_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetworkErrorCode {
    /// The network type that `error_code` belongs to, such as 3 for GSM.
    pub network_type: u8,
    pub error_code: u16,
}

impl NetworkErrorCode {
    /// Reads the three bytes of the TLV value: the network type, then the
    /// error code, big-endian.
    pub const fn from_bytes(bytes: [u8; 3]) -> Self {
        NetworkErrorCode { network_type: bytes[0], error_code: u16::from_be_bytes([bytes[1], bytes[2]]) }
    }

    /// Returns the three bytes of the TLV value.
    pub const fn to_bytes(self) -> [u8; 3] {
        let [high, low] = self.error_code.to_be_bytes();
        [self.network_type, high, low]
    }
}

impl<'a> ReceiptTlvs<'a> {
    /// Reads the receipt TLVs from the optional parameters of a
    /// `deliver_sm`: the bytes after its mandatory fields.
    ///
    /// The id may lack its terminating NUL, and bytes after the first NUL
    /// are ignored. An empty id counts as absent. Other tags are skipped.
    ///
    /// # Errors
    ///
    /// [`ReceiptError::TruncatedTlvs`] when the input ends inside a TLV, and
    /// [`ReceiptError::InvalidTlv`] when `message_state` is not 1 byte long,
    /// `network_error_code` is not 3 bytes long, the id is not UTF-8, or one
    /// of the three tags occurs twice.
    pub fn parse(optional_parameters: &'a [u8]) -> Result<Self, ReceiptError> {
        let mut tlvs = ReceiptTlvs::default();
        let mut seen = [false; 3];
        let mut offset = 0;

        while offset < optional_parameters.len() {
            let rest = &optional_parameters[offset..];
            let truncated = ReceiptError::TruncatedTlvs { offset, remaining: rest.len() };
            if rest.len() < 4 {
                return Err(truncated);
            }
            let tag = u16::from_be_bytes([rest[0], rest[1]]);
            let length = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            let Some(value) = rest.get(4..4 + length) else {
                return Err(truncated);
            };
            offset += 4 + length;

            let slot = match tag {
                TAG_RECEIPTED_MESSAGE_ID => 0,
                TAG_MESSAGE_STATE => 1,
                TAG_NETWORK_ERROR_CODE => 2,
                _ => continue,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(invalid(tag, "the tag occurs twice"));
            }
            match tag {
                TAG_RECEIPTED_MESSAGE_ID => tlvs.receipted_message_id = read_message_id(value)?,
                TAG_MESSAGE_STATE => match *value {
                    [state] => tlvs.message_state = Some(state),
                    _ => return Err(invalid(tag, "the value is not 1 byte long")),
                },
                _ => match *value {
                    [network_type, high, low] => {
                        tlvs.network_error_code = Some(NetworkErrorCode::from_bytes([network_type, high, low]))
                    }
                    _ => return Err(invalid(tag, "the value is not 3 bytes long")),
                },
            }
        }
        Ok(tlvs)
    }

    /// Appends the TLVs that are set to `buf` in their wire form. The
    /// inverse of [`parse`](Self::parse), for tests and tools that build
    /// receipts.
    ///
    /// The id gets its terminating NUL when it is at most 65534 bytes long.
    /// A longer id is written without it, cut to 65535 bytes at a character
    /// boundary. An id that contains a NUL reads back only up to that NUL.
    pub fn encode(&self, buf: &mut Vec<u8>) {
        if let Some(id) = self.receipted_message_id {
            let max = usize::from(u16::MAX);
            let value = if id.len() < max {
                [id.as_bytes(), &[0]].concat()
            } else {
                let mut end = max;
                while !id.is_char_boundary(end) {
                    end -= 1;
                }
                id.as_bytes()[..end].to_vec()
            };
            put_tlv(buf, TAG_RECEIPTED_MESSAGE_ID, &value);
        }
        if let Some(state) = self.message_state {
            put_tlv(buf, TAG_MESSAGE_STATE, &[state]);
        }
        if let Some(code) = self.network_error_code {
            put_tlv(buf, TAG_NETWORK_ERROR_CODE, &code.to_bytes());
        }
    }
}

fn put_tlv(buf: &mut Vec<u8>, tag: u16, value: &[u8]) {
    // Callers pass values of at most u16::MAX bytes.
    let length = u16::try_from(value.len()).unwrap_or(u16::MAX);
    buf.extend_from_slice(&tag.to_be_bytes());
    buf.extend_from_slice(&length.to_be_bytes());
    buf.extend_from_slice(&value[..usize::from(length)]);
}

/// Reads a C-Octet String id up to its first NUL, or all of it without one.
fn read_message_id(value: &[u8]) -> Result<Option<&str>, ReceiptError> {
    let end = value.iter().position(|&byte| byte == 0).unwrap_or(value.len());
    let id = std::str::from_utf8(&value[..end])
        .map_err(|_| invalid(TAG_RECEIPTED_MESSAGE_ID, "the id is not valid UTF-8"))?;
    Ok(Some(id).filter(|id| !id.is_empty()))
}

fn invalid(tag: u16, detail: &'static str) -> ReceiptError {
    let name = match tag {
        TAG_RECEIPTED_MESSAGE_ID => "receipted_message_id",
        TAG_MESSAGE_STATE => "message_state",
        _ => "network_error_code",
    };
    ReceiptError::InvalidTlv { tag, name, detail }
}
