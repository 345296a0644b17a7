//! Range functions over `anchored` and `smoothed` range selectors (Prometheus 3.x,
//! experimental), one window at a time.
//!
//! Both look past the window `(range_start, range_end]`: an anchored window also takes the
//! last sample at or before `range_start`, a smoothed one also the first sample at or after
//! `range_end`, each only within the lookback delta. Neither extrapolates.

use strata_model::Sample;

use super::range::{duration_seconds, eval_range, RangeFn};

/// Evaluates `f` (rate, increase, delta; anchored also changes and resets) over one window.
///
/// * `samples`: ascending, staleness markers removed, cut to
///   `(range_start - lookback, range_end]` (anchored) or
///   `(range_start - lookback, range_end + lookback]` (smoothed).
/// * `range_ms`: the selector's range (`rate` divides by it).
///
/// Returns `None` when there is no sample for the window (none inside it for anchored; none
/// on one of its sides for smoothed), or when `f` takes no extended selector.
pub fn eval_extended(
    f: RangeFn,
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    smoothed: bool,
) -> Option<f64> {
    match f {
        RangeFn::Rate => {
            extended_rate(samples, range_start, range_end, range_ms, smoothed, true, true)
        }
        RangeFn::Increase => {
            extended_rate(samples, range_start, range_end, range_ms, smoothed, true, false)
        }
        RangeFn::Delta => {
            extended_rate(samples, range_start, range_end, range_ms, smoothed, false, false)
        }
        RangeFn::Changes | RangeFn::Resets if !smoothed => {
            let window = anchored_window(samples, range_start)?;
            eval_range(f, window, range_start, range_end, range_end, &[])
        }
        _ => None,
    }
}

/// The samples of an anchored window: the last one at or before `range_start` (if any)
/// followed by those after it. `None` when no sample is after `range_start`.
fn anchored_window(samples: &[Sample], range_start: i64) -> Option<&[Sample]> {
    if samples.last()?.t <= range_start {
        return None;
    }
    let first = samples.partition_point(|s| s.t <= range_start).saturating_sub(1);
    samples.get(first..)
}

/// rate, increase and delta: the change between the values at the window's bounds (the
/// boundary samples, or for smoothed the values interpolated there), corrected for counter
/// resets in between (Prometheus `extendedRate`).
fn extended_rate(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    smoothed: bool,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let mut last = samples.len().checked_sub(1)?;
    // The last sample at or before the start, else the first one.
    let first = samples[..last].partition_point(|s| s.t <= range_start).saturating_sub(1);
    if smoothed {
        // The first sample at or after the end, else the last one.
        last = samples[..last].partition_point(|s| s.t < range_end);
    }
    let (f, l) = (*samples.get(first)?, *samples.get(last)?);
    if l.t <= range_start || (smoothed && f.t > range_end) {
        return None;
    }
    let left = if smoothed && f.t < range_start {
        interpolate(f, *samples.get(first + 1)?, range_start, is_counter)
    } else {
        f.v
    };
    let right = match last.checked_sub(1) {
        Some(prev) if smoothed && l.t > range_end => {
            interpolate(*samples.get(prev)?, l, range_end, is_counter)
        }
        _ => l.v,
    };
    let mut result = right - left;
    if is_counter {
        // The samples strictly inside the window; the boundary values stand for the rest.
        let lo = if f.t <= range_start { first + 1 } else { first };
        let hi = if l.t >= range_end { last } else { last + 1 };
        let inner = samples.get(lo..hi).unwrap_or(&[]);
        result += reset_correction(left, right, inner);
    }
    if is_rate {
        result /= duration_seconds(range_ms);
    }
    Some(result)
}

/// What counter resets (drops) between `left`, the `inner` samples and `right` take away.
fn reset_correction(left: f64, right: f64, inner: &[Sample]) -> f64 {
    let mut correction = 0.0;
    let mut prev = left;
    for v in inner.iter().map(|s| s.v).chain(std::iter::once(right)) {
        if v < prev {
            correction += prev;
        }
        prev = v;
    }
    correction
}

