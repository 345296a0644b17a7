use bytes::Bytes;
use proptest::prelude::*;
use prost::Message;
use strata_model::{Error, WireVersion};
use strata_proto::prometheus::{self as v1, WriteRequest};
use strata_proto::write_v2 as v2;

use strata_proto::raft_v1::{SeriesSamples, ShardBatch};

use super::*;

const LIMITS: DecodeLimits =
    DecodeLimits { max_request_bytes: 1 << 20, max_decompressed_bytes: 4 << 20 };

fn lbl(n: &str, v: &str) -> v1::Label {
    v1::Label {
        name: Bytes::copy_from_slice(n.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
    }
}

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: labels.iter().map(|(n, v)| lbl(n, v)).collect(),
        samples: samples.iter().map(|&(t, v)| v1::Sample { timestamp: t, value: v }).collect(),
        ..Default::default()
    }
}

fn snappy(raw: &[u8]) -> Bytes {
    Bytes::from(snap::raw::Encoder::new().compress_vec(raw).unwrap())
}

fn v1_body(ts: Vec<v1::TimeSeries>) -> Bytes {
    snappy(&WriteRequest { timeseries: ts, metadata: vec![] }.encode_to_vec())
}

fn run(version: WireVersion, body: &Bytes, shards: u32) -> Result<Routed> {
    route(version, "anonymous", decompress(body, &LIMITS)?, shards, &LIMITS)
}

/// The routed log entries, decoded with the generated type.
fn decoded(r: &Routed) -> Vec<(ShardId, ShardBatch)> {
    r.batches.iter().map(|(s, b)| (*s, ShardBatch::decode(b.clone()).unwrap())).collect()
}

fn all_series(r: &Routed) -> Vec<SeriesSamples> {
    decoded(r).into_iter().flat_map(|(_, b)| b.series).collect()
}

/// A routed series' flattened labels (its key, `label_pairs`, is a run of `TimeSeries.labels`
/// fields, so the generated `TimeSeries` reads it).
fn labels_of(s: &SeriesSamples) -> Vec<Vec<u8>> {
    assert!(s.labels.is_empty(), "label strings are for earlier versions only");
    let mut out: Vec<Vec<u8>> = Vec::new();
    for l in v1::TimeSeries::decode(&s.label_pairs[..]).unwrap().labels {
        out.push(l.name.to_vec());
        out.push(l.value.to_vec());
    }
    out
}

#[test]
fn v1_routes_every_sample() {
    let body = v1_body(vec![
        series(&[("__name__", "up"), ("job", "a")], &[(1, 1.0), (2, 0.0)]),
        series(&[("job", "b"), ("__name__", "up")], &[(1, 1.0)]),
    ]);
    let r = run(WireVersion::V1, &body, 4).unwrap();
    assert_eq!(r.samples, 3);
    assert_eq!(r.invalid_series, 0);
    let mut s = all_series(&r);
    assert_eq!(s.len(), 2);
    s.sort_by_key(|x| x.timestamps.len());
    // Unsorted input comes out sorted, as a series key; sorted input is copied as it was.
    assert_eq!(labels_of(&s[0]), [&b"__name__"[..], b"up", b"job", b"b"]);
    assert_eq!(labels_of(&s[1]), [&b"__name__"[..], b"up", b"job", b"a"]);
    for x in &s {
        assert_eq!(x.key_hash, strata_model::key_hash(&x.label_pairs));
    }
}

#[test]
fn bad_bodies_are_invalid() {
    let e = run(WireVersion::V1, &Bytes::new(), 4).unwrap_err();
    assert!(matches!(&e, Error::Invalid(m) if m.contains("empty")), "{e}");
    let e = run(WireVersion::V1, &Bytes::from_static(b"\xff\xff\xff\xff\xff\xff\x00garbage"), 4)
        .unwrap_err();
    assert!(matches!(&e, Error::Invalid(m) if m.contains("snappy")), "{e}");
    let e = run(WireVersion::V1, &snappy(b"\x0a\xff\xff\xff\x0f"), 4).unwrap_err();
    assert!(matches!(&e, Error::Invalid(m) if m.contains("protobuf")), "{e}");
    let e = run(WireVersion::V2, &snappy(b"\x22\x05ab"), 4).unwrap_err();
    assert!(matches!(&e, Error::Invalid(m) if m.contains("protobuf")), "{e}");
}

