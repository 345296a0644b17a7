//! Append semantics; matchers and memory in the submodules.

use strata_model::{MatchOp, RejectReason, STALE_NAN_BITS};

use super::*;

/// The series key of `pairs`, in the order given (not sorted, so bad orders can be tested).
fn flat(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut key = Vec::new();
    strata_model::encode_key(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), &mut key);
    key
}

fn hash_of(key: &[u8]) -> u64 {
    key_hash(key)
}

fn app(
    head: &mut Head,
    tenant: &str,
    pairs: &[(&str, &str)],
    ts: &[i64],
    vs: &[f64],
) -> ApplyReport {
    let labels = flat(pairs);
    let mut r = ApplyReport::default();
    head.append(tenant, hash_of(&labels), &labels, ts, vs, &mut r);
    r
}

fn m(op: MatchOp, name: &str, value: &str) -> Matcher {
    Matcher::new(op, name, value).unwrap()
}

fn rejected(r: &ApplyReport, reason: RejectReason) -> u64 {
    r.rejected.iter().filter(|(x, _)| *x == reason).map(|(_, n)| n).sum()
}

/// The label sets selected, each as `name=value,...`, in select order.
fn selected(head: &Head, tenant: &str, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
    head.select(tenant, ms, mint, maxt)
        .into_iter()
        .map(|s| {
            let l = head.series_labels(tenant, s).unwrap();
            l.iter().map(|l| format!("{}={}", l.name, l.value)).collect::<Vec<_>>().join(",")
        })
        .collect()
}

fn all_samples(head: &Head, tenant: &str, pairs: &[(&str, &str)]) -> Vec<(i64, u64)> {
    let ms: Vec<Matcher> = pairs.iter().map(|(n, v)| m(MatchOp::Equal, n, v)).collect();
    let refs = head.select(tenant, &ms, i64::MIN, i64::MAX);
    assert_eq!(refs.len(), 1);
    head.samples(tenant, refs[0], i64::MIN, i64::MAX).iter().map(|s| (s.t, s.v.to_bits())).collect()
}

const UP: &[(&str, &str)] = &[("__name__", "up"), ("job", "node")];

#[test]
fn appends_across_chunks_and_reads_ranges() {
    let mut head = Head::new(HeadConfig { samples_per_chunk: 3, ..HeadConfig::default() });
    let ts: Vec<i64> = (0..10).map(|i| 1000 + i * 15).collect();
    let vs: Vec<f64> = (0..10).map(f64::from).collect();
    let r = app(&mut head, "t", UP, &ts, &vs);
    assert_eq!((r.appended, r.series_created, r.rejected_total()), (10, 1, 0));
    let st = head.stats();
    assert_eq!((st.tenants, st.series, st.samples, st.chunks), (1, 1, 10, 4));
    assert!(st.bytes > 0);
    let s = head.select("t", &[], 0, i64::MAX)[0];
    let got: Vec<(i64, f64)> =
        head.samples("t", s, 1030, 1090).iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(got, vec![(1030, 2.0), (1045, 3.0), (1060, 4.0), (1075, 5.0), (1090, 6.0)]);
    assert_eq!(head.samples("t", s, 2000, 3000), vec![]);
    assert_eq!(head.samples("t", s, 3000, 2000), vec![]);
    assert_eq!(head.samples("t", SeriesRef(7), 0, i64::MAX), vec![]);
    assert_eq!(head.min_max_time("t"), Some((1000, 1135)));
    assert_eq!(head.min_max_time("other"), None);
    // Appending again finds the same series.
    let r = app(&mut head, "t", UP, &[2000], &[1.0]);
    assert_eq!((r.appended, r.series_created), (1, 0));
    assert_eq!(head.stats().series, 1);
}

