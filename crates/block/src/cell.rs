//! The contents of one data cell: a series' samples in one data column's time span, as a
//! sequence of chunks, each `encoding:u8 uvarint(len) bytes`.
//!
//! Two encodings:
//! - `1`, XOR: Prometheus's chunk encoding, bit for bit (its `EncXOR` is also 1). Any value.
//! - `0x81`, scaled delta: for cells whose values are all decimals with at most
//!   [`MAX_DECIMALS`] digits after the point (integers, percentages, `0.5` steps, …), stored as
//!   integers `v·10^e` with delta-of-delta varints, timestamps likewise. Byte-aligned and mostly
//!   zeros for regular data, so the file's zstd compresses it far below XOR's bit stream. A
//!   value round-trips only if its bits come back identical (so -0.0, NaN and staleness markers
//!   always take XOR).
//!
//! [`Encoding::Auto`] writes the smaller of the two per cell.
use strata_head::chunk::{put_uvarint, put_varint, XorChunk, XorIter, MAX_SAMPLES};
use strata_model::Sample;

use crate::{Error, Result};

const ENC_XOR: u8 = 1;
const ENC_SCALED: u8 = 0x81;
/// Most decimal digits tried for the scaled encoding.
pub const MAX_DECIMALS: u32 = 6;
/// Integers beyond this are not exact in an f64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Which chunk encodings a block writer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Prometheus XOR chunks only.
    Xor,
    /// Per cell, the smaller of XOR and scaled delta.
    #[default]
    Auto,
}

/// Appends `samples` as chunks; returns the number of chunks.
pub(crate) fn encode(samples: &[Sample], enc: Encoding, out: &mut Vec<u8>) -> Result<u64> {
    let mut n = 0;
    for part in samples.chunks(MAX_SAMPLES) {
        let mut xor = XorChunk::new();
        for s in part {
            xor.append(s.t, s.v).map_err(|e| Error::Invalid(e.to_string()))?;
        }
        let xor = xor.bytes();
        let scaled = match enc {
            Encoding::Auto => encode_scaled(part),
            Encoding::Xor => None,
        };
        match scaled {
            // Smaller even before compression, and it compresses much better.
            Some(sc) if sc.len() <= xor.len() => put_chunk(out, ENC_SCALED, &sc),
            _ => put_chunk(out, ENC_XOR, xor),
        }
        n += 1;
    }
    Ok(n)
}