#[test]
fn size_limits_are_413() {
    let big = Bytes::from(vec![0u8; LIMITS.max_request_bytes + 1]);
    assert!(matches!(decompress(&big, &LIMITS), Err(Error::TooLarge(_))));
    // Small on the wire, huge once decompressed.
    let bomb = snappy(&vec![0u8; LIMITS.max_decompressed_bytes + 1]);
    assert!(bomb.len() < LIMITS.max_request_bytes);
    assert!(matches!(decompress(&bomb, &LIMITS), Err(Error::TooLarge(_))));
}

#[test]
fn invalid_series_are_refused_and_the_rest_kept() {
    let body = v1_body(vec![
        series(&[("job", "a")], &[(1, 1.0)]),
        series(&[("__name__", "up"), ("job", "a"), ("job", "b")], &[(1, 1.0)]),
        series(&[("__name__", "up"), ("bad-name", "a")], &[(1, 1.0)]),
        series(&[("__name__", "up"), ("job", "ok")], &[(1, 1.0), (2, 1.0)]),
    ]);
    let r = run(WireVersion::V1, &body, 4).unwrap();
    assert_eq!(r.invalid_series, 3);
    assert_eq!(r.invalid_samples, 3);
    assert_eq!(r.samples, 2);
    assert!(r.errors[0].contains("no metric name"), "{:?}", r.errors);
    assert!(r.errors[1].contains("duplicate label name"), "{:?}", r.errors);
    assert!(r.errors[2].contains("invalid label name"), "{:?}", r.errors);
}

#[test]
fn histograms_and_exemplars_are_counted() {
    let mut s = series(&[("__name__", "x")], &[(1, 1.0)]);
    s.histograms.push(v1::Histogram { timestamp: 1 });
    s.exemplars.push(v1::Exemplar {
        labels: vec![lbl("trace_id", "abc")],
        value: 1.0,
        timestamp: 1,
    });
    let r = run(WireVersion::V1, &v1_body(vec![s]), 4).unwrap();
    assert_eq!((r.samples, r.histograms_dropped, r.exemplars_dropped), (1, 1, 1));
}

fn v2_body(symbols: &[&str], ts: Vec<v2::TimeSeries>) -> Bytes {
    let req = v2::Request {
        symbols: symbols.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect(),
        timeseries: ts,
    };
    snappy(&req.encode_to_vec())
}

