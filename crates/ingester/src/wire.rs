//! Zero-copy protobuf reading and writing for the ingest hot path.
//!
//! The generated prost types allocate a `Bytes` per label string and a `Vec` per series, and
//! routing used to re-encode everything into generated `ShardBatch`es; on a 2000-series push
//! that was most of the CPU time (allocator and reference counts, not parsing). The readers
//! here walk the wire format in place and hand out `&[u8]` slices of the input instead.
//!
//! Varints, keys, packed numbers and the skipping of unknown fields are prost's own runtime
//! functions (`prost::encoding`, the doc-hidden module its generated code calls), so these
//! readers accept and refuse exactly what the generated decoders do; the workspace pins the
//! prost version. Tests compare both on the same bytes.
use std::borrow::Cow;
use std::fmt;

pub(crate) use prost::encoding::WireType;
use prost::encoding::{
    check_wire_type, decode_key, decode_varint, encoded_len_varint, skip_field, DecodeContext,
};
use prost::DecodeError;

/// A malformed protobuf message.
#[derive(Debug)]
pub(crate) struct WireError(Cow<'static, str>);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl WireError {
    pub(crate) fn from_static(msg: &'static str) -> Self {
        WireError(Cow::Borrowed(msg))
    }
}

impl From<DecodeError> for WireError {
    fn from(e: DecodeError) -> Self {
        WireError(Cow::Owned(e.to_string()))
    }
}

pub(crate) type WireResult<T> = Result<T, WireError>;