fn put_chunk(out: &mut Vec<u8>, enc: u8, bytes: &[u8]) {
    out.push(enc);
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Decodes a cell, keeping samples in `[mint, maxt]`; returns the number of chunks.
pub(crate) fn decode(mut cell: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<u64> {
    let corrupt = |m: &str| Error::Corrupt(m.to_string());
    let mut chunks = 0;
    while let Some((&enc, rest)) = cell.split_first() {
        let (len, n) = read_uvarint(rest).ok_or_else(|| corrupt("bad chunk length"))?;
        let len = usize::try_from(len).map_err(|_| corrupt("bad chunk length"))?;
        let chunk = rest.get(n..n + len).ok_or_else(|| corrupt("truncated chunk"))?;
        cell = &rest[n + len..];
        match enc {
            ENC_XOR => {
                let mut it = XorIter::new(chunk);
                let want = strata_head::chunk::num_samples(chunk);
                let mut got = 0;
                for (t, v) in it.by_ref() {
                    got += 1;
                    if t > maxt {
                        break;
                    }
                    if t >= mint {
                        out.push(Sample { t, v });
                    }
                }
                if let Some(e) = it.err() {
                    return Err(Error::Corrupt(format!("chunk: {e}")));
                }
                if got < want && maxt == i64::MAX {
                    return Err(corrupt("chunk shorter than its header says"));
                }
            }
            ENC_SCALED => decode_scaled(chunk, mint, maxt, out)?,
            other => return Err(Error::Corrupt(format!("unknown chunk encoding {other:#x}"))),
        }
        chunks += 1;
    }
    Ok(chunks)
}

/// The smallest number of decimals `e` for which every value is `int / 10^e` exactly.
fn decimals(samples: &[Sample]) -> Option<(u32, f64)> {
    'e: for e in 0..=MAX_DECIMALS {
        let scale = 10f64.powi(e as i32);
        for s in samples {
            let x = s.v * scale;
            if !x.is_finite() || x.abs() >= MAX_EXACT || x.round() != x {
                continue 'e;
            }
            // Exactly what decoding computes (this also sends -0.0 to XOR).
            if ((x as i64) as f64 / scale).to_bits() != s.v.to_bits() {
                continue 'e;
            }
        }
        return Some((e, scale));
    }
    None
}

/// `uvarint(n) varint(t0) varint(v0) u8(e)`, then per later sample the timestamp's and the
/// integer's delta-of-delta (the first: plain deltas), zig-zag varints.
fn encode_scaled(samples: &[Sample]) -> Option<Vec<u8>> {
    let (e, scale) = decimals(samples)?;
    let first = samples.first()?;
    let mut out = Vec::with_capacity(samples.len() * 2 + 16);
    put_uvarint(&mut out, samples.len() as u64);
    put_varint(&mut out, first.t);
    let ints: Vec<i64> = samples.iter().map(|s| (s.v * scale) as i64).collect();
    put_varint(&mut out, ints[0]);
    out.push(e as u8);
    let (mut pt, mut pdt, mut pv, mut pdv) = (first.t, 0i64, ints[0], 0i64);
    for (s, &v) in samples.iter().zip(&ints).skip(1) {
        let dt = s.t.wrapping_sub(pt);
        let dv = v.wrapping_sub(pv);
        put_varint(&mut out, dt.wrapping_sub(pdt));
        put_varint(&mut out, dv.wrapping_sub(pdv));
        (pt, pdt, pv, pdv) = (s.t, dt, v, dv);
    }
    Some(out)
}

fn decode_scaled(b: &[u8], mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
    let corrupt = || Error::Corrupt("bad scaled chunk".into());
    let mut r = Reader(b);
    let n = r.uvarint().ok_or_else(corrupt)?;
    let mut t = r.varint().ok_or_else(corrupt)?;
    let mut v = r.varint().ok_or_else(corrupt)?;
    let e = r.byte().ok_or_else(corrupt)?;
    if u32::from(e) > MAX_DECIMALS || n == 0 {
        return Err(corrupt());
    }
    let scale = 10f64.powi(i32::from(e));
    let (mut dt, mut dv) = (0i64, 0i64);
    for i in 0..n {
        if i > 0 {
            dt = dt.wrapping_add(r.varint().ok_or_else(corrupt)?);
            dv = dv.wrapping_add(r.varint().ok_or_else(corrupt)?);
            t = t.wrapping_add(dt);
            v = v.wrapping_add(dv);
        }
        if t > maxt {
            return Ok(());
        }
        if t >= mint {
            out.push(Sample { t, v: v as f64 / scale });
        }
    }
    if !r.0.is_empty() {
        return Err(corrupt());
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn uvarint(&mut self) -> Option<u64> {
        let (x, n) = read_uvarint(self.0)?;
        self.0 = &self.0[n..];
        Some(x)
    }

    fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some((u >> 1) as i64 ^ -((u & 1) as i64))
    }
}

fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn roundtrip(samples: &[Sample], enc: Encoding) -> Vec<Sample> {
        let mut cell = Vec::new();
        encode(samples, enc, &mut cell).unwrap();
        let mut out = Vec::new();
        decode(&cell, i64::MIN, i64::MAX, &mut out).unwrap();
        out
    }

    #[test]
    fn regular_decimal_data_takes_the_scaled_encoding() {
        let s: Vec<Sample> = (0..480)
            .map(|k| Sample { t: 1_700_000_000_000 + k * 15_000, v: k as f64 * 15.5 })
            .collect();
        let mut cell = Vec::new();
        encode(&s, Encoding::Auto, &mut cell).unwrap();
        assert_eq!(cell[0], ENC_SCALED);
        // Two zero bytes per sample before compression.
        assert!(cell.len() < 2 * 480 + 30, "{}", cell.len());
        assert_eq!(roundtrip(&s, Encoding::Auto), s);
        let mut x = Vec::new();
        encode(&s, Encoding::Xor, &mut x).unwrap();
        assert_eq!(x[0], ENC_XOR);
        // A range in the middle.
        let mut out = Vec::new();
        decode(&cell, s[10].t, s[12].t, &mut out).unwrap();
        assert_eq!(out, s[10..=12].to_vec());
    }

    #[test]
    fn negative_zero_keeps_its_sign() {
        let s = vec![Sample { t: 1, v: 1.0 }, Sample { t: 2, v: -0.0 }];
        assert_eq!(roundtrip(&s, Encoding::Auto)[1].v.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn values_that_are_not_decimals_take_xor() {
        let s = vec![
            Sample { t: 1, v: 0.1 + 0.2 },
            Sample { t: 2, v: f64::from_bits(0x7ff0_0000_0000_0002) },
        ];
        let mut cell = Vec::new();
        encode(&s, Encoding::Auto, &mut cell).unwrap();
        assert_eq!(cell[0], ENC_XOR);
        let got = roundtrip(&s, Encoding::Auto);
        assert_eq!(got[1].v.to_bits(), 0x7ff0_0000_0000_0002);
    }

    #[test]
    fn corrupt_cells_are_errors() {
        let mut out = Vec::new();
        for bad in [&[0x81u8, 5, 1, 2][..], &[7, 1, 0], &[1, 200]] {
            assert!(decode(bad, i64::MIN, i64::MAX, &mut out).is_err(), "{bad:?}");
        }
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
            (0i64..100).prop_map(|i| i as f64),
            Just(-0.0),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(1e300),
        ]
    }

    proptest! {
        #[test]
        fn any_samples_round_trip_bit_for_bit(
            deltas in prop::collection::vec((1i64..100_000, arb_value()), 1..300),
            same in any::<bool>(),
        ) {
            let mut t = -50_000i64;
            let s: Vec<Sample> = deltas.iter().map(|&(d, v)| { t += d; Sample { t, v: if same { 42.0 } else { v } } }).collect();
            for enc in [Encoding::Auto, Encoding::Xor] {
                let got = roundtrip(&s, enc);
                prop_assert_eq!(got.len(), s.len());
                for (a, b) in got.iter().zip(&s) {
                    prop_assert_eq!((a.t, a.v.to_bits()), (b.t, b.v.to_bits()));
                }
            }
        }
    }
}
