//! Pass/fail rules (FORMAT.md 4.4): errors, annotations, values.

use std::collections::HashMap;

use strata_model::{is_stale_nan, Labels, Sample};

use super::parse::{Expected, ExpectedSeries, Spec, TextMatch};
use super::syntax::{fmt_labels, SeqValue};
use crate::value::{Annotations, MatrixSeries, QueryError, QueryValue};

/// Relative error allowed between expected and actual values.
pub(crate) const EPSILON: f64 = 1e-6;

/// Prometheus' `almost.Equal`: stale markers equal only each other, any two NaNs are equal,
/// equal values (including infinities) are equal; near zero the difference must be tiny in
/// absolute terms, elsewhere relative to `|a| + |b|`.
pub(crate) fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if is_stale_nan(a) || is_stale_nan(b) {
        return is_stale_nan(a) && is_stale_nan(b);
    }
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

/// The query failed: passes only under `expect fail` whose conditions match the error text.
pub(crate) fn check_error(spec: &Spec, err: &QueryError) -> Result<(), String> {
    let text = err.to_string();
    match &spec.fail {
        None => Err(format!("unexpected error: {text}")),
        Some(conds) => match conds.iter().find(|c| !c.matches(&text)) {
            None => Ok(()),
            Some(c) => Err(format!("expected error {}, but got: {text}", describe(c))),
        },
    }
}

fn describe(m: &TextMatch) -> String {
    match m {
        TextMatch::Any => "of any kind".into(),
        TextMatch::Exact(s) => format!("message {s:?}"),
        TextMatch::Regex(r) => format!("matching pattern {:?}", r.as_str()),
    }
}

pub(crate) fn check_annotations(spec: &Spec, ann: &Annotations) -> Result<(), String> {
    if spec.warn_required && ann.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if spec.info_required && ann.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    check_kind("warn", &spec.warns, &ann.warnings, ann)?;
    check_kind("info", &spec.infos, &ann.infos, ann)?;
    if spec.no_warn && !ann.warnings.is_empty() {
        return Err(format!("unexpected warning annotations: {:?}", ann.warnings));
    }
    if spec.no_info && !ann.infos.is_empty() {
        return Err(format!("unexpected info annotations: {:?}", ann.infos));
    }
    Ok(())
}

fn check_kind(
    kind: &str,
    expected: &[TextMatch],
    actual: &[String],
    all: &Annotations,
) -> Result<(), String> {
    if expected.is_empty() {
        return Ok(());
    }
    if actual.is_empty() {
        return Err(format!("expected {kind} annotations but none were found"));
    }
    if let Some(e) = expected.iter().find(|e| !actual.iter().any(|a| e.matches(a))) {
        let found: Vec<&String> = all.warnings.iter().chain(&all.infos).collect();
        return Err(format!(
            "expected {kind} annotation {} but no matching annotation was found, found: {found:?}",
            describe(e)
        ));
    }
    if let Some(a) = actual.iter().find(|a| !expected.iter().any(|e| e.matches(a))) {
        return Err(format!("unexpected {kind} annotation {a:?}"));
    }
    Ok(())
}

/// Compares a successful result with the expectation. `window` is (start, end, step) of
/// the expected points of a matrix: the range query's, or the `expect range vector` line's;
/// `None` for an instant query without one.
pub(crate) fn compare_result(
    spec: &Spec,
    value: &QueryValue,
    window: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    match (value, &spec.expected) {
        (QueryValue::Scalar { v, .. }, Expected::Scalar(exp)) => {
            if almost_equal(*exp, *v, EPSILON) {
                Ok(())
            } else {
                Err(format!("expected scalar {exp} but got {v}"))
            }
        }
        (QueryValue::String { v, .. }, Expected::String(exp)) => {
            if v == exp {
                Ok(())
            } else {
                Err(format!("expected string {exp:?} but got {v:?}"))
            }
        }
        (QueryValue::Vector(vec), Expected::Series(exp)) => {
            let index = expected_index(exp);
            for (pos, s) in vec.iter().enumerate() {
                let Some(&i) = index.get(&s.labels) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {}",
                        fmt_labels(&s.labels),
                        s.v
                    ));
                };
                if spec.ordered && i != pos {
                    return Err(format!(
                        "expected metric {} at position {} but was at {}",
                        fmt_labels(&s.labels),
                        i + 1,
                        pos + 1
                    ));
                }
                let want = match exp[i].values.first() {
                    Some(SeqValue::Float(f)) => *f,
                    Some(SeqValue::Histogram) => {
                        return Err(format!(
                            "expected histogram for {} but got float value {}",
                            fmt_labels(&s.labels),
                            s.v
                        ))
                    }
                    Some(SeqValue::Omitted) | None => {
                        return Err(format!("no expected value for {}", fmt_labels(&s.labels)))
                    }
                };
                if !almost_equal(want, s.v, EPSILON) {
                    return Err(format!(
                        "expected {want} for {} but got {}",
                        fmt_labels(&s.labels),
                        s.v
                    ));
                }
            }
            missing(exp, vec.iter().map(|s| &s.labels))
        }
        (QueryValue::Matrix(mat), Expected::Series(exp)) => {
            if spec.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            compare_matrix(mat, exp, window)
        }
        (got, _) => Err(format!("expected {} but got {}", expected_kind(spec), value_kind(got))),
    }
}

