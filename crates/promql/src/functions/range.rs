//! Functions over a range vector (`rate(x[5m])`, `*_over_time`, ...), one window at a time.

use strata_model::Sample;

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
        let _ = name;
        None
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
    let _ = (f, samples, range_start, range_end, eval_t, params);
    None
}