/// The value at `t` on the line from `a` to `b`. For a counter that dropped between them,
/// the line starts from 0 at `a` (the counter restarted).
pub fn interpolate(a: Sample, b: Sample, t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && b.v < a.v { 0.0 } else { a.v };
    y1 + (b.v - y1) * t.saturating_sub(a.t) as f64 / b.t.saturating_sub(a.t) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn series(start: i64, step: i64, values: &[f64]) -> Vec<Sample> {
        values.iter().enumerate().map(|(i, &v)| Sample { t: start + i as i64 * step, v }).collect()
    }

    /// Like an instant query at `t` over `[range]` with a 5m lookback delta.
    fn at(f: RangeFn, all: &[Sample], t: i64, range: i64, smoothed: bool) -> Option<f64> {
        let lookback = 300 * S;
        let (lo, hi) = (t - range, t);
        let top = if smoothed { hi + lookback } else { hi };
        let cut: Vec<Sample> =
            all.iter().copied().filter(|s| s.t > lo - lookback && s.t <= top).collect();
        eval_extended(f, &cut, lo, hi, range, smoothed)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    // Expected numbers from the conformance suite (`extended_vectors.test`).
    #[test]
    fn anchored_and_smoothed_increase() {
        // metric 1+1x4 9+1x4 every 15s.
        let m = series(0, 15 * S, &[1., 2., 3., 4., 5., 9., 10., 11., 12., 13.]);
        assert!(close(at(RangeFn::Increase, &m, 5 * S, 60 * S, false), 0.0));
        assert!(close(at(RangeFn::Increase, &m, 80 * S, 60 * S, false), 7.0));
        assert!(close(at(RangeFn::Increase, &m, 5 * S, 60 * S, true), 1.0 / 3.0));
        assert!(close(at(RangeFn::Increase, &m, 50 * S, 60 * S, true), 10.0 / 3.0));
        assert!(close(at(RangeFn::Increase, &m, 110 * S, 60 * S, true), 7.0));
    }

    #[test]
    fn counter_resets_at_and_between_bounds() {
        // metric 3 2+2x9 every minute; at 1m30s, [1m].
        let m = series(0, 60 * S, &[3., 2., 4., 6., 8.]);
        assert!(close(at(RangeFn::Increase, &m, 90 * S, 60 * S, true), 2.0));
        assert!(close(at(RangeFn::Increase, &m, 90 * S, 60 * S, false), 2.0));
        assert!(close(at(RangeFn::Delta, &m, 90 * S, 60 * S, false), -1.0));
        // Two resets, the first one crossed by the left interpolation: 5.5.
        let m = series(0, 10 * S, &[10., 5., 2., 4.]);
        assert!(close(at(RangeFn::Increase, &m, 15 * S, 14 * S, true), 5.5));
    }

    #[test]
    fn empty_windows() {
        // metric _ 5+1x4 every 10s: data only after, then only before the window.
        let m = series(10 * S, 10 * S, &[5., 6., 7., 8., 9.]);
        assert_eq!(at(RangeFn::Increase, &m, 5 * S, 5 * S, true), None);
        assert_eq!(at(RangeFn::Increase, &m, 60 * S, 5 * S, true), None);
        assert_eq!(at(RangeFn::Increase, &m, 60 * S, 5 * S, false), None);
        assert_eq!(eval_extended(RangeFn::Rate, &[], 0, 1, 1, true), None);
        assert_eq!(eval_extended(RangeFn::MaxOverTime, &m, 0, 60 * S, 60 * S, false), None);
    }

    #[test]
    fn anchored_changes_take_the_sample_before_the_window() {
        // metric 99-1x10 every minute; at 3m, [1m]: 97 -> 96.
        let m = series(0, 60 * S, &[99., 98., 97., 96., 95.]);
        assert!(close(at(RangeFn::Changes, &m, 180 * S, 60 * S, false), 1.0));
        assert!(close(at(RangeFn::Resets, &m, 180 * S, 60 * S, false), 1.0));
        assert_eq!(at(RangeFn::Changes, &m, 180 * S, 60 * S, true), None);
    }
}
