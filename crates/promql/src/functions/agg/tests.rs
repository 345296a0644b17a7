use super::*;

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

fn sum(values: &[f64]) -> f64 {
    let mut s = KahanSum::default();
    for &v in values {
        s.add(v);
    }
    s.value()
}

#[test]
fn kahan_sum_keeps_small_terms_next_to_huge_ones() {
    // functions.test: sum_over_time of 1 1e100 1 -1e100 is 2.
    assert_eq!(sum(&[1.0, 1e100, 1.0, -1e100]), 2.0);
    assert_eq!(sum(&[]), 0.0);
    assert_eq!(sum(&[1.0, f64::INFINITY, 2.0]), f64::INFINITY);
    assert!(sum(&[f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    assert!(sum(&[1.0, f64::NAN]).is_nan());
}

#[test]
fn mean_matches_avg_over_time_expectations() {
    assert_eq!(mean([1.0, 2.0, 3.0, 4.0, 5.0]), 3.0);
    assert_eq!(mean([1.0, 1e100, 1.0, -1e100]), 0.5);
    assert!(mean(std::iter::empty()).is_nan());
    // Overflowing sums switch to the incremental mean.
    #[allow(clippy::excessive_precision)] // As written in functions.test.
    let big = 9.988465674311579e307;
    assert_eq!(mean([big, big]), big);
    assert_eq!(mean([-big, -big, -big]), -big);
    assert_eq!(mean([f64::INFINITY, 0.0, f64::INFINITY]), f64::INFINITY);
    assert_eq!(mean([1.0, 2.0, 3.0, f64::NEG_INFINITY, f64::NEG_INFINITY]), f64::NEG_INFINITY);
    assert!(mean([1.0, 2.0, 3.0, f64::INFINITY, f64::NEG_INFINITY]).is_nan());
    assert!(mean([1.0, 2.0, f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY]).is_nan());
    assert!(mean([1.0, 2.0, 3.0, f64::NAN]).is_nan());
    // Exactness for constant series (functions.test relies on `== 52`).
    assert_eq!(mean(std::iter::repeat_n(52.0, 12)), 52.0);
    assert!(close(mean([1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6]), 1.6666666666666675e9));
    assert!(close(mean([1.78264e50, 0.76342771, 1.9592258, 7.69805412, 458.90154]), 3.56528e49));
    let m7 = [-1.78264e50, 0.76342771, 1.9592258, -2.258e220, 7.69805412, -458.90154];
    assert!(close(mean(m7), -3.76333333333333e219));
}

#[test]
fn stdvar_and_stddev_aggregation() {
    // aggregators.test: stdvar by (instance) at 50m over 100, 300, 500, 700.
    assert_eq!(stdvar([100.0, 300.0, 500.0, 700.0]), 50000.0);
    assert!(close(stddev([100.0, 300.0, 500.0, 700.0]), 223.60679774998));
    assert_eq!(stddev([1.0, 2.0]), 0.5);
    assert_eq!(stdvar([5.0]), 0.0);
    assert!(stdvar([f64::NAN]).is_nan());
    assert!(stdvar([f64::INFINITY]).is_nan());
    assert!(stdvar([1.0, 2.0, f64::NAN]).is_nan());
    assert!(stdvar([f64::NAN, 1.0, 2.0]).is_nan());
    assert!(stdvar(std::iter::empty()).is_nan());
    assert_eq!(stdvar([13.3, 13.3, 13.3]), 0.0);
}

#[test]
fn stdvar_over_time_is_kahan_welford() {
    // functions.test: stddev_over_time of 0 8 8 2 3 is 3.249615 (to 1e-6).
    assert!((stdvar_over_time([0.0, 8.0, 8.0, 2.0, 3.0]).sqrt() - 3.249615).abs() < 1e-6);
    let v = 1.5990505637277868;
    assert_eq!(stdvar_over_time([v, v, v]), 0.0);
    assert_eq!(stdvar_over_time([1.0, 1.0, 1.0]), 0.0);
}

#[test]
fn quantile_interpolates_between_ranks() {
    assert_eq!(quantile(0.5, &mut [1.0, 0.0]), 0.5);
    assert_eq!(quantile(0.8, &mut [0.0, 1.0, 2.0]), 1.6);
    assert!(close(quantile(0.8, &mut [4.0, 1.0, 0.0]), 2.8));
    assert_eq!(quantile(0.75, &mut [0.0, 1.0, 4.0]), 2.5);
    assert_eq!(quantile(0.0, &mut [3.0, 1.0, 2.0]), 1.0);
    assert_eq!(quantile(1.0, &mut [3.0, 1.0, 2.0]), 3.0);
    assert_eq!(quantile(-0.1, &mut [1.0]), f64::NEG_INFINITY);
    assert_eq!(quantile(1.1, &mut [1.0]), f64::INFINITY);
    assert!(quantile(f64::NAN, &mut [1.0]).is_nan());
    assert!(quantile(0.5, &mut []).is_nan());
    // aggregators.test: NaN sorts as the smallest value.
    assert!(close(quantile(0.8, &mut [0.0, 1.0, f64::NAN]), 0.6));
    assert!(quantile(0.2, &mut [0.0, 1.0, f64::NAN]).is_nan());
}

fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
    pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
}

const INF: f64 = f64::INFINITY;

#[test]
fn bucket_quantile_interpolates() {
    // histograms.test testhistogram3_bucket{start="negative"} at 50m.
    let neg = buckets(&[(0.3, 20.0), (-0.25, 0.0), (-0.2, 10.0), (-0.1, 20.0), (INF, 20.0)]);
    let q = |q: f64| bucket_quantile(q, &mut neg.clone()).value;
    assert_eq!(q(0.0), -0.25);
    assert!(close(q(0.25), -0.225));
    assert!(close(q(1.0), -0.1));
    // start="positive": 0 0, 0.1 50, 0.2 70, 1 110, +Inf 110.
    let pos = buckets(&[(0.0, 0.0), (0.1, 50.0), (0.2, 70.0), (1.0, 110.0), (INF, 110.0)]);
    let q = |q: f64| bucket_quantile(q, &mut pos.clone()).value;
    assert_eq!(q(0.0), 0.0);
    assert!(close(q(0.25), 0.055));
    assert!(close(q(0.5), 0.125));
    assert!(close(q(0.75), 0.45));
    assert_eq!(q(1.0), 1.0);
}

#[test]
fn bucket_quantile_special_cases() {
    let b = buckets(&[(1.0, 5.0), (INF, 10.0)]);
    let q = |q: f64, b: &[Bucket]| bucket_quantile(q, &mut b.to_vec()).value;
    assert_eq!(q(-0.1, &b), f64::NEG_INFINITY);
    assert_eq!(q(1.01, &b), INF);
    assert!(q(f64::NAN, &b).is_nan());
    // Rank in the +Inf bucket: the second-highest bound.
    assert_eq!(q(0.9, &b), 1.0);
    assert!(q(0.5, &buckets(&[(1.0, 5.0), (2.0, 10.0)])).is_nan());
    assert!(q(0.5, &buckets(&[(INF, 10.0)])).is_nan());
    assert!(q(0.5, &buckets(&[(1.0, 0.0), (INF, 0.0)])).is_nan());
    assert!(q(0.5, &[]).is_nan());
    // Duplicate bounds are merged: 0.2 appears as 1 + 1 + 1.
    let mixed = buckets(&[(0.1, 1.0), (0.2, 1.0), (0.2, 1.0), (0.2, 1.0), (INF, 4.0)]);
    assert!(close(q(0.5, &mixed), 0.15));
}

#[test]
fn bucket_quantile_repairs_monotonicity() {
    // histograms.test nonmonotonic_bucket at 50m.
    let b = buckets(&[
        (0.1, 20.0),
        (1.0, 10.0),
        (10.0, 50.0),
        (100.0, 40.0),
        (1000.0, 90.0),
        (INF, 80.0),
    ]);
    for (q, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
        let got = bucket_quantile(q, &mut b.clone());
        assert!(close(got.value, want), "q={q}: {got:?}");
        assert!(got.forced_monotonicity);
    }
    // Differences within floating point noise are flattened silently.
    let noisy = buckets(&[(1.0, 10.0), (2.0, 10.0 - 1e-13), (INF, 20.0)]);
    let got = bucket_quantile(0.5, &mut noisy.clone());
    assert!(!got.forced_monotonicity);
    assert_eq!(got.value, 1.0);
    let ok = buckets(&[(1.0, 10.0), (2.0, 15.0), (INF, 20.0)]);
    assert!(!bucket_quantile(0.5, &mut ok.clone()).forced_monotonicity);
}
