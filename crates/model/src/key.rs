//! Series keys: a label set in one canonical byte form, what the head stores per series, the
//! Raft log carries and the ingest path hashes and compares.
//!
//! The form is the remote-write 1.0 wire form of a series' labels: for each pair in name
//! order, a `prometheus.TimeSeries.labels` field (tag `0x0a`, varint length) holding a
//! `prometheus.Label` whose name (tag `0x0a`) and value (tag `0x12`) are both present, each a
//! varint length then the bytes. A request whose labels are already sorted and valid carries
//! its series' keys byte for byte, so the ingest path hashes and copies them in one piece, and
//! the head finds a series with one comparison of two byte strings.
//!
//! ```
//! use strata_model::{encode_key, key_pairs};
//! let mut key = Vec::new();
//! encode_key([(&b"__name__"[..], &b"up"[..]), (b"job", b"node")], &mut key);
//! let pairs: Vec<_> = key_pairs(&key).collect();
//! assert_eq!(pairs, vec![(&b"__name__"[..], &b"up"[..]), (&b"job"[..], &b"node"[..])]);
//! ```

const PAIR_TAG: u8 = 0x0a;
const NAME_TAG: u8 = 0x0a;
const VALUE_TAG: u8 = 0x12;

/// The hash of a series key, for routing and the head's series lookup (xxh3).
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

fn varint_len(v: usize) -> usize {
    let bits = usize::BITS - (v | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn put_varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends the key of `pairs` (which must already be in name order) to `out`.
pub fn encode_key<'a>(pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>, out: &mut Vec<u8>) {
    for (n, v) in pairs {
        let inner = 2 + varint_len(n.len()) + n.len() + varint_len(v.len()) + v.len();
        out.reserve(1 + varint_len(inner) + inner);
        out.push(PAIR_TAG);
        put_varint(inner, out);
        out.push(NAME_TAG);
        put_varint(n.len(), out);
        out.extend_from_slice(n);
        out.push(VALUE_TAG);
        put_varint(v.len(), out);
        out.extend_from_slice(v);
    }
}

/// The key of a [`crate::Labels`].
pub fn labels_key(labels: &crate::Labels) -> Vec<u8> {
    let mut key = Vec::new();
    encode_key(labels.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes())), &mut key);
    key
}

/// The (name, value) pairs of a key, in order. Stops at the first malformed byte; see
/// [`KeyPairs::rest`] and [`check_key`].
pub fn key_pairs(key: &[u8]) -> KeyPairs<'_> {
    KeyPairs { rest: key }
}

/// Iterator over the pairs of a series key.
#[derive(Debug, Clone)]
pub struct KeyPairs<'a> {
    rest: &'a [u8],
}

impl<'a> KeyPairs<'a> {
    /// The bytes not read yet: empty once a well-formed key has been read to its end.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// A varint at the start of `buf` (at most 5 bytes, so lengths fit in `u32`): value and size.
#[inline]
fn varint(buf: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, &b) in buf.iter().take(5).enumerate() {
        v |= usize::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

/// `tag`, a length and that many bytes at the start of `buf`: the bytes and what follows.
#[inline]
fn field(buf: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = buf.split_first()?;
    if t != tag {
        return None;
    }
    let (len, n) = varint(rest)?;
    let rest = rest.get(n..)?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

impl<'a> Iterator for KeyPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (label, rest) = field(self.rest, PAIR_TAG)?;
        let (name, after) = field(label, NAME_TAG)?;
        let (value, end) = field(after, VALUE_TAG)?;
        if !end.is_empty() {
            return None;
        }
        self.rest = rest;
        Some((name, value))
    }
}

/// Why a key is not one a series may have.
pub fn check_key(key: &[u8]) -> Result<(), &'static str> {
    let mut pairs = key_pairs(key);
    let mut prev: Option<&[u8]> = None;
    let mut any = false;
    for (n, v) in pairs.by_ref() {
        if n.is_empty() {
            return Err("empty label name");
        }
        if std::str::from_utf8(n).is_err() || std::str::from_utf8(v).is_err() {
            return Err("invalid UTF-8 in labels");
        }
        if prev.is_some_and(|p| p >= n) {
            return Err("label names not sorted and unique");
        }
        prev = Some(n);
        any = true;
    }
    if !pairs.rest().is_empty() {
        return Err("malformed label set");
    }
    if !any {
        return Err("empty label set");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_lengths() {
        for len in [0, 1, 100, 127, 128, 130, 300, 20_000] {
            let long = "v".repeat(len);
            let pairs: Vec<(&[u8], &[u8])> =
                vec![(b"__name__", b"up"), (b"a", long.as_bytes()), (long.as_bytes(), b"")];
            let mut key = Vec::new();
            encode_key(pairs.iter().copied(), &mut key);
            let mut it = key_pairs(&key);
            assert_eq!(it.by_ref().collect::<Vec<_>>(), pairs, "{len}");
            assert!(it.rest().is_empty());
        }
    }

    #[test]
    fn is_the_remote_write_form() {
        // `TimeSeries.labels` of {__name__="up", job="node"} as protobuf encodes it.
        let wire = [
            0x0a, 0x0e, 0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_', 0x12, 0x02,
            b'u', b'p', 0x0a, 0x0b, 0x0a, 0x03, b'j', b'o', b'b', 0x12, 0x04, b'n', b'o', b'd',
            b'e',
        ];
        let mut key = Vec::new();
        encode_key([(&b"__name__"[..], &b"up"[..]), (b"job", b"node")], &mut key);
        assert_eq!(key, wire);
        assert_eq!(key_hash(&key), xxhash_rust::xxh3::xxh3_64(&wire));
    }

    #[test]
    fn checks() {
        let key = |pairs: &[(&str, &str)]| {
            let mut k = Vec::new();
            encode_key(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), &mut k);
            k
        };
        assert_eq!(check_key(&key(&[("__name__", "up"), ("job", "a")])), Ok(()));
        assert_eq!(check_key(&[]), Err("empty label set"));
        assert_eq!(check_key(&key(&[("", "x")])), Err("empty label name"));
        assert_eq!(
            check_key(&key(&[("b", "x"), ("a", "y")])),
            Err("label names not sorted and unique")
        );
        assert_eq!(
            check_key(&key(&[("a", "x"), ("a", "y")])),
            Err("label names not sorted and unique")
        );
        let mut bad = key(&[("a", "x")]);
        bad.push(0x0a);
        assert_eq!(check_key(&bad), Err("malformed label set"));
        let mut cut = key(&[("a", "xyz")]);
        cut.pop();
        assert_eq!(check_key(&cut), Err("malformed label set"));
        let mut utf = key(&[("a", "x")]);
        let last = utf.len() - 1;
        utf[last] = 0xff;
        assert_eq!(check_key(&utf), Err("invalid UTF-8 in labels"));
    }
}