fn compare_matrix(
    mat: &[MatrixSeries],
    exp: &[ExpectedSeries],
    window: Option<(i64, i64, i64)>,
) -> Result<(), String> {
    check_sorted(mat)?;
    let index = expected_index(exp);
    for s in mat {
        let Some(&i) = index.get(&s.labels) else {
            return Err(format!(
                "unexpected metric {} in result, has {}",
                fmt_labels(&s.labels),
                fmt_points(&s.samples)
            ));
        };
        let mut want = Vec::new();
        for (k, v) in exp[i].values.iter().enumerate() {
            let t = match window {
                Some((start, end, step)) => {
                    let t = (k as i64).checked_mul(step).and_then(|d| start.checked_add(d));
                    t.filter(|&t| t <= end)
                }
                None => None,
            };
            let Some(t) = t else {
                return Err(format!(
                    "expected {} points for {}, but query time range cannot return this many points",
                    exp[i].values.len(),
                    fmt_labels(&s.labels)
                ));
            };
            match v {
                SeqValue::Float(f) => want.push(Sample { t, v: *f }),
                SeqValue::Omitted => {}
                SeqValue::Histogram => {
                    return Err(format!(
                        "expected a histogram at t={t} for {} but the result has only floats",
                        fmt_labels(&s.labels)
                    ))
                }
            }
        }
        if want.len() != s.samples.len() {
            return Err(format!(
                "expected {} float points for {}, but got {}",
                want.len(),
                fmt_labels(&s.labels),
                fmt_points(&s.samples)
            ));
        }
        for (k, (w, a)) in want.iter().zip(&s.samples).enumerate() {
            if w.t != a.t {
                return Err(format!(
                    "expected float value at index {k} for {} to have timestamp {}, but it had \
                     timestamp {} (result has {})",
                    fmt_labels(&s.labels),
                    w.t,
                    a.t,
                    fmt_points(&s.samples)
                ));
            }
            if !almost_equal(w.v, a.v, EPSILON) {
                return Err(format!(
                    "expected float value at index {k} (t={}) for {} to be {}, but got {} \
                     (result has {})",
                    a.t,
                    fmt_labels(&s.labels),
                    w.v,
                    a.v,
                    fmt_points(&s.samples)
                ));
            }
        }
    }
    missing(exp, mat.iter().map(|s| &s.labels))
}

/// Fails when a matrix is not sorted by label set (`labels.Compare`, which is `Labels`'
/// derived order: pairs compared name then value, a prefix first).
pub(crate) fn check_sorted(mat: &[MatrixSeries]) -> Result<(), String> {
    match mat.windows(2).position(|w| w[0].labels > w[1].labels) {
        None => Ok(()),
        Some(i) => Err(format!(
            "matrix results should always be sorted by labels, but series at index {} with \
             labels {} sorts before series at index {i} with labels {}",
            i + 1,
            fmt_labels(&mat[i + 1].labels),
            fmt_labels(&mat[i].labels)
        )),
    }
}

fn expected_index(exp: &[ExpectedSeries]) -> HashMap<&Labels, usize> {
    exp.iter().enumerate().map(|(i, s)| (&s.labels, i)).collect()
}

fn missing<'a>(
    exp: &[ExpectedSeries],
    got: impl Iterator<Item = &'a Labels>,
) -> Result<(), String> {
    let got: std::collections::HashSet<&Labels> = got.collect();
    match exp.iter().find(|e| !got.contains(&e.labels)) {
        None => Ok(()),
        Some(e) => Err(format!("expected metric {} not found", fmt_labels(&e.labels))),
    }
}

fn fmt_points(samples: &[Sample]) -> String {
    const SHOWN: usize = 12;
    let pts: Vec<String> =
        samples.iter().take(SHOWN).map(|s| format!("{} @[{}]", s.v, s.t)).collect();
    let more = if samples.len() > SHOWN { ", ..." } else { "" };
    let plural = if samples.len() == 1 { "" } else { "s" };
    format!("{} float point{plural} [{}{more}]", samples.len(), pts.join(", "))
}

fn expected_kind(spec: &Spec) -> &'static str {
    match &spec.expected {
        Expected::Scalar(_) => "a scalar",
        Expected::String(_) => "a string",
        Expected::Series(_) => "a vector or matrix",
    }
}

pub(crate) fn value_kind(v: &QueryValue) -> String {
    match v {
        QueryValue::Scalar { v, .. } => format!("scalar {v}"),
        QueryValue::String { v, .. } => format!("string {v:?}"),
        QueryValue::Vector(s) => format!("a vector of {} samples", s.len()),
        QueryValue::Matrix(s) => format!("a matrix of {} series", s.len()),
    }
}
