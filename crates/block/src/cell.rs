//! The contents of one data cell: a series' samples in one data column's time span, as a
//! sequence of chunks, each `encoding:u8 uvarint(len) bytes`.
//!
//! Encodings:
//! - `1`, XOR: Prometheus's chunk encoding, bit for bit (its `EncXOR` is also 1). Any value.
//! - `0x82`, scaled planes: for chunks whose values are all decimals with at most
//!   [`MAX_DECIMALS`] digits after the point (integers, percentages, `%f`-printed ratios,
//!   `0.01`-step CPU seconds, …), stored as integers `v·10^e`. Timestamps go first, as
//!   delta-of-delta varints (nearly all zero bytes). Values are then differenced to the order
//!   (0, 1 or 2) that leaves the smallest numbers for this chunk — order 1 for noisy gauges and
//!   jittery counters, order 2 for steady ramps —, offset by their minimum so they are all
//!   non-negative, and written as byte planes: every residual's lowest byte, then every
//!   second byte, and so on, up to the widest residual. Planes of high bytes are runs of zeros
//!   and the file's zstd removes them; low planes of noisy data stay near their entropy. A
//!   value round-trips only if its bits come back identical (so -0.0, NaN and staleness
//!   markers always take XOR).
//! - `0x83`, ratio planes: the same as `0x82` for values that are all `int / d` for one integer
//!   denominator `d` that is not a power of ten (`used_blocks / total_blocks` ratios such as
//!   vLLM's cache usage, binary fractions such as `0.25`): the header holds `uvarint(d)` where
//!   `0x82` holds the decimal count.
//! - `0x81`, scaled delta (written by earlier versions, still read): the same integers with
//!   timestamp and value delta-of-delta varints interleaved.
//!
//! [`Encoding::Auto`] writes the smaller of XOR and scaled planes per chunk.
use strata_head::chunk::{put_uvarint, put_varint, XorChunk, XorIter, MAX_SAMPLES};
use strata_model::Sample;

use crate::{Error, Result};

const ENC_XOR: u8 = 1;
const ENC_SCALED: u8 = 0x81;
const ENC_PLANES: u8 = 0x82;
const ENC_RATIO: u8 = 0x83;
/// Most decimal digits the `0x82` header names.
pub const MAX_DECIMALS: u32 = 6;
/// Largest denominator of the `0x83` encoding: the integers `v·d` stay far from `2^53`.
const MAX_DENOMINATOR: u64 = 1 << 24;
/// Integers beyond this are not exact in an f64.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0;

/// Which chunk encodings a block writer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// Prometheus XOR chunks only.
    Xor,
    /// Per chunk, the smaller of XOR and scaled planes.
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
            Encoding::Auto => encode_planes(part),
            Encoding::Xor => None,
        };
        match scaled {
            // XOR's bit stream barely compresses; the planes are judged by what zstd will
            // leave of them.
            Some((enc, sc, estimate)) if estimate <= xor.len() => put_chunk(out, enc, &sc),
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
        let end = n.checked_add(len).ok_or_else(|| corrupt("bad chunk length"))?;
        let chunk = rest.get(n..end).ok_or_else(|| corrupt("truncated chunk"))?;
        cell = &rest[end..];
        match enc {
            ENC_XOR => {
                let mut it = XorIter::new(chunk);
                let want = strata_head::chunk::num_samples(chunk);
                out.reserve(want);
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
            ENC_PLANES => decode_planes(chunk, false, mint, maxt, out)?,
            ENC_RATIO => decode_planes(chunk, true, mint, maxt, out)?,
            other => return Err(Error::Corrupt(format!("unknown chunk encoding {other:#x}"))),
        }
        chunks += 1;
    }
    Ok(chunks)
}

