//! Numeric helpers shared by aggregations and functions.

use std::cmp::Ordering;

/// One step of Kahan-Babuska-Neumaier summation: adds `inc` to `sum` with compensation `c`
/// and returns the new `(sum, c)`. Once the sum overflows to ±Inf the compensation is reset
/// to 0 so that `sum + c` does not turn into NaN (Prometheus `kahansum.Inc`).
pub fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        // Neumaier: the compensation is taken from the smaller of the two terms.
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Kahan-Babuska-Neumaier compensated summation, as Prometheus uses for `sum`,
/// `avg` and `sum_over_time`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn add(&mut self, v: f64) {
        (self.sum, self.c) = kahan_inc(v, self.sum, self.c);
    }

    pub fn value(&self) -> f64 {
        // An overflowed sum stays ±Inf; adding the compensation could only make it NaN.
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.c
        }
    }
}

/// The arithmetic mean as Prometheus computes it for `avg` and `avg_over_time`: a Kahan sum
/// divided by the count while the sum stays finite, switching to an incremental (Kahan
/// compensated) mean from the value that would overflow it. NaN when `values` is empty.
pub fn mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return f64::NAN;
    };
    let (mut sum, mut c, mut count) = (first, 0.0, 1.0);
    let mut incremental: Option<f64> = None; // the running mean, once summing would overflow
    for v in values {
        count += 1.0;
        let mean = match incremental {
            Some(mean) => mean,
            None => {
                let (new_sum, new_c) = kahan_inc(v, sum, c);
                if !new_sum.is_infinite() {
                    (sum, c) = (new_sum, new_c);
                    continue;
                }
                c /= count - 1.0;
                sum / (count - 1.0)
            }
        };
        let q = (count - 1.0) / count;
        let (new_mean, new_c) = kahan_inc(v / count, q * mean, q * c);
        incremental = Some(new_mean);
        c = new_c;
    }
    match incremental {
        Some(mean) => mean + c,
        None => sum / count + c / count,
    }
}

/// The population variance as the `stdvar`/`stddev` aggregations compute it (Welford's
/// online algorithm, seeded with the first value, NaN when that value is NaN or ±Inf).
/// NaN when `values` is empty.
pub fn stdvar(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return f64::NAN;
    };
    let mut acc = if first.is_finite() { 0.0 } else { f64::NAN };
    let (mut mean, mut count) = (first, 1.0);
    for v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        acc += delta * (v - mean);
    }
    acc / count
}

/// The population standard deviation: the square root of [`stdvar`].
pub fn stddev(values: impl IntoIterator<Item = f64>) -> f64 {
    stdvar(values).sqrt()
}

/// The population variance as `stdvar_over_time`/`stddev_over_time` compute it: Welford's
/// algorithm with Kahan-compensated mean and sum of squares. NaN when `values` is empty.
pub fn stdvar_over_time(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Orders floats ascending with NaN before everything, as Prometheus's value heap sorts.
fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// The φ-quantile of `values` (sorted in place) as Prometheus's `quantile`
/// aggregation and `quantile_over_time` compute it: NaN when empty or φ is NaN,
/// -Inf for φ < 0, +Inf for φ > 1, linear interpolation between closest ranks otherwise.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// One classic histogram bucket: upper bound `le` and cumulative count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub upper: f64,
    pub count: f64,
}

/// The outcome of [`bucket_quantile`]: the value and the conditions Prometheus annotates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketQuantile {
    pub value: f64,
    /// Counts were not monotonic and were fixed up (Prometheus: "input to histogram_quantile
    /// needed to be fixed for monotonicity"), as an info annotation.
    pub forced_monotonicity: bool,
}