/// Iterates over the fields of one message held in `buf`.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf }
    }

    /// The next field's number and wire type; `None` at the end of the message. The caller
    /// must then consume the field's value with one of the methods below.
    #[inline(always)]
    pub(crate) fn next_key(&mut self) -> WireResult<Option<(u32, WireType)>> {
        let Some((&b, rest)) = self.buf.split_first() else { return Ok(None) };
        // Fast path for one-byte keys (fields 1 to 15, all this module reads); anything
        // else, invalid keys (wire types 6 and 7) included, goes to prost.
        if (8..0x80).contains(&b) {
            let wire_type = match b & 7 {
                0 => Some(WireType::Varint),
                1 => Some(WireType::SixtyFourBit),
                2 => Some(WireType::LengthDelimited),
                3 => Some(WireType::StartGroup),
                4 => Some(WireType::EndGroup),
                5 => Some(WireType::ThirtyTwoBit),
                _ => None,
            };
            if let Some(wire_type) = wire_type {
                self.buf = rest;
                return Ok(Some((u32::from(b >> 3), wire_type)));
            }
        }
        Ok(Some(decode_key(&mut self.buf)?))
    }

    /// Bytes of the message not read yet.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether every byte of the message has been read.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// If the next field has exactly the one-byte `key` (a length-delimited field 1 to 15)
    /// and a one-byte length that fits, its contents; otherwise `None`, consuming nothing.
    /// A shortcut for the common shape of label strings: what it returns is what
    /// [`Fields::next_key`] and [`Fields::bytes`] would.
    #[inline(always)]
    pub(crate) fn short_bytes(&mut self, key: u8) -> Option<&'a [u8]> {
        debug_assert!(key & 7 == WireType::LengthDelimited as u8 && (8..0x80).contains(&key));
        match *self.buf {
            [k, len, ref rest @ ..] if k == key && len < 0x80 && usize::from(len) <= rest.len() => {
                let (value, rest) = rest.split_at(usize::from(len));
                self.buf = rest;
                Some(value)
            }
            _ => None,
        }
    }

    /// A varint; one-byte ones (most lengths) without a call.
    #[inline]
    fn varint(&mut self) -> WireResult<u64> {
        match self.buf.first() {
            Some(&b) if b < 0x80 => {
                self.buf = &self.buf[1..];
                Ok(u64::from(b))
            }
            _ => Ok(decode_varint(&mut self.buf)?),
        }
    }

    /// The contents of a length-delimited field (bytes, string, sub-message, packed numbers).
    #[inline]
    pub(crate) fn bytes(&mut self, wire_type: WireType) -> WireResult<&'a [u8]> {
        check_wire_type(WireType::LengthDelimited, wire_type)?;
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(WireError(Cow::Borrowed("buffer underflow")));
        }
        let (value, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok(value)
    }

    /// A `string` field: bytes that must be UTF-8, as prost requires.
    pub(crate) fn str(&mut self, wire_type: WireType) -> WireResult<&'a str> {
        std::str::from_utf8(self.bytes(wire_type)?).map_err(|_| {
            WireError(Cow::Borrowed("invalid string value: data is not UTF-8 encoded"))
        })
    }

    /// A `uint64` field (what prost's `uint64::merge` reads: the wire type checked, then a
    /// varint).
    #[inline]
    pub(crate) fn uint64(&mut self, wire_type: WireType) -> WireResult<u64> {
        check_wire_type(WireType::Varint, wire_type)?;
        self.varint()
    }

    /// An `int64` field (a varint taken as two's complement, as prost does).
    #[inline]
    pub(crate) fn int64(&mut self, wire_type: WireType) -> WireResult<i64> {
        Ok(self.uint64(wire_type)? as i64)
    }

    /// A `double` field.
    pub(crate) fn double(&mut self, wire_type: WireType) -> WireResult<f64> {
        let mut v = 0.0;
        prost::encoding::double::merge(wire_type, &mut v, &mut self.buf, DecodeContext::default())?;
        Ok(v)
    }

    /// One occurrence of a `repeated int64` field, packed or not, appended to `out`.
    pub(crate) fn repeated_int64(
        &mut self,
        wire_type: WireType,
        out: &mut Vec<i64>,
    ) -> WireResult<()> {
        if wire_type == WireType::LengthDelimited {
            // Packed, the proto3 form: read in place. A varint that runs past the field's end
            // is an error, as it is for prost.
            let mut packed = self.bytes(wire_type)?;
            while let Some((&b, rest)) = packed.split_first() {
                if b < 0x80 {
                    out.push(i64::from(b));
                    packed = rest;
                } else {
                    out.push(decode_varint(&mut packed)? as i64);
                }
            }
            return Ok(());
        }
        let ctx = DecodeContext::default();
        prost::encoding::int64::merge_repeated(wire_type, out, &mut self.buf, ctx)?;
        Ok(())
    }

    /// One occurrence of a `repeated double` field, packed or not, appended to `out`.
    pub(crate) fn repeated_double(
        &mut self,
        wire_type: WireType,
        out: &mut Vec<f64>,
    ) -> WireResult<()> {
        if wire_type == WireType::LengthDelimited {
            let packed = self.bytes(wire_type)?;
            let values = packed.chunks_exact(8);
            if !values.remainder().is_empty() {
                return Err(WireError(Cow::Borrowed("packed doubles: buffer underflow")));
            }
            out.extend(values.map(|b| {
                let mut le = [0u8; 8];
                le.copy_from_slice(b);
                f64::from_le_bytes(le)
            }));
            return Ok(());
        }
        let ctx = DecodeContext::default();
        prost::encoding::double::merge_repeated(wire_type, out, &mut self.buf, ctx)?;
        Ok(())
    }

    /// Skips a field this reader does not use.
    pub(crate) fn skip(&mut self, field: u32, wire_type: WireType) -> WireResult<()> {
        skip_field(wire_type, field, &mut self.buf, DecodeContext::default())?;
        Ok(())
    }
}

/// Appends a field key.
#[inline]
pub(crate) fn put_key(field: u32, wire_type: WireType, out: &mut Vec<u8>) {
    put_varint(u64::from(field << 3 | wire_type as u32), out);
}