/// The smallest denominator `d` (up to [`MAX_DENOMINATOR`]) for which every value is
/// `int / d` exactly, as decoding computes it: `k as f64 / d as f64`, bit for bit (so -0.0,
/// NaN and staleness markers never fit), with those integers. A value that does not fit the
/// denominator so far widens it to the least common multiple with its own, and the integers
/// so far are scaled up with it (`k·m / d·m` is the same fraction, so it decodes the same);
/// most chunks settle on theirs within a sample or two, so the continued fractions are rare.
fn scaled_ints(samples: &[Sample]) -> Option<(u64, Vec<i64>)> {
    let mut d = 1u64;
    let mut ints = Vec::with_capacity(samples.len());
    for s in samples {
        if let Some(k) = integer_at(s.v, d) {
            ints.push(k);
            continue;
        }
        let q = own_denominator(s.v)?;
        let m = q / gcd(d, q);
        d = d.checked_mul(m).filter(|&d| d <= MAX_DENOMINATOR)?;
        for k in &mut ints {
            *k = k.checked_mul(m as i64).filter(|k| (*k as f64).abs() < MAX_EXACT)?;
        }
        ints.push(integer_at(s.v, d)?);
    }
    Some((d, ints))
}

/// `k` with `k / d == v` bit for bit, if there is one.
fn integer_at(v: f64, d: u64) -> Option<i64> {
    let scale = d as f64;
    // `v·d` is rarely an exact integer in binary (`0.123 * 1000.0` is not 123); what counts
    // is that the nearest integer gives `v` back exactly as decoding computes it.
    let x = (v * scale).round();
    if !x.is_finite() || x.abs() >= MAX_EXACT {
        return None;
    }
    let k = x as i64;
    ((k as f64 / scale).to_bits() == v.to_bits()).then_some(k)
}

/// The denominator of the first convergent `p/q` of `|v|`'s continued fraction that rounds to
/// `|v|`, computed exactly from its binary form; `None` past [`MAX_DENOMINATOR`]. A ratio
/// `p/q` of small integers lies within half an ulp of `v`, much closer than `1/(2q²)`, so it is
/// one of the convergents, and no other fraction with a denominator that small is as close.
fn own_denominator(v: f64) -> Option<u64> {
    if !v.is_finite() {
        return None;
    }
    let bits = v.abs().to_bits();
    let (exp, frac) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let (mant, e) = if exp == 0 { (frac, -1074) } else { (frac | 1 << 52, exp - 1075) };
    if e >= 0 || mant == 0 {
        return Some(1);
    }
    let shift = u32::try_from(-e).ok().filter(|&s| s <= 120)?;
    // |v| = mant / 2^shift; Euclid on the pair gives the partial quotients.
    let (mut a, mut b) = (u128::from(mant), 1u128 << shift);
    let (mut h0, mut h1, mut k0, mut k1) = (0u128, 1u128, 1u128, 0u128);
    while b != 0 {
        let q = a / b;
        (a, b) = (b, a % b);
        let (h, k) = (q.checked_mul(h1)?.checked_add(h0)?, q.checked_mul(k1)?.checked_add(k0)?);
        if k > u128::from(MAX_DENOMINATOR) || h >= MAX_EXACT as u128 {
            return None;
        }
        if (h as f64 / k as f64).to_bits() == v.abs().to_bits() {
            return u64::try_from(k).ok();
        }
        (h0, h1, k0, k1) = (h1, h, k1, k);
    }
    None
}

/// `Some(e)` when `d` is `10^e` with `e` ≤ [`MAX_DECIMALS`].
fn decimal_exponent(d: u64) -> Option<u8> {
    (0..=MAX_DECIMALS).find(|&e| 10u64.pow(e) == d).map(|e| e as u8)
}

