//! Prometheus TSDB XOR ("Gorilla") chunk encoding, bit for bit.
//!
//! Layout (see `tsdb-chunks-format.md`): a 2-byte big-endian sample count; the first timestamp as a
//! zig-zag varint and the first value as 64 raw bits; the second timestamp as a uvarint delta and
//! its value XOR-encoded; every later sample as a delta-of-delta timestamp in a 1/16/20/24/68-bit
//! bucket followed by an XOR-encoded value; zero padding to a byte boundary.
//!
//! Bits are written most significant first. Timestamp arithmetic wraps, as it does in Go, so any
//! sequence of timestamps round-trips; the head only ever appends strictly increasing ones.
//!
//! ```
//! use strata_head::chunk::{XorChunk, XorIter};
//! let mut c = XorChunk::new();
//! c.append(1000, 1.0).unwrap();
//! c.append(1015, 2.5).unwrap();
//! let got: Vec<(i64, f64)> = XorIter::new(c.bytes()).collect();
//! assert_eq!(got, vec![(1000, 1.0), (1015, 2.5)]);
//! ```

use crate::{Error, Result};

/// The largest number of samples one chunk can hold (its count is a `u16`).
pub const MAX_SAMPLES: usize = u16::MAX as usize;

/// An XOR chunk being appended to: its bytes plus the appender's running state.
///
/// `bytes()` is always a complete, decodable chunk; `into_bytes()` hands it over for storage.
#[derive(Debug, Clone)]
pub struct XorChunk {
    bytes: Vec<u8>,
    /// Last timestamp appended.
    t: i64,
    /// Last timestamp delta.
    t_delta: i64,
    /// Bits of the last value appended.
    v: u64,
    /// Leading zeros of the current XOR window; `0xff` before the first window is set.
    leading: u8,
    /// Trailing zeros of the current XOR window.
    trailing: u8,
    /// Unused low bits in the last byte of `bytes` (0..=7).
    free_bits: u8,
}

impl Default for XorChunk {
    fn default() -> Self {
        XorChunk::new()
    }
}

impl XorChunk {
    /// The first and last bytes written, if any: reading them brings the chunk's header (its
    /// sample count) and its tail, what an append touches, into the cache.
    #[inline]
    pub(crate) fn touch(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(0) ^ self.bytes.last().copied().unwrap_or(0)
    }