/// Relative difference between adjacent bucket counts below which it is taken for floating
/// point noise and silently flattened (Prometheus `smallDeltaTolerance`).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// `histogram_quantile(q, ...)` over one series' classic buckets (any order; sorted in place),
/// exactly as Prometheus computes it, including the +Inf bucket requirement (NaN without it),
/// interpolation within the bucket, the lowest bucket's lower bound of 0 (or the upper bound
/// itself when it is ≤ 0), and monotonicity repair.
pub fn bucket_quantile(q: f64, buckets: &mut [Bucket]) -> BucketQuantile {
    let plain = |value| BucketQuantile { value, forced_monotonicity: false };
    if q.is_nan() {
        return plain(f64::NAN);
    }
    if q < 0.0 {
        return plain(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return plain(f64::INFINITY);
    }
    let Some(len) = sort_and_coalesce(buckets) else {
        return plain(f64::NAN);
    };
    let buckets = &mut buckets[..len];
    let forced = ensure_monotonic(buckets);

    // Prometheus reports no forced monotonicity on these early exits.
    if buckets.len() < 2 {
        return plain(f64::NAN);
    }
    let observations = buckets[buckets.len() - 1].count;
    if observations == 0.0 {
        return plain(f64::NAN);
    }
    let mut rank = q * observations;
    // The first bucket (the +Inf one excluded) whose count reaches the rank, found by binary
    // search like Go's sort.Search so that odd inputs (NaN counts) land where they do there.
    let b = search(buckets.len() - 1, |i| buckets[i].count >= rank);
    let value = if b == buckets.len() - 1 {
        buckets[buckets.len() - 2].upper
    } else if b == 0 && buckets[0].upper <= 0.0 {
        buckets[0].upper
    } else {
        let end = buckets[b].upper;
        let mut count = buckets[b].count;
        let mut start = 0.0;
        if b > 0 {
            start = buckets[b - 1].upper;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        start + (end - start) * (rank / count)
    };
    BucketQuantile { value, forced_monotonicity: forced }
}

/// `histogram_fraction(lower, upper, ...)` over one series' classic `le` buckets, as Prometheus 3.x
/// computes it for classic histograms (promql/quantile.go `BucketFraction`): the estimated
/// fraction of observations between `lower` and `upper`.
///
/// The buckets are sorted in place and same-bound buckets merged, as for [`bucket_quantile`];
/// NaN without a +Inf bucket (or without buckets), NaN when the total count is 0 or either bound
/// is NaN, 0 when `lower >= upper`. Within a bucket the count is interpolated linearly; the lowest
/// bucket spans from 0 when its upper bound is positive, otherwise from -Inf, and a bound falling
/// in a bucket reaching down to -Inf counts that whole bucket (no interpolation over an infinite
/// width; likewise a bound inside the +Inf bucket adds nothing of it). A bound on a bucket
/// boundary takes exactly the counts below it.
///
/// Unlike `histogram_quantile`, Prometheus does not repair non-monotonic counts here (nor
/// annotate them), so neither does this: `forced_monotonicity` is always false.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut [Bucket]) -> BucketQuantile {
    let plain = |value| BucketQuantile { value, forced_monotonicity: false };
    let Some(len) = sort_and_coalesce(buckets) else {
        return plain(f64::NAN);
    };
    let buckets = &buckets[..len];
    // `sort_and_coalesce` guarantees at least the +Inf bucket.
    let total = buckets[len - 1].count;
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return plain(f64::NAN);
    }
    if lower >= upper {
        return plain(0.0);
    }

    // Cumulative count below the current bucket, and the ranks found for each bound.
    let mut below = 0.0;
    let mut lower_rank: Option<f64> = None;
    let mut upper_rank: Option<f64> = None;
    for (i, b) in buckets.iter().enumerate() {
        let start = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let end = b.upper;
        // The rank of `v` inside this bucket; a bucket open to -Inf is taken whole.
        let interpolate = |v: f64| {
            if start == f64::NEG_INFINITY {
                b.count
            } else {
                below + (b.count - below) * (v - start) / (end - start)
            }
        };
        // A bound at or below this bucket's start: everything below the bucket.
        if lower_rank.is_none() && start >= lower {
            lower_rank = Some(below);
        }
        if upper_rank.is_none() && start >= upper {
            upper_rank = Some(below);
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        // A bound strictly inside this bucket.
        if lower_rank.is_none() && start < lower && end > lower {
            lower_rank = Some(interpolate(lower));
        }
        if upper_rank.is_none() && start < upper && end > upper {
            upper_rank = Some(interpolate(upper));
        }
        if lower_rank.is_some() && upper_rank.is_some() {
            break;
        }
        below = b.count;
    }
    // An unset rank, or one above the total, is the total (a NaN rank passes through, as the
    // comparison lets it in Prometheus).
    let clamp = |rank: Option<f64>| match rank {
        Some(r) if r.is_nan() || r <= total => r,
        _ => total,
    };
    plain((clamp(upper_rank) - clamp(lower_rank)) / total)
}

/// Sorts the buckets by upper bound and merges those with the same bound (Prometheus sorts
/// and then coalesces). Returns the number of buckets left at the front, or `None` when the
/// highest bucket is not +Inf (including when there are no buckets).
fn sort_and_coalesce(buckets: &mut [Bucket]) -> Option<usize> {
    // A total order: `le="NaN"` parses, and a comparison that is not one may panic in sort.
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
    match buckets.last() {
        Some(last) if last.upper == f64::INFINITY => Some(coalesce(buckets)),
        _ => None,
    }
}

/// Merges adjacent buckets (already sorted) with the same upper bound, adding their counts.
/// Returns the number of buckets left at the front of `buckets`.
fn coalesce(buckets: &mut [Bucket]) -> usize {
    let Some(&first) = buckets.first() else {
        return 0;
    };
    let mut last = first;
    let mut i = 0;
    for j in 1..buckets.len() {
        let b = buckets[j];
        if b.upper == last.upper {
            last.count += b.count;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    i + 1
}

/// Flattens differences between adjacent counts that are within floating point noise (either
/// direction) and raises any real decrease to the previous count. Returns whether a real
/// decrease was repaired (the condition Prometheus annotates).
fn ensure_monotonic(buckets: &mut [Bucket]) -> bool {
    let Some(first) = buckets.first() else {
        return false;
    };
    let mut forced = false;
    let mut prev = first.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        // `prev` deliberately stays put in both repairs: the envelope is measured against
        // the last accepted count.
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Whether `a` and `b` differ by less than `epsilon` relative to their magnitude
/// (Prometheus `almost.Equal`).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// The smallest index in `0..n` for which `f` is true, assuming `f` is false then true over
/// the range; `n` when it is never true (Go's `sort.Search`).
fn search(n: usize, f: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if f(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests;

/// `bucket_fraction` against every classic (`*_bucket`) `histogram_fraction` eval in
/// shared/conformance/promql/histograms.test (lines 95–470), buckets built by hand from the load
/// lines (values at 50m), plus the cases that file only evaluates on the NHCB form.
#[cfg(test)]
mod bucket_fraction_tests {
    use super::{bucket_fraction, Bucket};

    const INF: f64 = f64::INFINITY;

    fn buckets(pairs: &[(f64, f64)]) -> Vec<Bucket> {
        pairs.iter().map(|&(upper, count)| Bucket { upper, count }).collect()
    }

    fn fraction(lower: f64, upper: f64, pairs: &[(f64, f64)]) -> f64 {
        let mut b = buckets(pairs);
        let r = bucket_fraction(lower, upper, &mut b);
        assert!(!r.forced_monotonicity);
        r.value
    }

    fn assert_close(got: f64, want: f64) {
        if want.is_nan() {
            assert!(got.is_nan(), "got {got}, want NaN");
        } else if want == 0.0 {
            assert_eq!(got, 0.0, "got {got}, want 0");
        } else {
            assert!(((got - want) / want).abs() <= 1e-9, "got {got}, want {want}");
        }
    }

    /// positive_buckets_lower_falls_in_the_first_bucket and most cases below share this shape.
    const ONE_TWO_THREE: [(f64, f64); 4] = [(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (INF, 100.0)];
    const NEG_THREE_TWO_ONE: [(f64, f64); 4] =
        [(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (INF, 100.0)];

    // testhistogram2_bucket: le 0, 2, 4, 6, +Inf with 0+0x10, 0+1x10, 0+2x10, 0+3x10, 0+3x10.
    const TESTHISTOGRAM2: [(f64, f64); 5] =
        [(0.0, 0.0), (2.0, 10.0), (4.0, 20.0), (6.0, 30.0), (INF, 30.0)];

    #[test]
    fn testhistogram2_0_to_4() {
        assert_close(fraction(0.0, 4.0, &TESTHISTOGRAM2), 0.6666666666666666);
    }

    #[test]
    fn testhistogram2_0_to_3_5() {
        assert_close(fraction(0.0, 3.5, &TESTHISTOGRAM2), 0.5833333333333334);
    }

    /// rate(x[10m]) at 50m of a series `0+Nx10` at 5m steps: samples at 45m (9N) and 50m (10N),
    /// extrapolated over the 600s window.
    fn rate(n: f64) -> f64 {
        (10.0 * n - 9.0 * n) * (600.0 / 300.0) / 600.0
    }

    #[test]
    fn rate_testhistogram3_positive() {
        let pairs = [
            (0.0, rate(0.0)),
            (0.1, rate(5.0)),
            (0.2, rate(7.0)),
            (1.0, rate(11.0)),
            (INF, rate(11.0)),
        ];
        assert_close(fraction(0.0, 0.2, &pairs), 0.6363636363636364);
    }

    #[test]
    fn rate_testhistogram3_negative() {
        let pairs = [
            (-0.25, rate(0.0)),
            (-0.2, rate(1.0)),
            (-0.1, rate(2.0)),
            (0.3, rate(2.0)),
            (INF, rate(2.0)),
        ];
        assert_close(fraction(0.0, 0.2, &pairs), 0.0);
    }

    #[test]
    fn negative_buckets_lower_falls_in_the_first_bucket() {
        assert_close(fraction(-4.0, -2.0, &NEG_THREE_TWO_ONE), 0.02);
    }

    #[test]
    fn lower_is_negative_inf() {
        assert_close(fraction(f64::NEG_INFINITY, -1.5, &NEG_THREE_TWO_ONE), 0.135);
    }

    #[test]
    fn lower_neg_inf_upper_pos_inf_positive_buckets() {
        assert_close(fraction(f64::NEG_INFINITY, INF, &ONE_TWO_THREE), 1.0);
    }

    #[test]
    fn lower_neg_inf_upper_pos_inf_negative_buckets() {
        assert_close(fraction(f64::NEG_INFINITY, INF, &NEG_THREE_TWO_ONE), 1.0);
    }

    #[test]
    fn lower_and_upper_fall_in_last_bucket_positive_buckets() {
        assert_close(fraction(4.0, 5.0, &ONE_TWO_THREE), 0.0);
    }

    #[test]
    fn lower_and_upper_fall_in_last_bucket_negative_buckets() {
        assert_close(fraction(0.0, 1.0, &NEG_THREE_TWO_ONE), 0.0);
    }

    #[test]
    fn upper_falls_in_last_bucket() {
        assert_close(fraction(2.0, 5.0, &ONE_TWO_THREE), 0.03);
    }

    #[test]
    fn upper_is_positive_inf() {
        assert_close(fraction(400.0, INF, &ONE_TWO_THREE), 0.94);
    }

    #[test]
    fn lower_equals_upper() {
        assert_close(fraction(2.0, 2.0, &ONE_TWO_THREE), 0.0);
    }

    #[test]
    fn single_bucket() {
        assert_close(fraction(0.0, 1.0, &[(INF, 100.0)]), 0.0);
    }

    #[test]
    fn lower_exactly_on_bucket_boundary() {
        assert_close(fraction(2.0, 3.5, &ONE_TWO_THREE), 0.03);
    }

    #[test]
    fn upper_exactly_on_bucket_boundary() {
        assert_close(fraction(0.5, 2.0, &ONE_TWO_THREE), 0.025);
    }

    #[test]
    fn both_bounds_exactly_on_bucket_boundaries() {
        assert_close(fraction(1.0, 3.0, &ONE_TWO_THREE), 0.05);
    }

    #[test]
    fn fractional_bucket_bounds() {
        let pairs = [(0.5, 2.5), (1.0, 7.5), (INF, 100.0)];
        assert_close(fraction(0.1, 0.75, &pairs), 0.045);
    }

    #[test]
    fn lower_is_nan() {
        assert_close(fraction(f64::NAN, 1.0, &[(1.0, 1.0), (INF, 100.0)]), f64::NAN);
    }

    #[test]
    fn upper_is_nan() {
        assert_close(fraction(0.0, f64::NAN, &[(1.0, 1.0), (INF, 100.0)]), f64::NAN);
    }

    #[test]
    fn range_entirely_above_all_buckets() {
        let pairs = [(1.0, 1.0), (2.0, 3.0), (INF, 10.0)];
        assert_close(fraction(5.0, 10.0, &pairs), 0.0);
    }

    // Cases the file evaluates only on the NHCB form; the classic answer is the same there.

    #[test]
    fn positive_buckets_lower_falls_in_the_first_bucket() {
        assert_close(fraction(0.0, 1.5, &ONE_TWO_THREE), 0.02);
    }

    #[test]
    fn all_zero_counts() {
        let pairs = [(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (INF, 0.0)];
        assert_close(fraction(0.0, 5.0, &pairs), f64::NAN);
    }

    #[test]
    fn range_crosses_zero() {
        let pairs = [(-2.0, 5.0), (-1.0, 10.0), (0.0, 15.0), (1.0, 20.0), (INF, 100.0)];
        assert_close(fraction(-1.0, 1.0, &pairs), 0.1);
    }

    #[test]
    fn range_entirely_below_all_buckets() {
        let pairs = [(1.0, 1.0), (2.0, 3.0), (INF, 10.0)];
        assert_close(fraction(-10.0, -5.0, &pairs), 0.0);
    }

    // Further edge cases from Prometheus's BucketFraction.

    #[test]
    fn lower_greater_than_upper() {
        assert_close(fraction(3.0, 2.0, &ONE_TWO_THREE), 0.0);
    }

    #[test]
    fn missing_inf_bucket() {
        assert_close(fraction(0.0, 2.0, &[(1.0, 1.0), (2.0, 3.0), (3.0, 6.0)]), f64::NAN);
    }

    #[test]
    fn no_buckets() {
        assert_close(fraction(0.0, 1.0, &[]), f64::NAN);
    }

    #[test]
    fn nan_checked_before_lower_ge_upper_but_after_zero_count() {
        assert_close(fraction(2.0, 1.0, &[(1.0, 0.0), (INF, 0.0)]), f64::NAN);
        assert_close(fraction(f64::NAN, f64::NAN, &ONE_TWO_THREE), f64::NAN);
    }

    #[test]
    fn unsorted_and_duplicate_bounds() {
        // Same as ONE_TWO_THREE, shuffled, with the le="2" bucket split across two series.
        let pairs = [(INF, 100.0), (2.0, 1.0), (1.0, 1.0), (3.0, 6.0), (2.0, 2.0)];
        assert_close(fraction(0.0, 1.5, &pairs), 0.02);
    }

    #[test]
    fn non_monotonic_counts_are_not_repaired() {
        // Prometheus interpolates the raw counts: rank at 1.5 is 5 + (3-5)*0.5 = 4.
        let pairs = [(1.0, 5.0), (2.0, 3.0), (INF, 10.0)];
        assert_close(fraction(0.0, 1.5, &pairs), 0.4);
    }

    #[test]
    fn bound_inside_first_negative_bucket_takes_it_whole() {
        // First bucket (-Inf, -3]: a lower bound inside it excludes all of it, an upper bound
        // inside it includes all of it. (-5, -2.5): ranks 10 and 10 + 2 * 0.5 = 11.
        assert_close(fraction(-5.0, -2.5, &NEG_THREE_TWO_ONE), 0.01);
        assert_close(fraction(-10.0, -2.0, &NEG_THREE_TWO_ONE), 0.02);
        assert_close(fraction(f64::NEG_INFINITY, -4.0, &NEG_THREE_TWO_ONE), 0.1);
    }
}
