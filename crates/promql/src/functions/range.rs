//! Functions over a range vector (`rate(x[5m])`, `*_over_time`, ...), one window at a time.

use strata_model::Sample;

use super::agg::{self, KahanSum};

/// A function that takes a range vector and returns one value per series and step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Changes,
    Resets,
    Deriv,
    PredictLinear,
    AvgOverTime,
    MinOverTime,
    MaxOverTime,
    SumOverTime,
    CountOverTime,
    QuantileOverTime,
    StddevOverTime,
    StdvarOverTime,
    MadOverTime,
    LastOverTime,
    FirstOverTime,
    PresentOverTime,
    TsOfMinOverTime,
    TsOfMaxOverTime,
    TsOfFirstOverTime,
    TsOfLastOverTime,
    DoubleExponentialSmoothing,
}

impl RangeFn {
    /// The function for a PromQL function name, if it is one of these.
    pub fn from_name(name: &str) -> Option<RangeFn> {
        use RangeFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "changes" => Changes,
            "resets" => Resets,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "avg_over_time" => AvgOverTime,
            "min_over_time" => MinOverTime,
            "max_over_time" => MaxOverTime,
            "sum_over_time" => SumOverTime,
            "count_over_time" => CountOverTime,
            "quantile_over_time" => QuantileOverTime,
            "stddev_over_time" => StddevOverTime,
            "stdvar_over_time" => StdvarOverTime,
            "mad_over_time" => MadOverTime,
            "last_over_time" => LastOverTime,
            "first_over_time" => FirstOverTime,
            "present_over_time" => PresentOverTime,
            "ts_of_min_over_time" => TsOfMinOverTime,
            "ts_of_max_over_time" => TsOfMaxOverTime,
            "ts_of_first_over_time" => TsOfFirstOverTime,
            "ts_of_last_over_time" => TsOfLastOverTime,
            "double_exponential_smoothing" => DoubleExponentialSmoothing,
            _ => return None,
        })
    }
}

/// Evaluates `f` over one window.
///
/// * `samples`: the samples in `(range_start, range_end]`, ascending, staleness markers removed.
/// * `range_start`, `range_end`: the window's bounds in ms (already shifted by offset and `@`).
/// * `eval_t`: the step's evaluation time in ms.
/// * `params`: the call's scalar arguments at this step, in call order without the range
///   vector (quantile_over_time: `[q]`; predict_linear: `[t]`;
///   double_exponential_smoothing: `[sf, tf]`).
///
/// Returns `None` when the function yields no sample for this window (e.g. rate over fewer
/// than two samples).
pub fn eval_range(
    f: RangeFn,
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    eval_t: i64,
    params: &[f64],
) -> Option<f64> {
    use RangeFn::*;
    let (first, last) = (samples.first()?, samples.last()?);
    let values = || samples.iter().map(|s| s.v);
    let value = match f {
        Rate => extrapolated_rate(samples, range_start, range_end, true, true)?,
        Increase => extrapolated_rate(samples, range_start, range_end, true, false)?,
        Delta => extrapolated_rate(samples, range_start, range_end, false, false)?,
        Irate => instant_value(samples, true)?,
        Idelta => instant_value(samples, false)?,
        Changes => {
            count_pairs(samples, |prev, cur| cur != prev && !(cur.is_nan() && prev.is_nan()))
        }
        Resets => count_pairs(samples, |prev, cur| cur < prev),
        Deriv => {
            if samples.len() < 2 {
                return None;
            }
            // Relative to the first sample so that x stays small (prometheus#2674).
            linear_regression(samples, first.t).0
        }
        PredictLinear => {
            let duration = *params.first()?;
            if samples.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(samples, eval_t);
            slope * duration + intercept
        }
        AvgOverTime => agg::mean(values()),
        MinOverTime => select(*first, samples, |cur, best| cur < best).v,
        MaxOverTime => select(*first, samples, |cur, best| cur > best).v,
        // On ties the later sample wins.
        TsOfMinOverTime => seconds(select(*first, samples, |cur, best| cur <= best).t),
        TsOfMaxOverTime => seconds(select(*first, samples, |cur, best| cur >= best).t),
        SumOverTime => {
            let mut sum = KahanSum::default();
            values().for_each(|v| sum.add(v));
            sum.value()
        }
        CountOverTime => samples.len() as f64,
        QuantileOverTime => agg::quantile(*params.first()?, &mut values().collect::<Vec<_>>()),
        StddevOverTime => agg::stdvar_over_time(values()).sqrt(),
        StdvarOverTime => agg::stdvar_over_time(values()),
        MadOverTime => {
            let mut vs: Vec<f64> = values().collect();
            let median = agg::quantile(0.5, &mut vs);
            vs.iter_mut().for_each(|v| *v = (*v - median).abs());
            agg::quantile(0.5, &mut vs)
        }
        LastOverTime => last.v,
        FirstOverTime => first.v,
        PresentOverTime => 1.0,
        TsOfFirstOverTime => seconds(first.t),
        TsOfLastOverTime => seconds(last.t),
        DoubleExponentialSmoothing => match params {
            [sf, tf, ..] => double_exponential_smoothing(samples, *sf, *tf)?,
            _ => return None,
        },
    };
    Some(value)
}

