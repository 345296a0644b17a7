//! Block ids: ULIDs (48-bit millisecond time, 80 bits of entropy, Crockford base32).
//!
//! Blocks cut from a head take their entropy from what they hold (tenant, shard, range), so a
//! flush repeated after a crash writes the same id and overwrites rather than duplicates.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(u128);

impl BlockId {
    /// A ULID with time part `ms` (clamped to 48 bits) and entropy from a hash of `key`.
    pub fn derived(ms: i64, key: &[u8]) -> BlockId {
        let time = (ms.max(0) as u128) & ((1 << 48) - 1);
        let entropy = xxhash_rust::xxh3::xxh3_128(key) & ((1 << 80) - 1);
        BlockId(time << 80 | entropy)
    }

    pub fn parse(s: &str) -> Option<BlockId> {
        if s.len() != 26 {
            return None;
        }
        let mut v: u128 = 0;
        for (i, c) in s.bytes().enumerate() {
            let d = ALPHABET.iter().position(|&a| a == c.to_ascii_uppercase())? as u128;
            // The first character carries only 3 bits (26 × 5 = 130).
            if i == 0 && d > 7 {
                return None;
            }
            v = v << 5 | d;
        }
        Some(BlockId(v))
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; 26];
        let mut v = self.0;
        for c in out.iter_mut().rev() {
            *c = ALPHABET[(v & 31) as usize];
            v >>= 5;
        }
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for BlockId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BlockId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BlockId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid ULID {s:?}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ulid_text_round_trips_and_sorts_by_time() {
        let a = BlockId::derived(1_700_000_000_000, b"x");
        let b = BlockId::derived(1_700_000_000_001, b"a");
        let s = a.to_string();
        assert_eq!(s.len(), 26);
        assert_eq!(BlockId::parse(&s), Some(a));
        assert!(a.to_string() < b.to_string());
        assert_eq!(BlockId::derived(5, b"k"), BlockId::derived(5, b"k"));
        assert_ne!(BlockId::derived(5, b"k"), BlockId::derived(5, b"l"));
        assert_eq!(
            BlockId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap().to_string(),
            "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        );
        assert!(BlockId::parse("81ARZ3NDEKTSV4RRFFQ69G5FAV").is_none());
        assert!(BlockId::parse("01ARZ3NDEKTSV4RRFFQ69G5FA").is_none());
        assert!(BlockId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAU").is_none());
    }
}
