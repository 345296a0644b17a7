//! Query results written byte for byte as Prometheus writes them (its jsoniter codec and
//! `util/jsonutil`): sample values as strings, timestamps as seconds with up to three
//! decimals, label sets as objects, strings escaped as Go's `encoding/json` escapes them.
//!
//! Written by hand rather than through `serde_json::Value`, because a `Value` number cannot
//! carry Prometheus's exact timestamp text (`1.500`) and its strings escape differently.
use std::fmt::Write;

use strata_model::{Labels, Sample};
use strata_promql::{Annotations, QueryStats, QueryValue};

/// A sample value the way Prometheus's `MarshalFloat` writes it (without the quotes): Go's
/// `strconv.FormatFloat(v, 'f', -1, 64)`, switching to `'e'` for magnitudes below 1e-6 or from
/// 1e21 up. So `1`, `0.1`, `1e+21`, `1.5e-07`, `NaN`, `+Inf`, `-Inf`.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        go_exponent(v, true)
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal, never with an exponent:
        // the same digits as Go's 'f' with precision -1.
        format!("{v}")
    }
}

/// Go's `'e'` format with precision -1: shortest mantissa, exponent signed and at least two
/// digits (`1e+21`, `1.5e-07`). `pad` false gives encoding/json's form, which drops the
/// exponent's leading zero (`1.5e-7`).
fn go_exponent(v: f64, pad: bool) -> String {
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    if pad {
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{mantissa}e{sign}{}", exp.unsigned_abs())
    }
}

/// A float as a JSON number the way Go's encoding/json writes it (used for timings).
fn go_json_number(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        go_exponent(v, false)
    } else {
        format!("{v}")
    }
}

/// A millisecond timestamp as Prometheus's `MarshalTimestamp` writes it: whole seconds, then
/// `.` and exactly three digits when there is a fraction (`1435781451.781`, `1.500`, `-0.005`).
pub(crate) fn push_timestamp(out: &mut String, t: i64) {
    let abs = t.unsigned_abs();
    if t < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", abs / 1000);
    let frac = abs % 1000;
    if frac != 0 {
        let _ = write!(out, ".{frac:03}");
    }
}

/// A JSON string escaped as Go's encoding/json escapes it (HTML-safe: `<`, `>`, `&` and the
/// JavaScript line separators become `\u` escapes).
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, &l.name);
        out.push(':');
        push_str(out, &l.value);
    }
    out.push('}');
}

/// `[<t>,"<v>"]`
fn push_point(out: &mut String, t: i64, v: &str) {
    out.push('[');
    push_timestamp(out, t);
    out.push_str(",\"");
    out.push_str(v);
    out.push_str("\"]");
}

/// `"resultType":...,"result":...` of a query answer.
pub(crate) fn push_result(out: &mut String, value: &QueryValue) {
    match value {
        QueryValue::Scalar { t, v } => {
            out.push_str("\"resultType\":\"scalar\",\"result\":");
            push_point(out, *t, &format_value(*v));
        }
        QueryValue::String { t, v } => {
            out.push_str("\"resultType\":\"string\",\"result\":[");
            push_timestamp(out, *t);
            out.push(',');
            push_str(out, v);
            out.push(']');
        }
        QueryValue::Vector(samples) => {
            out.push_str("\"resultType\":\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                out.push_str(",\"value\":");
                push_point(out, s.t, &format_value(s.v));
                out.push('}');
            }
            out.push(']');
        }
        QueryValue::Matrix(series) => {
            out.push_str("\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in series.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(out, &s.labels);
                out.push_str(",\"values\":[");
                for (j, Sample { t, v }) in s.samples.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(out, *t, &format_value(*v));
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
}

/// Wall-clock timings of one query, in seconds.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timings {
    /// Parsing and preparing the query.
    pub prepare: f64,
    /// Running the engine.
    pub eval: f64,
    /// The whole request.
    pub total: f64,
}

/// `"stats":{...}` in the shape of Prometheus's `stats.BuiltinStats`.
fn push_stats(out: &mut String, stats: &QueryStats, t: &Timings) {
    let _ = write!(
        out,
        "\"stats\":{{\"timings\":{{\"evalTotalTime\":{},\"resultSortTime\":0,\
         \"queryPreparationTime\":{},\"innerEvalTime\":{},\"execQueueTime\":0,\
         \"execTotalTime\":{}}},\"samples\":{{\"totalQueryableSamples\":{},\"peakSamples\":{}}}}}",
        go_json_number(t.eval),
        go_json_number(t.prepare),
        go_json_number(t.eval),
        go_json_number(t.total),
        stats.samples_loaded,
        stats.peak_samples,
    );
}

fn push_str_array(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, ",\"{key}\":[");
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_str(out, s);
    }
    out.push(']');
}

/// The whole success body of `/api/v1/query` and `/api/v1/query_range`. Warnings and infos
/// are left out when empty, as Prometheus does.
pub(crate) fn query_body(
    value: &QueryValue,
    stats: Option<(&QueryStats, &Timings)>,
    annotations: &Annotations,
) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":\"success\",\"data\":{");
    push_result(&mut out, value);
    if let Some((s, t)) = stats {
        out.push(',');
        push_stats(&mut out, s, t);
    }
    out.push('}');
    push_str_array(&mut out, "warnings", &annotations.warnings);
    push_str_array(&mut out, "infos", &annotations.infos);
    out.push('}');
    out
}

#[cfg(test)]
#[path = "promjson_tests.rs"]
mod tests;