/// `uvarint(n) varint(t0) u8(e) varint(v0)` (`0x83`: `uvarint(d)` in place of `u8(e)`), the
/// timestamps' delta-of-delta varints (the first: a plain delta), then the values as described
/// in the module docs: `u8(order)`, for order 2 `varint(v1 - v0)`, `varint(base)`,
/// `uvarint(step)`, `u8(width)`, `width` byte planes of `(diff - base) / step` (`step`: the
/// residuals' greatest common divisor, e.g. 4096 for byte counts of whole pages). Returns the
/// encoding byte, the chunk and about how many bytes zstd will leave of it.
fn encode_planes(samples: &[Sample]) -> Option<(u8, Vec<u8>, usize)> {
    let (d, ints) = scaled_ints(samples)?;
    let first = samples.first()?;
    let mut out = Vec::with_capacity(samples.len() * 3 + 32);
    put_uvarint(&mut out, samples.len() as u64);
    put_varint(&mut out, first.t);
    let enc = match decimal_exponent(d) {
        Some(e) => {
            out.push(e);
            ENC_PLANES
        }
        None => {
            put_uvarint(&mut out, d);
            ENC_RATIO
        }
    };
    put_varint(&mut out, ints[0]);
    if samples.len() == 1 {
        let n = out.len();
        return Some((enc, out, n));
    }
    // Estimated bits after compression: runs of zero bytes all but vanish.
    let mut bits = 8 * out.len() as u64 + 64;
    let mut pdt = 0i64;
    for w in samples.windows(2) {
        let dt = w[1].t.wrapping_sub(w[0].t);
        let at = out.len();
        put_varint(&mut out, dt.wrapping_sub(pdt));
        bits += if dt == pdt { 1 } else { 8 * (out.len() - at) as u64 };
        pdt = dt;
    }
    // Differences of each order; the one whose residuals need the fewest bits wins.
    let d1: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let d2: Vec<i64> = d1.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let candidates: [(u8, &[i64]); 3] = [(0, &ints[1..]), (1, &d1), (2, &d2)];
    let (order, residuals, base, step, cost) = candidates
        .into_iter()
        .map(|(order, d)| {
            let base = d.iter().copied().min().unwrap_or(0);
            let r: Vec<u64> = d.iter().map(|&x| x.wrapping_sub(base) as u64).collect();
            let step = r.iter().fold(0, |g, &x| gcd(g, x)).max(1);
            let cost: u64 = r.iter().map(|&x| u64::from(64 - (x / step).leading_zeros())).sum();
            (order, r, base, step, cost)
        })
        .min_by_key(|c| c.4)?;
    out.push(order);
    if order == 2 {
        put_varint(&mut out, d1[0]);
    }
    put_varint(&mut out, base);
    put_uvarint(&mut out, step);
    let max = residuals.iter().max().map_or(0, |&m| m / step);
    let width = (64 - max.leading_zeros()).div_ceil(8);
    out.push(width as u8);
    for k in 0..width {
        out.extend(residuals.iter().map(|&x| ((x / step) >> (8 * k)) as u8));
    }
    // A byte of Huffman overhead per 8 residuals.
    bits += cost + residuals.len() as u64;
    Some((enc, out, bits.div_ceil(8) as usize))
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Decodes a `0x82` chunk, or with `ratio` a `0x83` one.
fn decode_planes(b: &[u8], ratio: bool, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<()> {
    let corrupt = || Error::Corrupt("bad scaled-planes chunk".into());
    let mut r = Reader(b);
    let n = usize::try_from(r.uvarint().ok_or_else(corrupt)?).map_err(|_| corrupt())?;
    let t0 = r.varint().ok_or_else(corrupt)?;
    let d = if ratio {
        r.uvarint().filter(|d| (1..=MAX_DENOMINATOR).contains(d)).ok_or_else(corrupt)?
    } else {
        let e = r.byte().filter(|&e| u32::from(e) <= MAX_DECIMALS).ok_or_else(corrupt)?;
        10u64.pow(u32::from(e))
    };
    let v0 = r.varint().ok_or_else(corrupt)?;
    // Every later sample takes at least one timestamp byte: bounds `n` before allocating.
    if n == 0 || n - 1 > r.0.len() {
        return Err(corrupt());
    }
    let scale = d as f64;
    // Timestamps first: they say which samples are wanted, and the values follow them.
    let mut ts = Vec::with_capacity(n);
    ts.push(t0);
    let (mut t, mut dt) = (t0, 0i64);
    for _ in 1..n {
        dt = dt.wrapping_add(r.varint().ok_or_else(corrupt)?);
        t = t.wrapping_add(dt);
        ts.push(t);
    }
    let first = ts.partition_point(|&t| t < mint);
    let end = ts.partition_point(|&t| t <= maxt);
    out.reserve(end.saturating_sub(first));
    let scaled = |v: i64| v as f64 / scale;
    if n == 1 {
        if first < end {
            out.push(Sample { t: t0, v: scaled(v0) });
        }
        return if r.0.is_empty() { Ok(()) } else { Err(corrupt()) };
    }
    let order = r.byte().ok_or_else(corrupt)?;
    let d1 = if order == 2 { r.varint().ok_or_else(corrupt)? } else { 0 };
    let base = r.varint().ok_or_else(corrupt)?;
    let step = r.uvarint().ok_or_else(corrupt)?;
    let width = usize::from(r.byte().ok_or_else(corrupt)?);
    // Residual `j` belongs to sample `j + lead`.
    let lead = match order {
        0 | 1 => 1,
        2 => 2,
        _ => return Err(corrupt()),
    };
    let count = n - lead;
    if width > 8 || r.0.len() != width * count {
        return Err(corrupt());
    }
    // Past the last wanted sample nothing more is needed. The residuals are put together a
    // plane at a time (loops the compiler vectorises), then integrated in place.
    let stop = end.min(n);
    if first >= stop {
        return Ok(());
    }
    let mut ints = vec![0i64; stop];
    if stop > lead {
        let dst = &mut ints[lead..];
        for (k, plane) in r.0.chunks_exact(count).enumerate() {
            let shift = 8 * k as u32;
            for (x, &b) in dst.iter_mut().zip(plane) {
                *x |= (u64::from(b) << shift) as i64;
            }
        }
        for x in dst.iter_mut() {
            *x = ((*x as u64).wrapping_mul(step) as i64).wrapping_add(base);
        }
    }
    ints[0] = v0;
    match order {
        0 => {}
        1 => {
            let mut v = v0;
            for x in &mut ints[1..] {
                v = v.wrapping_add(*x);
                *x = v;
            }
        }
        _ => {
            let (mut v, mut d) = (v0.wrapping_add(d1), d1);
            if let Some(x) = ints.get_mut(1) {
                *x = v;
            }
            for x in ints.iter_mut().skip(2) {
                d = d.wrapping_add(*x);
                v = v.wrapping_add(d);
                *x = v;
            }
        }
    }
    out.extend(
        ts[first..stop].iter().zip(&ints[first..]).map(|(&t, &v)| Sample { t, v: scaled(v) }),
    );
    Ok(())
}

/// How many samples a cell holds, from its chunks' headers (0 for what does not parse): room
/// to reserve before decoding it.
pub(crate) fn sample_count(mut cell: &[u8]) -> usize {
    let mut total: usize = 0;
    while let Some((&enc, rest)) = cell.split_first() {
        let Some((len, n)) = read_uvarint(rest) else { break };
        let end = usize::try_from(len).ok().and_then(|len| n.checked_add(len));
        let Some(chunk) = end.and_then(|end| rest.get(n..end)) else {
            break;
        };
        cell = &rest[n + chunk.len()..];
        total = total.saturating_add(match enc {
            ENC_XOR => strata_head::chunk::num_samples(chunk),
            _ => read_uvarint(chunk).and_then(|(n, _)| usize::try_from(n).ok()).unwrap_or(0),
        });
    }
    total
}

/// The encoding earlier versions wrote (`0x81`): `uvarint(n) varint(t0) varint(v0) u8(e)`, then
/// per later sample the timestamp's and the integer's delta-of-delta (the first: plain
/// deltas), zig-zag varints. Kept to test that such cells still read.
#[cfg(test)]
fn encode_scaled(samples: &[Sample]) -> Option<Vec<u8>> {
    let (d, ints) = scaled_ints(samples)?;
    let e = decimal_exponent(d)?;
    let first = samples.first()?;
    let mut out = Vec::with_capacity(samples.len() * 2 + 16);
    put_uvarint(&mut out, samples.len() as u64);
    put_varint(&mut out, first.t);
    put_varint(&mut out, ints[0]);
    out.push(e);
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
            .map(|k| Sample { t: 1_700_000_000_000 + k * 15_000, v: (155 * k + 1) as f64 / 10.0 })
            .collect();
        let mut cell = Vec::new();
        encode(&s, Encoding::Auto, &mut cell).unwrap();
        // One decimal: the `0x82` header; halves alone would be ratios of 2.
        assert_eq!(cell[0], ENC_PLANES);
        // One zero byte per timestamp; constant deltas leave no value planes at all.
        assert!(cell.len() < 480 + 30, "{}", cell.len());
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
    fn each_kind_of_series_gets_the_order_that_suits_it() {
        let t = |k: i64| 1_700_000_000_000 + k * 15_000;
        let noise = |k: i64| {
            let mut z = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            ((z ^ (z >> 32)) % 101) as f64
        };
        // Name, values, then the order, step and plane count the encoder should pick.
        type Case<'a> = (&'a str, Box<dyn Fn(i64) -> f64 + 'a>, u8, u64, usize);
        let cases: [Case; 5] = [
            // Noise around a level: the values themselves, one byte wide.
            ("gauge", Box::new(|k| 200.0 + noise(k)), 0, 1, 1),
            // A counter with jitter: its deltas.
            ("counter", Box::new(|k| (1e12 + k as f64 * 3e4 + noise(k)).floor()), 1, 1, 1),
            // Whole pages: the residuals' common factor 4096 is divided out.
            ("pages", Box::new(|k| 4096.0 * (1e6 + noise(k))), 0, 4096, 1),
            // A steady ramp: delta-of-delta is zero, no planes.
            ("ramp", Box::new(|k| k as f64 * 2.5), 1, 1, 0),
            // Constant: the values, all equal to their minimum.
            ("constant", Box::new(|_| 7.0), 0, 1, 0),
        ];
        for (name, f, order, step, width) in cases {
            let s: Vec<Sample> = (0..480).map(|k| Sample { t: t(k), v: f(k) }).collect();
            let (_, enc, _) = encode_planes(&s).unwrap();
            // Past the header and the 479 timestamp varints: order, base, step, width, planes.
            let mut r = Reader(&enc);
            let _ = (r.uvarint(), r.varint(), r.byte(), r.varint());
            for _ in 1..480 {
                r.varint().unwrap();
            }
            assert_eq!(r.byte(), Some(order), "{name}");
            r.varint().unwrap();
            assert_eq!(r.uvarint(), Some(step), "{name}");
            assert_eq!(r.byte().map(usize::from), Some(width), "{name}");
            assert_eq!(r.0.len(), 479 * width, "{name}");
            assert_eq!(roundtrip(&s, Encoding::Auto), s, "{name}");
            let mut cell = Vec::new();
            encode(&s, Encoding::Auto, &mut cell).unwrap();
            for (lo, hi) in [(0, 1), (1, 2), (100, 300), (479, 479)] {
                let mut out = Vec::new();
                decode(&cell, s[lo].t, s[hi].t, &mut out).unwrap();
                assert_eq!(out, s[lo..=hi], "{name} {lo}..={hi}");
            }
        }
    }

    #[test]
    fn ratios_of_integers_take_the_ratio_encoding() {
        // vLLM's cache usage: used blocks over a total that is not a power of ten, in full
        // precision; a slow ramp of a few blocks per scrape.
        let s: Vec<Sample> = (0..480)
            .map(|k| Sample {
                t: 1_700_000_000_000 + k * 15_000,
                v: (3000 + 7 * k) as f64 / 12_345.0,
            })
            .collect();
        let mut cell = Vec::new();
        encode(&s, Encoding::Auto, &mut cell).unwrap();
        assert_eq!(cell[0], ENC_RATIO);
        let mut xor = Vec::new();
        encode(&s, Encoding::Xor, &mut xor).unwrap();
        assert!(cell.len() * 4 < xor.len(), "ratio {} vs xor {}", cell.len(), xor.len());
        let got = roundtrip(&s, Encoding::Auto);
        assert!(got.iter().zip(&s).all(|(a, b)| a.t == b.t && a.v.to_bits() == b.v.to_bits()));
        // Denominators: the least common one of the values, binary fractions included.
        let at = |v: &[f64]| {
            let s: Vec<Sample> = v.iter().map(|&v| Sample { t: 0, v }).collect();
            scaled_ints(&s).map(|(d, _)| d)
        };
        assert_eq!(at(&[0.25, 1.5, 3.0]), Some(4));
        assert_eq!(at(&[1.0 / 3.0, 0.5]), Some(6));
        assert_eq!(at(&[0.125, 0.001]), Some(1000));
        assert_eq!(at(&[1.0, f64::NAN]), None);
        // Two values whose own denominators are large have no common one in range.
        assert_eq!(at(&[1.0 / 9_999_991.0, 1.0 / 9_999_973.0]), None);
    }

    #[test]
    fn cells_of_the_earlier_scaled_encoding_still_read() {
        let s: Vec<Sample> =
            (0..100).map(|k| Sample { t: 1000 + k * 15_000, v: (k * k) as f64 / 10.0 }).collect();
        let mut cell = Vec::new();
        put_chunk(&mut cell, ENC_SCALED, &encode_scaled(&s).unwrap());
        let mut out = Vec::new();
        decode(&cell, i64::MIN, i64::MAX, &mut out).unwrap();
        assert_eq!(out, s);
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
        for bad in [
            &[0x81u8, 5, 1, 2][..],
            &[7, 1, 0],
            &[1, 200],
            // n = 3 but one timestamp; then a width of 9 and a plane that is too short.
            &[0x82, 4, 3, 0, 0, 0],
            &[0x82, 10, 3, 0, 0, 0, 0, 0, 1, 0, 1, 9],
            &[0x82, 11, 3, 0, 0, 0, 0, 0, 1, 0, 1, 1, 5],
            // A ratio chunk whose denominator is zero.
            &[0x83, 4, 1, 0, 0, 0],
        ] {
            assert!(decode(bad, i64::MIN, i64::MAX, &mut out).is_err(), "{bad:?}");
        }
    }

    fn arb_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            (-1_000_000i64..1_000_000).prop_map(|i| i as f64 / 100.0),
            (0i64..100).prop_map(|i| i as f64),
            (0i64..50_000).prop_map(|i| i as f64 / 12_345.0),
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
            cut in (0usize..300, 0usize..300),
        ) {
            let mut t = -50_000i64;
            let s: Vec<Sample> = deltas.iter().map(|&(d, v)| { t += d; Sample { t, v: if same { 42.0 } else { v } } }).collect();
            let bits = |s: &[Sample]| s.iter().map(|s| (s.t, s.v.to_bits())).collect::<Vec<_>>();
            // A window starting and ending at sample times or just past them.
            let (lo, hi) = (s[cut.0 % s.len()].t, s[cut.1 % s.len()].t + (cut.1 as i64 % 2));
            for enc in [Encoding::Auto, Encoding::Xor] {
                let mut cell = Vec::new();
                encode(&s, enc, &mut cell).unwrap();
                prop_assert_eq!(sample_count(&cell), s.len());
                let got = roundtrip(&s, enc);
                prop_assert_eq!(bits(&got), bits(&s));
                let mut part = Vec::new();
                decode(&cell, lo, hi, &mut part).unwrap();
                let want: Vec<Sample> = s.iter().filter(|x| x.t >= lo && x.t <= hi).copied().collect();
                prop_assert_eq!(bits(&part), bits(&want));
            }
        }
    }
}
