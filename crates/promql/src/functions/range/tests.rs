//! Expected numbers come from the conformance suite (`functions.test`) unless worked out in
//! a comment.

use super::*;

const MIN: i64 = 60_000;

/// Samples `values[i]` at `start + i * step` ms.
fn series(start: i64, step: i64, values: &[f64]) -> Vec<Sample> {
    values.iter().enumerate().map(|(i, &v)| Sample { t: start + i as i64 * step, v }).collect()
}

/// Evaluates `f` at `eval_t` over `[range]` like an instant query: the window is
/// `(eval_t - range, eval_t]`.
fn at(f: RangeFn, all: &[Sample], eval_t: i64, range: i64, params: &[f64]) -> Option<f64> {
    let start = eval_t - range;
    let window: Vec<Sample> =
        all.iter().copied().filter(|s| s.t > start && s.t <= eval_t).collect();
    eval_range(f, &window, start, eval_t, eval_t, params)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn assert_close(got: Option<f64>, want: f64) {
    match got {
        Some(v) if close(v, want) || (v.is_nan() && want.is_nan()) => {}
        _ => panic!("got {got:?}, want {want}"),
    }
}

#[test]
fn names_round_trip() {
    let names = [
        "rate",
        "increase",
        "delta",
        "irate",
        "idelta",
        "changes",
        "resets",
        "deriv",
        "predict_linear",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "quantile_over_time",
        "stddev_over_time",
        "stdvar_over_time",
        "mad_over_time",
        "last_over_time",
        "first_over_time",
        "present_over_time",
        "ts_of_min_over_time",
        "ts_of_max_over_time",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
        "double_exponential_smoothing",
    ];
    let fns: Vec<RangeFn> = names.iter().filter_map(|n| RangeFn::from_name(n)).collect();
    assert_eq!(fns.len(), names.len());
    for (i, a) in fns.iter().enumerate() {
        assert!(fns[i + 1..].iter().all(|b| a != b), "{a:?} twice");
    }
    assert_eq!(RangeFn::from_name("holt_winters"), None);
    assert_eq!(RangeFn::from_name("absent_over_time"), None);
}

#[test]
fn empty_window_yields_nothing() {
    for f in [RangeFn::CountOverTime, RangeFn::PresentOverTime, RangeFn::Changes, RangeFn::Rate] {
        assert_eq!(eval_range(f, &[], 0, 1000, 1000, &[]), None);
    }
}

#[test]
fn resets_and_changes() {
    let foo = series(0, 5 * MIN, &[1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0]);
    let bar = series(0, 5 * MIN, &[1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    let t = 50 * MIN;
    assert_eq!(at(RangeFn::Resets, &foo, t, 5 * MIN, &[]), None);
    assert_eq!(at(RangeFn::Resets, &foo, t, 10 * MIN, &[]), Some(0.0));
    assert_eq!(at(RangeFn::Resets, &foo, t, 20 * MIN, &[]), Some(1.0));
    assert_eq!(at(RangeFn::Resets, &foo, t, 32 * MIN, &[]), Some(2.0));
    assert_eq!(at(RangeFn::Resets, &bar, t, 32 * MIN, &[]), Some(1.0));
    assert_eq!(at(RangeFn::Resets, &foo, t, 50 * MIN, &[]), Some(3.0));
    assert_eq!(at(RangeFn::Changes, &foo, t, 6 * MIN, &[]), Some(0.0));
    assert_eq!(at(RangeFn::Changes, &foo, t, 20 * MIN, &[]), Some(2.0));
    assert_eq!(at(RangeFn::Changes, &bar, t, 30 * MIN, &[]), Some(4.0));
    assert_eq!(at(RangeFn::Changes, &foo, t, 50 * MIN, &[]), Some(7.0));
    assert_eq!(at(RangeFn::Changes, &bar, t, 50 * MIN, &[]), Some(8.0));
    // NaN to NaN is no change; NaN to a number and back are two.
    let nans = series(0, 5 * MIN, &[f64::NAN, f64::NAN, f64::NAN]);
    let mixed = series(0, 5 * MIN, &[0.0, f64::NAN, 0.0]);
    assert_eq!(at(RangeFn::Changes, &nans, 15 * MIN, 20 * MIN, &[]), Some(0.0));
    assert_eq!(at(RangeFn::Changes, &mixed, 15 * MIN, 20 * MIN, &[]), Some(2.0));
}

#[test]
fn increase_extrapolates_and_stops_at_zero() {
    let t = 50 * MIN;
    let lin = |start: f64| {
        series(0, 5 * MIN, &(0..=10).map(|i| start + 10.0 * f64::from(i)).collect::<Vec<_>>())
    };
    assert_close(at(RangeFn::Increase, &lin(0.0), t, 100 * MIN, &[]), 100.0);
    assert_close(at(RangeFn::Increase, &lin(10.0), t, 100 * MIN, &[]), 105.0);
    assert_close(at(RangeFn::Increase, &lin(1.0), t, 100 * MIN, &[]), 101.0);
    let bar: Vec<f64> = (0..2).flat_map(|_| (0..=5).map(|i| 18.0 * f64::from(i))).collect();
    assert_close(at(RangeFn::Increase, &series(0, 5 * MIN, &bar), t, 100 * MIN, &[]), 162.0);
    // A reset from 3 to 2 counts as 3 + 2.
    let reset = series(0, 5 * MIN, &[0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]);
    assert_close(at(RangeFn::Increase, &reset, 30 * MIN, 30 * MIN, &[]), 7.0);
}

#[test]
fn rate_per_second() {
    // 0+10x10 with `[10m] offset 5m` at 50m: the window is (35m, 45m].
    let a = series(0, 5 * MIN, &(0..=10).map(|i| 10.0 * f64::from(i)).collect::<Vec<_>>());
    let window: Vec<Sample> =
        a.iter().copied().filter(|s| s.t > 35 * MIN && s.t <= 45 * MIN).collect();
    assert_close(eval_range(RangeFn::Rate, &window, 35 * MIN, 45 * MIN, 50 * MIN, &[]), 1.0 / 30.0);
    // Zero cutoff: load 4m, `rate(x[20m])` at 10m, series starting at 0, 60, 120, 180.
    for (start, want) in [(0.0, 0.5), (60.0, 0.55), (120.0, 0.6), (180.0, 0.6), (300.0, 0.6)] {
        let s =
            series(0, 4 * MIN, &(0..=10).map(|i| start + 240.0 * f64::from(i)).collect::<Vec<_>>());
        assert_close(at(RangeFn::Rate, &s, 10 * MIN, 20 * MIN, &[]), want);
    }
    // A reset right at the end: 90 then 0.
    let mut end: Vec<f64> = (0..=9).map(|i| 10.0 * f64::from(i)).collect();
    end.extend([0.0, 10.0]);
    let end = series(0, 5 * MIN, &end);
    assert_eq!(at(RangeFn::Rate, &end, 50 * MIN, 5 * MIN, &[]), None);
    assert_close(at(RangeFn::Rate, &end, 50 * MIN, 6 * MIN, &[]), 0.0);
    // A single sample gives nothing.
    assert_eq!(eval_range(RangeFn::Rate, &end[..1], -MIN, 0, 0, &[]), None);
}

#[test]
fn rate_range_seconds_match_go_durations() {
    assert_eq!(duration_seconds(300_000), 300.0);
    assert_eq!(duration_seconds(1001), 1.0 + 0.001);
    assert_eq!(duration_seconds(999), 0.999);
}

#[test]
fn delta_is_not_reset_corrected() {
    let up = series(0, 5 * MIN, &[0.0, 50.0, 100.0, 150.0, 200.0]);
    let down = series(0, 5 * MIN, &[200.0, 150.0, 100.0, 50.0, 0.0]);
    assert_close(at(RangeFn::Delta, &up, 20 * MIN, 20 * MIN, &[]), 200.0);
    assert_close(at(RangeFn::Delta, &down, 20 * MIN, 20 * MIN, &[]), -200.0);
}

#[test]
fn irate_and_idelta_use_the_last_two_samples() {
    let nan = series(0, 5 * MIN, &[1.0, f64::NAN, f64::NAN, 5.0, 11.0]);
    let r = |t: i64| at(RangeFn::Irate, &nan, t, 15 * MIN + 1000, &[]);
    assert_eq!(r(0), None);
    assert!(r(5 * MIN).is_some_and(f64::is_nan));
    assert!(r(15 * MIN).is_some_and(f64::is_nan));
    assert_close(r(20 * MIN), 0.02);
    let bar = series(0, 5 * MIN, &[0.0, 50.0, 100.0, 50.0]);
    assert_close(at(RangeFn::Idelta, &bar, 20 * MIN, 20 * MIN, &[]), -50.0);
    // After a reset irate takes the last value as the increase: 50 / 300s.
    assert_close(at(RangeFn::Irate, &bar, 20 * MIN, 20 * MIN, &[]), 50.0 / 300.0);
}

#[test]
fn deriv_and_predict_linear() {
    let total = series(0, 5 * MIN, &(0..=10).map(|i| 80.0 * f64::from(i)).collect::<Vec<_>>());
    assert_close(at(RangeFn::Deriv, &total, 50 * MIN, 50 * MIN, &[]), 0.26666666666666666);
    let mut v: Vec<f64> = (0..=4).map(|i| 10.0 * f64::from(i)).collect();
    v.extend((0..=5).map(|i| 10.0 * f64::from(i)));
    let s = series(0, 5 * MIN, &v);
    assert_close(at(RangeFn::PredictLinear, &s, 50 * MIN, 50 * MIN, &[3600.0]), 70.0);
    // `[55m] @ 3000`: all eleven samples, predicted from the step's time.
    for (eval_t, want) in
        [(3000, 76.81818181818181), (600, 51.36363636363637), (4200, 89.54545454545455)]
    {
        let got =
            eval_range(RangeFn::PredictLinear, &s, -300_000, 3_000_000, eval_t * 1000, &[3600.0]);
        assert_close(got, want);
    }
    // An infinite value makes the regression NaN.
    let mut inf: Vec<f64> = (0..=10).map(|i| 80.0 * f64::from(i)).collect();
    inf.push(f64::INFINITY);
    let inf = series(5 * MIN, 5 * MIN, &inf);
    assert!(
        at(RangeFn::PredictLinear, &inf, 100 * MIN, 100 * MIN, &[6000.0]).is_some_and(f64::is_nan)
    );
    // Constant series: slope 0, or NaN when the constant is infinite.
    assert_eq!(at(RangeFn::Deriv, &series(0, 1000, &[3.0, 3.0]), 1000, 5000, &[]), Some(0.0));
    let infs = series(0, 1000, &[f64::INFINITY, f64::INFINITY]);
    assert!(at(RangeFn::Deriv, &infs, 1000, 5000, &[]).is_some_and(f64::is_nan));
    assert_eq!(at(RangeFn::Deriv, &total[..1], 0, 5000, &[]), None);
    assert_eq!(at(RangeFn::PredictLinear, &total, 50 * MIN, 50 * MIN, &[]), None);
}

#[test]
fn over_time_aggregates() {
    let m = series(0, 10_000, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    let t = 55_000;
    assert_eq!(at(RangeFn::AvgOverTime, &m, t, 10_000, &[]), None);
    assert_eq!(at(RangeFn::AvgOverTime, &m, t, 20_000, &[]), Some(5.0));
    assert_eq!(at(RangeFn::AvgOverTime, &m, t, MIN, &[]), Some(3.0));
    assert_eq!(at(RangeFn::SumOverTime, &m, t, MIN, &[]), Some(15.0));
    assert_eq!(at(RangeFn::CountOverTime, &m, t, MIN, &[]), Some(5.0));
    assert_eq!(at(RangeFn::MinOverTime, &m, t, MIN, &[]), Some(1.0));
    assert_eq!(at(RangeFn::MaxOverTime, &m, t, MIN, &[]), Some(5.0));
    assert_eq!(at(RangeFn::FirstOverTime, &m, t, MIN, &[]), Some(1.0));
    assert_eq!(at(RangeFn::LastOverTime, &m, t, MIN, &[]), Some(5.0));
    assert_eq!(at(RangeFn::PresentOverTime, &m, t, MIN, &[]), Some(1.0));
    let big = series(0, 10_000, &[1.0, 1e100, 1.0, -1e100]);
    assert_eq!(at(RangeFn::SumOverTime, &big, MIN, 2 * MIN, &[]), Some(2.0));
    assert_eq!(at(RangeFn::AvgOverTime, &big, MIN, 2 * MIN, &[]), Some(0.5));
    let dense = series(0, 1, &vec![1.0; 4001]);
    assert_eq!(at(RangeFn::SumOverTime, &dense, 4000, 1003, &[]), Some(1003.0));
    // NaN is only taken by min/max when nothing else is there.
    let nan = series(0, 1000, &[f64::NAN, 3.0, 1.0, f64::NAN]);
    assert_eq!(at(RangeFn::MaxOverTime, &nan, 3000, 5000, &[]), Some(3.0));
    assert_eq!(at(RangeFn::MinOverTime, &nan, 3000, 5000, &[]), Some(1.0));
    let only_nan = series(0, 1000, &[f64::NAN]);
    assert!(at(RangeFn::MaxOverTime, &only_nan, 0, 5000, &[]).is_some_and(f64::is_nan));
}

#[test]
fn variance_quantile_and_mad_over_time() {
    let m = series(0, 10_000, &[0.0, 8.0, 8.0, 2.0, 3.0]);
    let sd = at(RangeFn::StddevOverTime, &m, MIN, 2 * MIN, &[]);
    assert!(sd.is_some_and(|v| (v - 3.249615).abs() < 1e-6));
    assert!(at(RangeFn::StdvarOverTime, &m, MIN, 2 * MIN, &[])
        .is_some_and(|v| (v - 10.56).abs() < 1e-9));
    let q = |vals: &[f64], q: f64| {
        at(RangeFn::QuantileOverTime, &series(0, 10_000, vals), MIN, 2 * MIN, &[q])
    };
    assert_close(q(&[0.0, 1.0], 0.8), 0.8);
    assert_close(q(&[0.0, 1.0, 4.0], 0.75), 2.5);
    assert_eq!(q(&[0.0, 1.0, 2.0], -1.0), Some(f64::NEG_INFINITY));
    assert_eq!(q(&[0.0, 1.0, 2.0], 2.0), Some(f64::INFINITY));
    assert_eq!(at(RangeFn::QuantileOverTime, &m, MIN, 2 * MIN, &[]), None);
    let mad = series(0, 10_000, &[4.0, 6.0, 2.0, 1.0, 999.0, 1.0, 2.0]);
    assert_eq!(at(RangeFn::MadOverTime, &mad, 70_000, 70_000, &[]), Some(1.0));
    let odd = series(0, 10_000, &[1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(at(RangeFn::MadOverTime, &odd, 40_000, 50_000, &[]), Some(1.0));
    assert_eq!(at(RangeFn::MadOverTime, &odd[..1], 0, 10_000, &[]), Some(0.0));
}

#[test]
fn timestamps_of_samples_in_seconds() {
    let m = series(0, 10_053, &[1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 2.0, 1.0, 4.0]);
    assert_eq!(at(RangeFn::TsOfMinOverTime, &m, 90_000, 90_000, &[]), Some(30.159));
    assert_eq!(at(RangeFn::TsOfMaxOverTime, &m, 90_000, 90_000, &[]), Some(50.265));
    assert_eq!(at(RangeFn::TsOfFirstOverTime, &m, 90_000, 90_000, &[]), Some(10.053));
    assert_eq!(at(RangeFn::TsOfLastOverTime, &m, 90_000, 90_000, &[]), Some(80.424));
    // Ties go to the later sample.
    let ties = series(0, 1000, &[2.0, 1.0, 2.0, 1.0]);
    assert_eq!(at(RangeFn::TsOfMaxOverTime, &ties, 3000, 5000, &[]), Some(2.0));
    assert_eq!(at(RangeFn::TsOfMinOverTime, &ties, 3000, 5000, &[]), Some(3.0));
}

#[test]
fn double_exponential_smoothing_follows_a_linear_trend() {
    // 0+10x1000 100+30x1000 at 10s steps: at 8000s the last minute is 7950..8000.
    let s: Vec<Sample> = (0..=1000).map(|i| Sample { t: i * 10_000, v: 10.0 * i as f64 }).collect();
    let got = at(RangeFn::DoubleExponentialSmoothing, &s, 8_000_000, MIN, &[0.01, 0.1]);
    assert_close(got, 8000.0);
    // Worked by hand: values 1, 3, 4 with sf = tf = 0.5. Trend starts at 2; smoothed 1 then
    // 0.5*3 + 0.5*(1+2) = 3; trend 0.5*(3-1) + 0.5*2 = 2; smoothed 0.5*4 + 0.5*(3+2) = 4.5.
    let hand = series(0, 1000, &[1.0, 3.0, 4.0]);
    assert_eq!(at(RangeFn::DoubleExponentialSmoothing, &hand, 2000, 5000, &[0.5, 0.5]), Some(4.5));
    assert_eq!(at(RangeFn::DoubleExponentialSmoothing, &hand[..1], 0, 5000, &[0.5, 0.5]), None);
    for (sf, tf) in [(0.0, 0.5), (1.0, 0.5), (0.5, 0.0), (0.5, 1.0), (-1.0, 2.0)] {
        assert_eq!(at(RangeFn::DoubleExponentialSmoothing, &hand, 2000, 5000, &[sf, tf]), None);
        assert!(smoothing_factor_error(sf, tf).is_some());
    }
    assert_eq!(
        smoothing_factor_error(1.0, 0.5).as_deref(),
        Some("invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000")
    );
    assert_eq!(
        smoothing_factor_error(0.5, 0.0).as_deref(),
        Some("invalid trend factor. Expected: 0 < tf < 1, got: 0.000000")
    );
    assert_eq!(smoothing_factor_error(0.5, 0.5), None);
    assert_eq!(at(RangeFn::DoubleExponentialSmoothing, &hand, 2000, 5000, &[0.5]), None);
}
