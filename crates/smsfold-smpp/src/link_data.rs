//! The caller's data on a carrier link, as bytes: the [`LinkData`] trait,
//! its implementations for common types, and the LEB128 numbers the link
//! records use.
//!
//! A partition can hold a link per live sent message, so the join keeps
//! each link's data as bytes in its arena, with no allocation of its own,
//! and reads a value back when a receipt matches.

use crate::packed_text::{read_packed, write_packed};

/// Data that a [`CarrierJoin`](crate::CarrierJoin) stores with each link,
/// written as bytes.
///
/// [`read_from`](LinkData::read_from) must return a value equal to the one
/// that wrote the bytes, because the join returns values it has read back.
/// The join stores one copy of the bytes for two links of one sent event
/// whose data wrote the same bytes.
pub trait LinkData: Sized {
    /// Appends the value's bytes to `out`.
    fn write_to(&self, out: &mut Vec<u8>);

    /// Reads a value that [`write_to`](LinkData::write_to) wrote at the start
    /// of `bytes`, and moves `bytes` past it.
    ///
    /// # Panics
    ///
    /// May panic on bytes that `write_to` did not write.
    fn read_from(bytes: &mut &[u8]) -> Self;
}

impl LinkData for () {
    fn write_to(&self, _out: &mut Vec<u8>) {}

    fn read_from(_bytes: &mut &[u8]) -> Self {}
}

/// Writes unsigned integers as LEB128 numbers, so small values take one byte.
macro_rules! unsigned_link_data {
    ($($type:ty),*) => {$(
        impl LinkData for $type {
            fn write_to(&self, out: &mut Vec<u8>) {
                push_varint(out, *self as u64);
            }

            fn read_from(bytes: &mut &[u8]) -> Self {
                <$type>::try_from(read_varint(bytes)).expect("the stored number was written from this type")
            }
        }
    )*};
}

unsigned_link_data!(u16, u32, u64, usize);

/// Writes signed integers zigzag-encoded as LEB128 numbers, so values near
/// zero of either sign take one byte.
macro_rules! signed_link_data {
    ($($type:ty),*) => {$(
        impl LinkData for $type {
            fn write_to(&self, out: &mut Vec<u8>) {
                push_signed(out, i64::from(*self));
            }

            fn read_from(bytes: &mut &[u8]) -> Self {
                <$type>::try_from(read_signed(bytes)).expect("the stored number was written from this type")
            }
        }
    )*};
}

signed_link_data!(i32, i64);

/// Writes the text packed: a run of four or more hexadecimal digits takes
/// half a byte per digit.
impl LinkData for String {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_packed(self, out);
    }

    fn read_from(bytes: &mut &[u8]) -> Self {
        read_packed(bytes).into_owned()
    }
}

/// Writes the text packed, as for `String`.
impl LinkData for Box<str> {
    fn write_to(&self, out: &mut Vec<u8>) {
        write_packed(self, out);
    }

    fn read_from(bytes: &mut &[u8]) -> Self {
        read_packed(bytes).into_owned().into_boxed_str()
    }
}

impl<A: LinkData, B: LinkData> LinkData for (A, B) {
    fn write_to(&self, out: &mut Vec<u8>) {
        self.0.write_to(out);
        self.1.write_to(out);
    }

    fn read_from(bytes: &mut &[u8]) -> Self {
        let first = A::read_from(bytes);
        let second = B::read_from(bytes);
        (first, second)
    }
}

/// Returns how many bytes [`push_varint`] writes for `value`.
pub(crate) fn varint_size(value: u64) -> usize {
    let bits = u64::BITS - value.leading_zeros();
    (bits as usize).div_ceil(7).max(1)
}

/// Appends `value` as an unsigned LEB128 number: seven bits per byte, low
/// bits first, the top bit set on every byte but the last.
pub(crate) fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Reads an unsigned LEB128 number that [`push_varint`] wrote at the start of
/// `bytes`, and moves `bytes` past it.
pub(crate) fn read_varint(bytes: &mut &[u8]) -> u64 {
    let mut value = 0;
    let mut shift = 0;
    loop {
        let (&byte, rest) = bytes.split_first().expect("a stored number is complete");
        *bytes = rest;
        assert!(shift < u64::BITS, "a stored number has at most ten bytes");
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// Appends a length as [`push_varint`] does.
pub(crate) fn push_length(out: &mut Vec<u8>, length: usize) {
    push_varint(out, length as u64);
}

/// Reads a length that [`push_length`] wrote.
pub(crate) fn read_length(bytes: &mut &[u8]) -> usize {
    usize::try_from(read_varint(bytes)).expect("a stored length was written from a usize")
}

/// Appends `value` zigzag-encoded (0, -1, 1, -2, … as 0, 1, 2, 3, …) as an
/// unsigned LEB128 number.
pub(crate) fn push_signed(out: &mut Vec<u8>, value: i64) {
    push_varint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a number that [`push_signed`] wrote.
pub(crate) fn read_signed(bytes: &mut &[u8]) -> i64 {
    let zigzag = read_varint(bytes);
    ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)
}

/// Takes the first `length` bytes off `bytes`.
pub(crate) fn take<'a>(bytes: &mut &'a [u8], length: usize) -> &'a [u8] {
    let (taken, rest) = bytes.split_at(length);
    *bytes = rest;
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: LinkData + PartialEq + std::fmt::Debug>(value: T) -> usize {
        let mut bytes = Vec::new();
        value.write_to(&mut bytes);
        bytes.push(0xee);

        let mut rest = &bytes[..];
        let read = T::read_from(&mut rest);

        assert_eq!(read, value);
        assert_eq!(rest, [0xee], "reading stops at the value's end");
        bytes.len() - 1
    }

    #[test]
    fn varint_size_matches_written_bytes() {
        for value in [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut bytes = Vec::new();
            push_varint(&mut bytes, value);

            assert_eq!(varint_size(value), bytes.len(), "{value}");
            assert_eq!(read_varint(&mut &bytes[..]), value);
        }
    }

    #[test]
    fn signed_numbers_round_trip() {
        for value in [0, 1, -1, 63, -64, 64, -65, 1_767_225_600_000, i64::MAX, i64::MIN] {
            let mut bytes = Vec::new();
            push_signed(&mut bytes, value);

            assert_eq!(read_signed(&mut &bytes[..]), value, "{value}");
        }
    }

    #[test]
    fn small_numbers_take_one_byte() {
        assert_eq!(round_trip(0u16), 1);
        assert_eq!(round_trip(127u32), 1);
        assert_eq!(round_trip(-64i32), 1);
        assert_eq!(round_trip(63i64), 1);
        assert_eq!(round_trip(5usize), 1);
    }

    #[test]
    fn integer_limits_round_trip() {
        round_trip(u16::MAX);
        round_trip(u32::MAX);
        round_trip(u64::MAX);
        round_trip(usize::MAX);
        round_trip(i32::MIN);
        round_trip(i32::MAX);
        round_trip(i64::MIN);
        round_trip(i64::MAX);
    }

    #[test]
    fn text_and_pairs_round_trip() {
        assert_eq!(round_trip(()), 0);
        round_trip(String::new());
        round_trip(String::from("m-16"));
        round_trip(Box::<str>::from("SM0123456789abcdef0123456789abcdef"));
        round_trip((String::from("m-a"), 7u16));
        round_trip(((String::from("Grüße"), -3i32), (u64::MAX, Box::<str>::from("ABCDEF0123"))));
    }

    #[test]
    #[should_panic(expected = "a stored number is complete")]
    fn truncated_number_panics() {
        read_varint(&mut &[0x80u8][..]);
    }
}