#[test]
fn duplicates_follow_prometheus() {
    let mut head = Head::default();
    app(&mut head, "t", UP, &[1000], &[1.0]);
    let r = app(&mut head, "t", UP, &[1000, 1000, 1000], &[1.0, 2.0, 1.0]);
    assert_eq!((r.appended, r.duplicates_ignored), (0, 2));
    assert_eq!(rejected(&r, RejectReason::DuplicateTimestamp), 1);
    assert_eq!(
        r.examples,
        vec![r#"duplicate sample for timestamp for series {__name__="up", job="node"}"#.to_string()]
    );
    // -0.0 and 0.0 are different bits.
    app(&mut head, "t", UP, &[2000], &[0.0]);
    let r = app(&mut head, "t", UP, &[2000], &[-0.0]);
    assert_eq!(rejected(&r, RejectReason::DuplicateTimestamp), 1);
    assert_eq!(all_samples(&head, "t", UP), vec![(1000, 1.0f64.to_bits()), (2000, 0)]);
}

#[test]
fn stale_marker_is_only_equal_to_itself() {
    let mut head = Head::default();
    let stale = f64::from_bits(STALE_NAN_BITS);
    app(&mut head, "t", UP, &[1000, 2000], &[stale, f64::NAN]);
    let r = app(&mut head, "t", UP, &[2000], &[stale]);
    assert_eq!(rejected(&r, RejectReason::DuplicateTimestamp), 1);
    let r = app(&mut head, "t", UP, &[2000], &[f64::NAN]);
    assert_eq!(r.duplicates_ignored, 1);
    app(&mut head, "t", UP, &[3000], &[stale]);
    let r = app(&mut head, "t", UP, &[3000, 3000], &[stale, f64::NAN]);
    assert_eq!((r.duplicates_ignored, rejected(&r, RejectReason::DuplicateTimestamp)), (1, 1));
    assert_eq!(
        all_samples(&head, "t", UP),
        vec![(1000, STALE_NAN_BITS), (2000, f64::NAN.to_bits()), (3000, STALE_NAN_BITS)]
    );
}

#[test]
fn out_of_order_rejected_without_window() {
    let mut head = Head::default();
    let r = app(&mut head, "t", UP, &[1000, 3000, 2000, 4000], &[1.0, 3.0, 2.0, 4.0]);
    assert_eq!((r.appended, rejected(&r, RejectReason::OutOfOrder)), (3, 1));
    assert_eq!(r.examples, vec![r#"out of order sample for series {__name__="up", job="node"}"#]);
    let r = app(&mut head, "t", UP, &[500], &[1.0]);
    assert_eq!(rejected(&r, RejectReason::OutOfOrder), 1);
    assert_eq!(all_samples(&head, "t", UP).len(), 3);
}

#[test]
fn out_of_order_window() {
    let mut head =
        Head::new(HeadConfig { ooo_window_ms: 1000, samples_per_chunk: 2, chunk_range_ms: 0 });
    app(&mut head, "t", UP, &[9000, 9200, 9400, 10000], &[1.0, 2.0, 3.0, 4.0]);
    let r = app(&mut head, "t", UP, &[9500, 9100, 9300, 8999], &[5.0, 6.0, 7.0, 8.0]);
    assert_eq!((r.appended, rejected(&r, RejectReason::TooOld)), (3, 1));
    assert_eq!(r.examples, vec![r#"too old sample for series {__name__="up", job="node"}"#]);
    let r = app(&mut head, "t", UP, &[9500, 9500, 9200, 9200], &[5.0, 0.5, 2.0, 0.5]);
    assert_eq!(r.duplicates_ignored, 2, "duplicates of out-of-order and in-order samples");
    assert_eq!(rejected(&r, RejectReason::DuplicateTimestamp), 2);
    let got: Vec<(i64, f64)> =
        all_samples(&head, "t", UP).into_iter().map(|(t, v)| (t, f64::from_bits(v))).collect();
    let want = [
        (9000, 1.0),
        (9100, 6.0),
        (9200, 2.0),
        (9300, 7.0),
        (9400, 3.0),
        (9500, 5.0),
        (10000, 4.0),
    ];
    assert_eq!(got, want);
    let s = head.select("t", &[], 0, i64::MAX)[0];
    let mid: Vec<i64> = head.samples("t", s, 9250, 9450).iter().map(|s| s.t).collect();
    assert_eq!(mid, vec![9300, 9400]);
    // Only an out-of-order sample lies in this range.
    assert_eq!(head.select("t", &[], 9050, 9150).len(), 1);
    assert_eq!(head.stats().samples, 7);

    // The window trails the tenant's newest sample, not the series'.
    app(&mut head, "t", &[("__name__", "other")], &[20_000], &[1.0]);
    let r = app(&mut head, "t", UP, &[9600, 19_500], &[1.0, 1.0]);
    assert_eq!(rejected(&r, RejectReason::TooOld), 1);
    assert_eq!(r.appended, 1);
    assert_eq!(head.min_max_time("t"), Some((9000, 20_000)));
}

#[test]
fn out_of_order_samples_in_any_order_are_kept_sorted() {
    let mut head = Head::new(HeadConfig {
        ooo_window_ms: 1_000_000,
        samples_per_chunk: 120,
        chunk_range_ms: 0,
    });
    app(&mut head, "t", UP, &[1_000_000], &[0.0]);
    // Newest first, as a backfill sent backwards would be; then a second pass with the
    // same values (duplicates, ignored) and a conflicting one.
    let ts: Vec<i64> = (0..30_000).rev().map(|k| 100_000 + k * 10).collect();
    let vs: Vec<f64> = ts.iter().map(|&t| t as f64).collect();
    assert_eq!(app(&mut head, "t", UP, &ts, &vs).appended, 30_000);
    let r = app(&mut head, "t", UP, &ts[..100], &vs[..100]);
    assert_eq!((r.appended, r.duplicates_ignored), (0, 100));
    let r = app(&mut head, "t", UP, &[100_010], &[-1.0]);
    assert_eq!(rejected(&r, RejectReason::DuplicateTimestamp), 1);
    let got = all_samples(&head, "t", UP);
    assert_eq!(got.len(), 30_001);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "sorted, unique times");
    assert_eq!(got[0], (100_000, 100_000f64.to_bits()));
    assert_eq!(head.min_max_time("t"), Some((100_000, 1_000_000)));
    // A flush boundary drops the older half.
    head.set_min_valid_time(250_000);
    head.truncate_before(250_000);
    assert_eq!(all_samples(&head, "t", UP).len(), 15_000 + 1);
}

#[test]
fn hash_collisions_keep_series_apart() {
    let mut head = Head::default();
    let a = flat(&[("__name__", "a")]);
    let b = flat(&[("__name__", "b")]);
    let mut r = ApplyReport::default();
    head.append("t", 42, &a, &[1000], &[1.0], &mut r);
    head.append("t", 42, &b, &[1000], &[2.0], &mut r);
    head.append("t", 42, &a, &[2000], &[3.0], &mut r);
    head.append("t", 42, &b, &[2000], &[4.0], &mut r);
    assert_eq!((r.series_created, r.appended), (2, 4));
    assert_eq!(
        all_samples(&head, "t", &[("__name__", "a")]),
        vec![(1000, 1.0f64.to_bits()), (2000, 3.0f64.to_bits())]
    );
    assert_eq!(
        all_samples(&head, "t", &[("__name__", "b")]),
        vec![(1000, 2.0f64.to_bits()), (2000, 4.0f64.to_bits())]
    );
}

#[test]
fn invalid_label_sets_are_skipped() {
    let mut head = Head::default();
    let mut cut = flat(&[("__name__", "up")]);
    cut.pop();
    let mut not_utf8 = Vec::new();
    strata_model::encode_key([(&b"__name__"[..], &[0xff, 0xfe][..])], &mut not_utf8);
    let bad: Vec<Vec<u8>> = vec![
        vec![],
        cut,
        not_utf8,
        flat(&[("job", "x"), ("__name__", "up")]),
        flat(&[("a", "x"), ("a", "y")]),
        flat(&[("", "x")]),
    ];
    for labels in &bad {
        let mut r = ApplyReport::default();
        head.append("t", 1, labels, &[1000], &[1.0], &mut r);
        assert_eq!((r.appended, r.series_created), (0, 0));
        assert_eq!(r.examples.len(), 1, "{:?}", r.examples);
    }
    let mut r = ApplyReport::default();
    head.append("t", 1, &bad[2], &[1000], &[1.0], &mut r);
    assert!(r.examples[0].starts_with("invalid UTF-8 in labels for series {__name__="));
    assert_eq!(head.stats(), HeadStats::default());
}

#[test]
fn no_samples_no_series() {
    let mut head = Head::default();
    let r = app(&mut head, "t", UP, &[], &[]);
    assert_eq!(r, ApplyReport::default());
    app(&mut head, "t", UP, &[1000, 2000, 3000], &[1.0]);
    assert_eq!(head.stats().samples, 1, "extra timestamps ignored");
    app(&mut head, "t", UP, &[4000], &[1.0, 2.0]);
    assert_eq!(head.stats().samples, 2, "extra values ignored");
    assert_eq!(head.tenants().collect::<Vec<_>>(), vec!["t"]);
}

#[test]
fn head_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Head>();
}

mod memory;
mod select;

#[test]
fn truncation_drops_flushed_chunks_and_empty_series() {
    let mut head = Head::new(HeadConfig { samples_per_chunk: 10, ..HeadConfig::default() });
    let mut r = ApplyReport::default();
    let old = Labels::from_pairs([("__name__", "old"), ("job", "a")]);
    let both = Labels::from_pairs([("__name__", "both"), ("job", "a")]);
    let ts: Vec<i64> = (0..30).collect();
    let vs: Vec<f64> = ts.iter().map(|&t| t as f64).collect();
    head.append_labels("t", &old, &ts[..5], &vs[..5], &mut r);
    head.append_labels("t", &both, &ts, &vs, &mut r);
    head.append_labels("gone", &old, &ts[..3], &vs[..3], &mut r);
    head.truncate_before(15);
    assert_eq!(head.tenants().collect::<Vec<_>>(), vec!["t"]);
    let all = [Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()];
    let refs = head.select("t", &all, i64::MIN, i64::MAX);
    assert_eq!(refs.len(), 1);
    assert_eq!(head.series_labels("t", refs[0]), Some(both.clone()));
    assert!(head.series_has_labels("t", refs[0], &both));
    for other in [
        old.clone(),
        Labels::from_pairs([("__name__", "both")]),
        Labels::from_pairs([("__name__", "both"), ("job", "a"), ("x", "y")]),
    ] {
        assert!(!head.series_has_labels("t", refs[0], &other), "{other:?}");
    }
    assert!(!head.series_has_labels("gone", refs[0], &both));
    // Chunks of 10: [0,9] dropped, [10,19] straddles 15 and stays, [20,29] stays.
    let s = head.samples("t", refs[0], i64::MIN, i64::MAX);
    assert_eq!(s.first().map(|s| s.t), Some(10));
    assert_eq!(s.len(), 20);
    // The rebuilt index still finds it and appends go on.
    let m = [Matcher::new(MatchOp::Equal, "job", "a").unwrap()];
    assert_eq!(head.select("t", &m, 0, 100).len(), 1);
    let mut r = ApplyReport::default();
    head.append_labels("t", &both, &[30], &[30.0], &mut r);
    head.append_labels("t", &old, &[31], &[1.0], &mut r);
    assert_eq!((r.appended, r.series_created), (2, 1));
}

#[test]
fn samples_before_the_min_valid_time_are_out_of_bounds() {
    let mut head = Head::new(HeadConfig::default());
    head.set_min_valid_time(100);
    head.set_min_valid_time(50);
    assert_eq!(head.min_valid_time(), 100);
    let l = Labels::from_pairs([("__name__", "x")]);
    let mut r = ApplyReport::default();
    head.append_labels("t", &l, &[90, 100, 110], &[1.0, 2.0, 3.0], &mut r);
    assert_eq!(r.appended, 2);
    assert_eq!(rejected(&r, RejectReason::OutOfBounds), 1);
    assert!(r.examples[0].contains("out of bounds"), "{:?}", r.examples);
    let mut r = ApplyReport::default();
    head.append_labels("t", &Labels::from_pairs([("__name__", "y")]), &[99], &[1.0], &mut r);
    assert_eq!((r.appended, r.series_created), (0, 0));
    assert!(head.select("t", &[], i64::MIN, i64::MAX).len() == 1);
}

#[test]
fn chunks_are_cut_at_range_boundaries() {
    let mut head = Head::new(HeadConfig { chunk_range_ms: 10, ..HeadConfig::default() });
    let l = Labels::from_pairs([("__name__", "x")]);
    let ts: Vec<i64> = (0..35).collect();
    let vs: Vec<f64> = ts.iter().map(|&t| t as f64).collect();
    let mut r = ApplyReport::default();
    head.append_labels("t", &l, &ts, &vs, &mut r);
    assert_eq!(head.stats().chunks, 4);
    head.truncate_before(20);
    let refs = head.select("t", &[], i64::MIN, i64::MAX);
    let s = head.samples("t", refs[0], i64::MIN, i64::MAX);
    assert_eq!(s.first().map(|s| s.t), Some(20));
    assert_eq!(s.len(), 15);
}
