//! Fixed-size keys for message ids, so that the live state does not hold one
//! heap string per message.

use xxhash_rust::xxh3::xxh3_128;

/// The 128-bit XXH3 hash of a message id.
///
/// Two distinct ids share a key with a probability of about n²/2¹²⁹ for n ids
/// (below 10⁻²⁰ for a billion ids), so the folds treat the key as the id.
/// It is stored as two `u64` halves to keep an alignment of 8 and so a
/// 40-byte map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey([u64; 2]);

impl MessageKey {
    /// Hashes a message id into its key.
    pub fn of(message_id: &str) -> Self {
        let hash = xxh3_128(message_id.as_bytes());
        MessageKey([hash as u64, (hash >> 64) as u64])
    }

    /// Returns the key's 16 bytes, little-endian halves.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.0[0].to_le_bytes());
        bytes[8..].copy_from_slice(&self.0[1].to_le_bytes());
        bytes
    }

    /// Rebuilds a key from [`MessageKey::to_bytes`].
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut low = [0; 8];
        let mut high = [0; 8];
        low.copy_from_slice(&bytes[..8]);
        high.copy_from_slice(&bytes[8..]);
        MessageKey([u64::from_le_bytes(low), u64::from_le_bytes(high)])
    }

    /// Returns the key as one 128-bit number.
    pub fn as_u128(self) -> u128 {
        (u128::from(self.0[1]) << 64) | u128::from(self.0[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_and_distinct() {
        assert_eq!(MessageKey::of("SM1"), MessageKey::of("SM1"));
        assert_ne!(MessageKey::of("SM1"), MessageKey::of("SM2"));
        assert_eq!(std::mem::size_of::<MessageKey>(), 16);
        assert_eq!(std::mem::align_of::<MessageKey>(), 8);
    }
}
