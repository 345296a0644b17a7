use proptest::prelude::*;
use strata_model::STALE_NAN_BITS;

use super::*;

fn encode(samples: &[(i64, u64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        c.append(t, f64::from_bits(v)).unwrap();
    }
    c
}

fn decode(bytes: &[u8]) -> Vec<(i64, u64)> {
    let mut it = XorIter::new(bytes);
    let out: Vec<(i64, u64)> = it.by_ref().map(|(t, v)| (t, v.to_bits())).collect();
    assert_eq!(it.err(), None);
    out
}

/// Worked by hand from the format description:
/// - `00 04`: four samples; `D0 0F`: zig-zag varint of 1000 (2000 = 0x7d0);
///   `3F F0 00 00 00 00 00 00`: 1.0; `0F`: uvarint delta 15.
/// - then bits: `0` (value unchanged), `0` (dod 0);
/// - `11`, leading `00001`, sigbits `001011`, `11111111111`: 2.0 ^ 1.0 = 0x7ff0...,
///   with 1 leading and 52 trailing zeros;
/// - `10` and dod -1 in 14 bits;
/// - `11`, leading `01100`, sigbits `000001`, `1`: 3.0 ^ 2.0 = 0x0008..., with 12 leading
///   and 51 trailing zeros, outside the previous window.
#[test]
fn known_bytes() {
    let c = encode(&[
        (1000, 1.0f64.to_bits()),
        (1015, 1.0f64.to_bits()),
        (1030, 2.0f64.to_bits()),
        (1044, 3.0f64.to_bits()),
    ]);
    let want: &[u8] = &[
        0x00, 0x04, 0xD0, 0x0F, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0x0F, //
        0x30, 0x97, 0xFF, 0xEF, 0xFF, 0xF6, 0x03,
    ];
    assert_eq!(c.bytes(), want);
    assert_eq!(c.num_samples(), 4);
    assert_eq!(first_timestamp(c.bytes()), Some(1000));

    // The first three samples alone end mid-byte and are zero-padded.
    let three =
        encode(&[(1000, 1.0f64.to_bits()), (1015, 1.0f64.to_bits()), (1030, 2.0f64.to_bits())]);
    assert_eq!(
        three.bytes(),
        &[0x00, 0x03, 0xD0, 0x0F, 0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0x0F, 0x30, 0x97, 0xFF, 0xC0]
    );
}

/// The delta-of-delta buckets are asymmetric, as in Prometheus: n bits hold
/// `-(2^(n-1) - 1) ..= 2^(n-1)`.
#[test]
fn dod_bucket_edges() {
    // Bits used by a third sample with the given dod and an unchanged value:
    // prefix + payload + 1 value bit.
    let cases: &[(i64, usize)] = &[
        (0, 1),
        (1, 2 + 14),
        (8192, 2 + 14),
        (-8191, 2 + 14),
        (-8192, 3 + 17),
        (8193, 3 + 17),
        (65536, 3 + 17),
        (-65536, 4 + 20),
        (524288, 4 + 20),
        (524289, 4 + 64),
        (-524288, 4 + 64),
    ];
    for &(dod, bits) in cases {
        let base = 1_000_000i64;
        let ts = [base, base + 10_000_000, base + 20_000_000 + dod];
        let c = encode(&[(ts[0], 0), (ts[1], 0), (ts[2], 0)]);
        // Header, varint, 64-bit value, uvarint of the first delta, its 1 value bit.
        let before = 2 + 3 + 8 + 4;
        let total_bits = 1 + 1 + bits;
        assert_eq!(c.bytes().len(), before + total_bits.div_ceil(8), "dod {dod}");
        assert_eq!(decode(c.bytes()).iter().map(|s| s.0).collect::<Vec<_>>(), ts, "dod {dod}");
    }
}

#[test]
fn empty_and_single() {
    let c = XorChunk::new();
    assert!(c.is_empty());
    assert_eq!(decode(c.bytes()), vec![]);
    assert_eq!(first_timestamp(c.bytes()), None);
    let c = encode(&[(-5, STALE_NAN_BITS)]);
    assert_eq!(decode(c.bytes()), vec![(-5, STALE_NAN_BITS)]);
    // 2 header bytes, zig-zag varint of -5 (9), 8 value bytes.
    assert_eq!(c.bytes(), &[0, 1, 9, 0x7f, 0xf0, 0, 0, 0, 0, 0, 2]);
}

#[test]
fn take_bytes_resets() {
    let mut c = encode(&[(1, 1), (2, 2), (3, 3)]);
    let bytes = c.take_bytes();
    assert_eq!(decode(&bytes), vec![(1, 1), (2, 2), (3, 3)]);
    assert!(c.is_empty());
    c.append(10, 1.0).unwrap();
    c.append(20, 2.0).unwrap();
    assert_eq!(c.bytes(), encode(&[(10, 1.0f64.to_bits()), (20, 2.0f64.to_bits())]).bytes());
}

#[test]
fn full_chunk_refuses() {
    let mut c = XorChunk::new();
    for t in 0..MAX_SAMPLES as i64 {
        c.append(t, 1.0).unwrap();
    }
    assert_eq!(c.append(MAX_SAMPLES as i64, 1.0), Err(Error::ChunkFull));
    assert_eq!(XorIter::new(c.bytes()).count(), MAX_SAMPLES);
}

#[test]
fn corrupt_input_does_not_panic() {
    let good = encode(&[(1, 1.5f64.to_bits()), (7, 2.5f64.to_bits()), (20, 1.0f64.to_bits())]);
    let bytes = good.bytes();
    for cut in 0..bytes.len() {
        let mut it = XorIter::new(&bytes[..cut]);
        let n = it.by_ref().count();
        if cut >= 2 {
            assert!(n < 3 && it.err().is_some(), "cut at {cut}");
        }
    }
    // A header claiming more samples than there are.
    let mut lying = bytes.to_vec();
    lying[1] = 200;
    let mut it = XorIter::new(&lying);
    let got: Vec<(i64, f64)> = it.by_ref().collect();
    // The zero padding may read as a few more unchanged samples, as in Prometheus.
    assert!((3..200).contains(&got.len()));
    assert_eq!(got[..3], [(1, 1.5), (7, 2.5), (20, 1.0)]);
    assert_eq!(it.err(), Some(&Error::InvalidChunk("unexpected end of chunk")));
    // An over-long varint.
    let mut it =
        XorIter::new(&[0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert_eq!(it.next(), None);
    assert!(it.err().is_some());
}

fn interesting_value() -> impl Strategy<Value = u64> {
    // One cheap tuple strategy rather than a many-armed `prop_oneof!`, which is slow unoptimized.
    (0u8..12, any::<u64>()).prop_map(|(kind, bits)| match kind {
        0 => STALE_NAN_BITS,
        1 => f64::NAN.to_bits(),
        2 => 0x7ff8_0000_0000_0001, // Go's NaN
        3 => 0xfff0_0000_0000_0001, // negative signalling NaN
        4 => f64::INFINITY.to_bits(),
        5 => f64::NEG_INFINITY.to_bits(),
        6 => (-0.0f64).to_bits(),
        7 => 0,
        8 => f64::from((bits % 1000) as u32).to_bits(),
        9 => 1.0f64.to_bits(),
        _ => bits,
    })
}

fn timestamps() -> impl Strategy<Value = Vec<i64>> {
    let step = prop_oneof![Just(15_000i64), 1i64..100, 1i64..1_000_000, 1i64..i64::MAX / 256,];
    (any::<i64>().prop_map(|s| s / 2), prop::collection::vec(step, 0..250)).prop_map(
        |(start, steps)| {
            let mut t = start;
            let mut out = vec![t];
            for s in steps {
                match t.checked_add(s) {
                    Some(next) => t = next,
                    None => break,
                }
                out.push(t);
            }
            out
        },
    )
}

proptest! {
    #[test]
    fn round_trip(samples in timestamps().prop_flat_map(|ts| {
        let n = ts.len();
        (Just(ts), prop::collection::vec(interesting_value(), n))
            .prop_map(|(ts, vs)| ts.into_iter().zip(vs).collect::<Vec<(i64, u64)>>())
    })) {
        let c = encode(&samples);
        prop_assert_eq!(c.num_samples(), samples.len());
        prop_assert_eq!(decode(c.bytes()), samples.clone());
        prop_assert_eq!(c.last_t(), samples.last().unwrap().0);
        let frozen = c.into_bytes();
        prop_assert_eq!(decode(&frozen), samples);
    }

    /// Any timestamps at all, even decreasing or overflowing ones, come back (wrapping maths).
    #[test]
    fn round_trip_any_timestamps(samples in prop::collection::vec((any::<i64>(), any::<u64>()), 1..50)) {
        prop_assert_eq!(decode(encode(&samples).bytes()), samples);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let n = XorIter::new(&bytes).count();
        prop_assert!(n <= num_samples(&bytes));
    }
}