/// Appends a varint. (prost's `encode_varint` is generic over `BufMut` and was not inlined
/// here; this is the same LEB128 encoding, checked against it in the tests.)
#[inline]
pub(crate) fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes taken by `v` as a varint.
#[inline]
pub(crate) fn varint_len(v: u64) -> usize {
    encoded_len_varint(v)
}

/// Appends a length-delimited field (`bytes` or `string`).
#[inline]
pub(crate) fn put_bytes(field: u32, v: &[u8], out: &mut Vec<u8>) {
    if field < 16 && v.len() < 0x80 {
        // One-byte key and length, the common case for label strings.
        let key = (field << 3) as u8 | WireType::LengthDelimited as u8;
        out.extend_from_slice(&[key, v.len() as u8]);
    } else {
        put_key(field, WireType::LengthDelimited, out);
        put_varint(v.len() as u64, out);
    }
    out.extend_from_slice(v);
}

/// Bytes taken by a length-delimited field of `len` bytes with a one-byte key (field < 16).
pub(crate) fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_keys_match_prost() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX]
        {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_varint(v, &mut ours);
            prost::encoding::encode_varint(v, &mut theirs);
            assert_eq!(ours, theirs, "{v}");
            assert_eq!(varint_len(v), ours.len());
        }
        for (field, wt) in
            [(1, WireType::Varint), (2, WireType::LengthDelimited), (16, WireType::SixtyFourBit)]
        {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            put_key(field, wt, &mut ours);
            prost::encoding::encode_key(field, wt, &mut theirs);
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn fields_read_in_place() {
        // {1: "ab", 2: 300, 5: fixed32 (skipped), 3: 1.5}
        let mut msg = vec![0x0a, 2, b'a', b'b', 0x10, 0xac, 0x02, 0x2d, 0, 0, 0, 0, 0x19];
        msg.extend_from_slice(&1.5f64.to_le_bytes());
        let mut f = Fields::new(&msg);
        let (n, wt) = f.next_key().unwrap().unwrap();
        assert_eq!((n, f.bytes(wt).unwrap()), (1, &b"ab"[..]));
        let (n, wt) = f.next_key().unwrap().unwrap();
        assert_eq!((n, f.uint64(wt).unwrap()), (2, 300));
        let (n, wt) = f.next_key().unwrap().unwrap();
        f.skip(n, wt).unwrap();
        let (n, wt) = f.next_key().unwrap().unwrap();
        assert_eq!((n, f.double(wt).unwrap()), (3, 1.5));
        assert!(f.next_key().unwrap().is_none());
        // Keys prost refuses are refused here too: field 0, wire types 6 and 7, over u32.
        for bad in [&[0x02u8, 0][..], &[0x0e, 0], &[0x0f, 0], &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]]
        {
            assert!(Fields::new(bad).next_key().is_err(), "{bad:?}");
        }
        let (mut long, mut theirs) = (vec![0u8; 300], Vec::new());
        let mut ours = Vec::new();
        long[0] = 1;
        put_bytes(2, &long, &mut ours);
        prost::encoding::bytes::encode(2, &long, &mut theirs);
        assert_eq!(ours, theirs);
        // Truncated and mistyped fields are errors.
        assert!(Fields::new(&[0x0a, 5, b'a']).bytes(WireType::LengthDelimited).is_err());
        let mut f = Fields::new(&[0x08, 1]);
        let (_, wt) = f.next_key().unwrap().unwrap();
        assert!(f.bytes(wt).is_err());
        assert!(Fields::new(&[1]).uint64(WireType::LengthDelimited).is_err());
        // Negative int64s take ten bytes; too long a varint is refused, as by prost.
        for v in [-1i64, i64::MIN, 5] {
            let mut buf = Vec::new();
            prost::encoding::encode_varint(v as u64, &mut buf);
            assert_eq!(Fields::new(&buf).int64(WireType::Varint).unwrap(), v);
        }
        assert!(Fields::new(&[0xff; 11]).uint64(WireType::Varint).is_err());
    }
}
