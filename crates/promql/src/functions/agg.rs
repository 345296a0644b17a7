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
    buckets.sort_by(|a, b| a.upper.partial_cmp(&b.upper).unwrap_or(Ordering::Equal));
    match buckets.last() {
        Some(last) if last.upper == f64::INFINITY => {}
        _ => return plain(f64::NAN),
    }
    let len = coalesce(buckets);
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