    /// An empty chunk; it allocates on the first append.
    pub fn new() -> Self {
        XorChunk {
            bytes: Vec::new(),
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0xff,
            trailing: 0,
            free_bits: 0,
        }
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        num_samples(&self.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The encoded chunk (empty when no sample was appended).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Timestamp of the last sample appended (meaningless when empty).
    pub fn last_t(&self) -> i64 {
        self.t
    }

    /// Bits of the last value appended (meaningless when empty).
    pub fn last_value_bits(&self) -> u64 {
        self.v
    }

    /// Heap bytes held by the chunk.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives up the encoded bytes, trimmed to size, and leaves the chunk empty.
    pub fn take_bytes(&mut self) -> Box<[u8]> {
        let bytes = std::mem::take(&mut self.bytes).into_boxed_slice();
        *self = XorChunk::new();
        bytes
    }

    /// The encoded bytes, trimmed to size.
    pub fn into_bytes(self) -> Box<[u8]> {
        self.bytes.into_boxed_slice()
    }

    /// Appends one sample. Timestamps should increase; others still round-trip.
    pub fn append(&mut self, t: i64, v: f64) -> Result<()> {
        let n = self.num_samples();
        if n >= MAX_SAMPLES {
            return Err(Error::ChunkFull);
        }
        let vbits = v.to_bits();
        match n {
            0 => {
                self.bytes.reserve(32);
                self.bytes.extend_from_slice(&[0, 0]);
                put_varint(&mut self.bytes, t);
                self.bytes.extend_from_slice(&vbits.to_be_bytes());
                self.free_bits = 0;
            }
            1 => {
                let delta = t.wrapping_sub(self.t);
                // Sample 0 ends on a byte boundary, so the uvarint is byte-aligned too.
                put_uvarint(&mut self.bytes, delta as u64);
                self.write_xor(vbits);
                self.t_delta = delta;
            }
            _ => {
                let delta = t.wrapping_sub(self.t);
                let dod = delta.wrapping_sub(self.t_delta);
                if dod == 0 {
                    self.write_bits(0, 1);
                } else if bit_range(dod, 14) {
                    self.write_bits(0b10, 2);
                    self.write_bits(dod as u64, 14);
                } else if bit_range(dod, 17) {
                    self.write_bits(0b110, 3);
                    self.write_bits(dod as u64, 17);
                } else if bit_range(dod, 20) {
                    self.write_bits(0b1110, 4);
                    self.write_bits(dod as u64, 20);
                } else {
                    self.write_bits(0b1111, 4);
                    self.write_bits(dod as u64, 64);
                }
                self.write_xor(vbits);
                self.t_delta = delta;
            }
        }
        self.t = t;
        self.v = vbits;
        let count = (n as u16 + 1).to_be_bytes();
        self.bytes[0] = count[0];
        self.bytes[1] = count[1];
        Ok(())
    }

    fn write_xor(&mut self, vbits: u64) {
        let delta = vbits ^ self.v;
        if delta == 0 {
            self.write_bits(0, 1);
            return;
        }
        // Clamped so it fits in 5 bits.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != 0xff && leading >= self.leading && trailing >= self.trailing {
            self.write_bits(0b10, 2);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.write_bits(delta >> self.trailing, sig);
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.write_bits(0b11, 2);
        self.write_bits(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        // 64 significant bits do not fit in 6 bits; it is written as 0 and read back as 64.
        self.write_bits(u64::from(sig & 63), 6);
        self.write_bits(delta >> trailing, sig);
    }

    /// Writes the low `n` bits of `v` (n <= 64), most significant first.
    fn write_bits(&mut self, v: u64, mut n: u32) {
        while n > 0 {
            if self.free_bits == 0 {
                self.bytes.push(0);
                self.free_bits = 8;
            }
            let take = n.min(u32::from(self.free_bits));
            // The `take` bits of `v` just below bit `n`.
            let chunk = ((v >> (n - take)) & ((1u64 << take) - 1)) as u8;
            let shift = u32::from(self.free_bits) - take;
            if let Some(last) = self.bytes.last_mut() {
                *last |= chunk << shift;
            }
            self.free_bits -= take as u8;
            n -= take;
        }
    }
}

/// The sample count stored in a chunk's header (0 for fewer than 2 bytes).
pub fn num_samples(chunk: &[u8]) -> usize {
    match chunk {
        [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
        _ => 0,
    }
}

/// The first sample's timestamp, read from the chunk's header; `None` for an empty or
/// malformed chunk.
pub fn first_timestamp(chunk: &[u8]) -> Option<i64> {
    if num_samples(chunk) == 0 {
        return None;
    }
    BitReader { data: chunk, pos: 16 }.read_varint()
}

/// Whether `x` fits the `nbits`-bit delta-of-delta bucket, exactly as Prometheus decides it:
/// `-(2^(n-1) - 1) <= x <= 2^(n-1)`.
fn bit_range(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Appends `x` as an unsigned LEB128 varint (Go's `binary.PutUvarint`).
pub fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Appends `x` zig-zag encoded as a varint (Go's `binary.PutVarint`).
pub fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

/// Reads bits most significant first; `None` past the end.
struct BitReader<'a> {
    data: &'a [u8],
    /// Bit position from the start of `data`.
    pos: usize,
}

impl BitReader<'_> {
    fn read_bits(&mut self, mut n: u32) -> Option<u64> {
        if self.pos + n as usize > self.data.len() * 8 {
            return None;
        }
        let mut out = 0u64;
        while n > 0 {
            let byte = self.data[self.pos / 8];
            let avail = 8 - (self.pos % 8) as u32;
            let take = n.min(avail);
            let bits = (u64::from(byte) >> (avail - take)) & ((1u64 << take) - 1);
            out = (out << take) | bits;
            self.pos += take as usize;
            n -= take;
        }
        Some(out)
    }

    fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b == 1)
    }

    fn read_uvarint(&mut self) -> Option<u64> {
        let mut x = 0u64;
        for i in 0..10 {
            let b = self.read_bits(8)?;
            if i == 9 && b > 1 {
                return None; // overflows 64 bits
            }
            x |= (b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Some(x);
            }
        }
        None
    }

    fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

/// Decodes an XOR chunk's samples in order. Stops early on malformed input; check
/// [`XorIter::err`] after iterating chunks that came from outside.
pub struct XorIter<'a> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    err: Option<Error>,
}

impl<'a> XorIter<'a> {
    pub fn new(chunk: &'a [u8]) -> Self {
        XorIter {
            r: BitReader { data: chunk, pos: 16 },
            total: num_samples(chunk),
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: 0,
            trailing: 0,
            err: None,
        }
    }

    /// Why iteration stopped before the header's sample count, if it did.
    pub fn err(&self) -> Option<&Error> {
        self.err.as_ref()
    }

    fn next_inner(&mut self) -> std::result::Result<(i64, f64), &'static str> {
        const EOF: &str = "unexpected end of chunk";
        match self.read {
            0 => {
                self.t = self.r.read_varint().ok_or("bad first timestamp")?;
                self.v = self.r.read_bits(64).ok_or(EOF)?;
            }
            1 => {
                let d = self.r.read_uvarint().ok_or("bad timestamp delta")?;
                self.t_delta = d as i64;
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
            _ => {
                let mut ones = 0;
                while ones < 4 && self.r.read_bit().ok_or(EOF)? {
                    ones += 1;
                }
                let size = [0, 14, 17, 20, 64][ones];
                let dod = if size == 0 {
                    0
                } else {
                    let bits = self.r.read_bits(size).ok_or(EOF)?;
                    if size < 64 && bits > 1 << (size - 1) {
                        bits.wrapping_sub(1 << size) as i64
                    } else {
                        bits as i64
                    }
                };
                self.t_delta = self.t_delta.wrapping_add(dod);
                self.t = self.t.wrapping_add(self.t_delta);
                self.read_value()?;
            }
        }
        self.read += 1;
        Ok((self.t, f64::from_bits(self.v)))
    }

    fn read_value(&mut self) -> std::result::Result<(), &'static str> {
        const EOF: &str = "unexpected end of chunk";
        if !self.r.read_bit().ok_or(EOF)? {
            return Ok(());
        }
        if self.r.read_bit().ok_or(EOF)? {
            let leading = self.r.read_bits(5).ok_or(EOF)? as u8;
            let mut sig = self.r.read_bits(6).ok_or(EOF)? as u8;
            if sig == 0 {
                sig = 64;
            }
            self.leading = leading;
            self.trailing = 64u8.checked_sub(leading + sig).ok_or("bad xor window")?;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.read_bits(sig).ok_or(EOF)?;
        // `sig` is 1..=64 and `trailing` = 64 - leading - sig < 64.
        self.v ^= bits << self.trailing;
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.read >= self.total || self.err.is_some() {
            return None;
        }
        match self.next_inner() {
            Ok(s) => Some(s),
            Err(msg) => {
                self.err = Some(Error::InvalidChunk(msg));
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.total.saturating_sub(self.read)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