/// The error Prometheus raises for `double_exponential_smoothing` factors outside (0, 1), or
/// `None` when both are acceptable. NaN passes, as in Prometheus (the result is then NaN).
///
/// Prometheus checks this whenever the function runs for a series, even one with fewer than
/// two samples in the window; with no series at all there is no error.
pub fn smoothing_factor_error(sf: f64, tf: f64) -> Option<String> {
    if sf <= 0.0 || sf >= 1.0 {
        return Some(format!("invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Some(format!("invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"));
    }
    None
}

fn seconds(t_ms: i64) -> f64 {
    t_ms as f64 / 1000.0
}

/// A duration in ms as seconds, computed like Go's `time.Duration.Seconds` (whole seconds
/// plus the fraction) so that the result is bit-identical to Prometheus's.
pub(crate) fn duration_seconds(ms: i64) -> f64 {
    (ms / 1000) as f64 + ((ms % 1000) * 1_000_000) as f64 / 1e9
}

/// rate, increase and delta: the change over the window, corrected for counter resets and
/// extrapolated towards the window's bounds (Prometheus `extrapolatedRate`).
fn extrapolated_rate(
    samples: &[Sample],
    range_start: i64,
    range_end: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let [first, .., last] = samples else {
        return None;
    };
    let mut result = last.v - first.v;
    if is_counter {
        // A drop means the counter restarted from 0: add back what it had reached.
        for pair in samples.windows(2) {
            if pair[1].v < pair[0].v {
                result += pair[0].v;
            }
        }
    }

    let mut to_start = seconds(first.t - range_start);
    let mut to_end = seconds(range_end - last.t);
    let sampled = seconds(last.t - first.t);
    let average_interval = sampled / (samples.len() - 1) as f64;

    // Extrapolate all the way to a bound only when a sample there would be overdue (more
    // than 110% of the average interval away); otherwise the series likely starts or ends
    // inside the window, so extrapolate by half an interval.
    let threshold = average_interval * 1.1;
    if to_start >= threshold {
        to_start = average_interval / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // Counters do not go below zero: stop where the extrapolated line crosses it.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_interval / 2.0;
    }

    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= duration_seconds(range_end - range_start);
    }
    Some(result * factor)
}

/// irate and idelta: from the last two samples. irate treats a drop as a counter reset and
/// uses the last value as the increase.
fn instant_value(samples: &[Sample], is_rate: bool) -> Option<f64> {
    let [.., prev, last] = samples else {
        return None;
    };
    let interval = last.t - prev.t;
    if interval == 0 {
        return None;
    }
    // After a reset (a drop; NaN is none) the counter grew from 0 to the last value.
    let mut result = if is_rate && last.v < prev.v { last.v } else { last.v - prev.v };
    if is_rate {
        result /= seconds(interval);
    }
    Some(result)
}

/// How many adjacent pairs `(previous, current)` satisfy `pred`.
fn count_pairs(samples: &[Sample], pred: impl Fn(f64, f64) -> bool) -> f64 {
    samples.windows(2).filter(|p| pred(p[0].v, p[1].v)).count() as f64
}

/// The sample that wins under `replaces(candidate, best)`, scanning in order from `first`;
/// a NaN best is always replaced.
fn select(first: Sample, samples: &[Sample], replaces: impl Fn(f64, f64) -> bool) -> Sample {
    let mut best = first;
    for s in samples {
        if replaces(s.v, best.v) || best.v.is_nan() {
            best = *s;
        }
    }
    best
}

/// Least squares fit of value over time (in seconds relative to `intercept_t`): the slope per
/// second and the value at `intercept_t`. A constant series has slope 0, or NaN when the
/// constant is infinite; no samples give NaN.
pub fn linear_regression(samples: &[Sample], intercept_t: i64) -> (f64, f64) {
    let Some(init_y) = samples.first().map(|s| s.v) else {
        return (f64::NAN, f64::NAN);
    };
    let const_y = samples.iter().skip(1).all(|s| s.v == init_y);
    if const_y {
        return if init_y.is_infinite() { (f64::NAN, f64::NAN) } else { (0.0, init_y) };
    }
    let (mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) =
        (KahanSum::default(), KahanSum::default(), KahanSum::default(), KahanSum::default());
    for s in samples {
        let x = seconds(s.t - intercept_t);
        sum_x.add(x);
        sum_y.add(s.v);
        sum_xy.add(x * s.v);
        sum_x2.add(x * x);
    }
    let n = samples.len() as f64;
    let (sum_x, sum_y, sum_xy, sum_x2) =
        (sum_x.value(), sum_y.value(), sum_xy.value(), sum_x2.value());
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// Holt's linear (double exponential) smoothing of the samples with smoothing factor `sf` and
/// trend factor `tf`: the last smoothed value. `None` for fewer than two samples or factors
/// outside (0, 1).
fn double_exponential_smoothing(samples: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if smoothing_factor_error(sf, tf).is_some() || samples.len() < 2 {
        return None;
    }
    let (mut prev_smoothed, mut smoothed) = (0.0, samples[0].v);
    let mut trend = samples[1].v - samples[0].v;
    for (i, s) in samples.iter().enumerate().skip(1) {
        // The first step keeps the initial trend; later ones blend the last change in.
        if i > 1 {
            trend = tf * (smoothed - prev_smoothed) + (1.0 - tf) * trend;
        }
        let next = sf * s.v + (1.0 - sf) * (smoothed + trend);
        (prev_smoothed, smoothed) = (smoothed, next);
    }
    Some(smoothed)
}

#[cfg(test)]
mod tests;