#[test]
fn v2_symbols_and_metadata() {
    let syms =
        ["", "__name__", "http_requests_total", "job", "api", "Requests served.", "requests"];
    let ts = v2::TimeSeries {
        labels_refs: vec![1, 2, 3, 4],
        samples: vec![v2::Sample { value: 3.0, timestamp: 10, start_timestamp: 0 }],
        metadata: Some(v2::Metadata { r#type: 1, help_ref: 5, unit_ref: 6 }),
        ..Default::default()
    };
    let r = run(WireVersion::V2, &v2_body(&syms, vec![ts]), 8).unwrap();
    assert_eq!(r.samples, 1);
    let s = all_series(&r);
    assert_eq!(labels_of(&s[0]), [&b"__name__"[..], b"http_requests_total", b"job", b"api"]);
    let md: Vec<MetricMetadata> = decoded(&r).into_iter().flat_map(|(_, b)| b.metadata).collect();
    assert_eq!(md.len(), 1);
    assert_eq!(md[0].metric_family_name, "http_requests_total");
    assert_eq!(md[0].r#type, "counter");
    assert_eq!(md[0].help, "Requests served.");
    assert_eq!(md[0].unit, "requests");
}

/// A 2.0 body whose series all share one long symbol: small on the wire and once
/// decompressed, but every series copies the symbol into its log entry.
#[test]
fn v2_symbols_that_expand_past_the_limit_are_413() {
    let long = "x".repeat(100_000);
    let series = |help_ref| v2::TimeSeries {
        labels_refs: vec![1, 2, 3, 4],
        samples: vec![v2::Sample { value: 1.0, timestamp: 1, start_timestamp: 0 }],
        metadata: Some(v2::Metadata { r#type: 1, help_ref, unit_ref: 0 }),
        ..Default::default()
    };
    let syms = ["", "__name__", "up", "a", long.as_str()];
    let big_label = v2_body(&syms, (0..100).map(|_| series(0)).collect());
    assert!(big_label.len() < LIMITS.max_request_bytes);
    let e = run(WireVersion::V2, &big_label, 4).unwrap_err();
    assert!(matches!(&e, Error::TooLarge(m) if m.contains("label references")), "{e}");
    // The same through the metadata's help text.
    let syms = ["", "__name__", "up", "a", "b", long.as_str()];
    let big_help = v2_body(&syms, (0..100).map(|_| series(5)).collect());
    assert!(matches!(run(WireVersion::V2, &big_help, 4), Err(Error::TooLarge(_))));
    // Fewer of them fit.
    let r = run(WireVersion::V2, &v2_body(&syms, (0..20).map(|_| series(5)).collect()), 4);
    assert_eq!(r.unwrap().samples, 20);
}

/// A 1.0 body just under the decompressed limit is never refused for its entries' size.
#[test]
fn v1_bodies_within_the_limit_route() {
    let value = "v".repeat(200);
    let ts: Vec<_> = (0..17_000)
        .map(|i| series(&[("__name__", "up"), ("id", &format!("{i}{value}"))], &[(1, 1.0)]))
        .collect();
    let raw = WriteRequest { timeseries: ts, metadata: vec![] }.encode_to_vec();
    assert!(raw.len() > LIMITS.max_decompressed_bytes * 9 / 10);
    assert!(raw.len() <= LIMITS.max_decompressed_bytes);
    assert_eq!(run(WireVersion::V1, &snappy(&raw), 4).unwrap().samples, 17_000);
}

#[test]
fn v2_bad_references() {
    let syms = ["", "__name__", "up"];
    let out_of_range = v2::TimeSeries { labels_refs: vec![1, 9], ..Default::default() };
    let odd = v2::TimeSeries { labels_refs: vec![1, 2, 1], ..Default::default() };
    let good = v2::TimeSeries {
        labels_refs: vec![1, 2],
        samples: vec![v2::Sample { value: 1.0, timestamp: 1, start_timestamp: 0 }],
        ..Default::default()
    };
    let r = run(WireVersion::V2, &v2_body(&syms, vec![out_of_range, odd, good]), 2).unwrap();
    assert_eq!(r.invalid_series, 2);
    assert_eq!(r.samples, 1);
    assert!(r.errors[0].contains("out of range"), "{:?}", r.errors);
    let e = run(WireVersion::V2, &v2_body(&["x"], vec![]), 2).unwrap_err();
    assert!(e.to_string().contains("symbols[0]"));
}

proptest! {
    /// The label reader, shortcut included, agrees with the generated decoder on any bytes
    /// and on well-formed labels of every length around the one-byte limit.
    #[test]
    fn label_reader_matches_prost(
        bytes in prop::collection::vec(any::<u8>(), 0..48),
        name in prop::collection::vec(any::<u8>(), 0..140),
        value in prop::collection::vec(any::<u8>(), 0..140),
    ) {
        let label = v1::Label { name: Bytes::from(name), value: Bytes::from(value) };
        let mut extra = label.encode_to_vec();
        extra.extend_from_slice(&[0x0a, 1, b'z']);
        for msg in [bytes, label.encode_to_vec(), extra] {
            let ours = decode_v1_label(&msg).ok().map(|(n, v)| (n.to_vec(), v.to_vec()));
            let want = v1::Label::decode(&msg[..]).ok().map(|l| (l.name.to_vec(), l.value.to_vec()));
            prop_assert_eq!(ours, want);
        }
    }

    /// The sample shortcut only answers for bytes the generated decoder reads the same, and
    /// answers for every sample with both fields set.
    #[test]
    fn sample_reader_matches_prost(
        bytes in prop::collection::vec(any::<u8>(), 0..24),
        t in any::<i64>(),
        v in any::<f64>(),
    ) {
        let sample = v1::Sample { value: v, timestamp: t };
        let mut long = sample.encode_to_vec();
        long.push(0);
        for msg in [bytes, sample.encode_to_vec(), long] {
            if let Some((t, v)) = short_sample(&msg) {
                let want = v1::Sample::decode(&msg[..]).unwrap();
                prop_assert_eq!((t, v.to_bits()), (want.timestamp, want.value.to_bits()));
            }
        }
        // (proto3 leaves zeros, -0.0 included, off the wire.)
        if t != 0 && v != 0.0 {
            prop_assert_eq!(short_sample(&sample.encode_to_vec()).map(|(t, v)| (t, v.to_bits())), Some((t, v.to_bits())));
        }
    }

    /// Routing keeps every sample, never splits a series, and is stable across requests.
    #[test]
    fn routing_is_lossless_and_stable(
        n in 1usize..40,
        shards in 1u32..20,
        seed in any::<u64>(),
    ) {
        let ts: Vec<v1::TimeSeries> = (0..n)
            .map(|i| {
                let v = format!("{}", seed.wrapping_add(i as u64));
                series(&[("__name__", "m"), ("i", &v)], &[(i as i64, i as f64), (i as i64 + 1, 0.5)])
            })
            .collect();
        let body = v1_body(ts);
        let a = run(WireVersion::V1, &body, shards).unwrap();
        let b = run(WireVersion::V1, &body, shards).unwrap();
        prop_assert_eq!(a.samples, 2 * n as u64);
        let count: usize = all_series(&a).iter().map(|s| s.timestamps.len()).sum();
        prop_assert_eq!(count, 2 * n);
        let shard_sets = |r: &Routed| -> Vec<(u32, Vec<u64>)> {
            decoded(r).iter().map(|(s, b)| (s.0, b.series.iter().map(|x| x.key_hash).collect())).collect()
        };
        prop_assert_eq!(shard_sets(&a), shard_sets(&b));
        for (s, _) in &a.batches {
            prop_assert!(s.0 < shards);
        }
    }

    /// Whichever way a series' labels travel into the log entry (copied as the request held
    /// them, or normalised pair by pair), the entry holds exactly the normalised labels' key
    /// and its hash, for the generated decoder and for the shard's own reader alike.
    #[test]
    fn log_entries_hold_the_normalised_labels(
        labels in prop::collection::vec(("[a-d]{1,2}", "[ -~]{0,3}|[a-z]{120,140}"), 0..6),
        sorted in any::<bool>(),
    ) {
        let mut labels: Vec<(String, String)> = labels;
        labels.push(("__name__".into(), "m".into()));
        if sorted {
            labels.sort();
            labels.dedup_by(|a, b| a.0 == b.0);
        }
        let pairs: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let r = run(WireVersion::V1, &v1_body(vec![series(&pairs, &[(1, 1.0)])]), 3).unwrap();
        let mut want: Vec<(&[u8], &[u8])> =
            pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        if crate::validate::check_labels(&mut want).is_err() {
            prop_assert_eq!(r.invalid_series, 1);
            return Ok(());
        }
        let flat: Vec<Vec<u8>> = want.iter().flat_map(|(n, v)| [n.to_vec(), v.to_vec()]).collect();
        let s = all_series(&r);
        prop_assert_eq!(s.len(), 1);
        prop_assert_eq!(labels_of(&s[0]), flat.clone());
        let mut key = Vec::new();
        strata_model::encode_key(want.iter().copied(), &mut key);
        prop_assert_eq!(&s[0].label_pairs, &key);
        prop_assert_eq!(s[0].key_hash, strata_model::key_hash(&key));
        let (_, entry) = &r.batches[0];
        let d = crate::batch::DecodedBatch::decode(entry).unwrap();
        let got: Vec<(u64, &[u8])> = d.series().map(|(h, k, _, _)| (h, k)).collect();
        prop_assert_eq!(got, vec![(strata_model::key_hash(&key), &key[..])]);
    }
}
