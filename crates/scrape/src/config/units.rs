//! Prometheus' duration syntax (`1m30s`, `500ms`, `1d`) and byte sizes (`10MiB`, `1KB`),
//! parsed and printed exactly as `prometheus/common/model.Duration` and
//! `alecthomas/units.Base2Bytes` do.
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration written the Prometheus way. Deserializes from a string such as `30s`, or the
/// bare number `0`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PromDuration(pub Duration);

/// Parses `1h30m`, `15s`, `250ms`, `0`: units from largest to smallest, each at most once, as
/// `model.ParseDuration` requires.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    strata_model::parse_duration_ms(s).map(Duration::from_millis)
}

/// Formats a duration as `model.Duration.String` does (`1m30s`, `90d`, `0s`): years and
/// weeks only when they divide exactly. This is the text of `__scrape_interval__`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (i, (unit, mult)) in strata_model::DURATION_UNITS.iter().enumerate() {
        let exact_only = i < 2;
        if exact_only && ms % mult != 0 {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            out.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    out
}

impl fmt::Display for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// Reads a scalar with `parse`, failing inside the visitor so that the YAML error points at
/// the value itself (its key path and line), not at the enclosing mapping. Numbers are
/// parsed as their text (YAML reads a bare `0` as a number).
pub fn parse_scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<T> Visitor<'_> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.parse)(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            (self.parse)(&v.to_string()).map_err(E::custom)
        }
    }
    d.deserialize_any(V { expecting, parse })
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a duration such as 30s, 1m30s or 500ms", |s| {
            parse_duration(s).map(PromDuration)
        })
    }
}

/// A byte size written as Prometheus' `body_size_limit` is: `10MiB`, `512KB`, `1.5GB`
/// (KB and KiB both mean 1024), or `0` for no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

/// Parses `units.ParseBase2Bytes` syntax: decimal numbers, each followed by a unit from one
/// family (`B`, `KiB`, `MiB`, ... or `B`, `KB`, `MB`, ...).
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    const IEC: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    const OLD: [&str; 7] = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    if s == "0" {
        return Ok(0);
    }
    parse_units(s, &IEC)
        .or_else(|_| parse_units(s, &OLD))
        .map_err(|e| format!("invalid byte size {s:?}: {e} (use e.g. 10MiB or 512KB)"))
}

fn parse_units(s: &str, units: &[&str; 7]) -> Result<u64, &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        if num_len == 0 {
            return Err("expected a number");
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| "bad number")?;
        rest = &rest[num_len..];
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit() && *b != b'.').count();
        if unit_len == 0 {
            return Err("missing unit");
        }
        let exp = units.iter().position(|u| *u == &rest[..unit_len]).ok_or("unknown unit")?;
        rest = &rest[unit_len..];
        total += value * 1024f64.powi(i32::try_from(exp).unwrap_or(0));
    }
    if total >= u64::MAX as f64 {
        return Err("out of range");
    }
    // Truncation toward zero is what the Go parser does with fractional bytes.
    Ok(total as u64)
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a byte size such as 10MiB", |s| parse_byte_size(s).map(ByteSize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_prometheus() {
        let ms = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ms("1m30s"), Ok(90_000));
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("1d"), Ok(86_400_000));
        assert_eq!(
            ms("1y2w3d4h5m6s7ms"),
            Ok(((((365 + 14 + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1000 + 7)
        );
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("0s"), Ok(0));
        for bad in ["", "5", "5x", "m", "-1s", "1s1m", "1m1m", "1.5s", " 1s", "1s ", "1µs"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration("99999999999y"), Err("duration out of range".into()));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit \"x\""));
    }

    #[test]
    fn durations_format_like_prometheus() {
        let f = |ms: u64| format_duration(Duration::from_millis(ms));
        assert_eq!(f(0), "0s");
        assert_eq!(f(15_000), "15s");
        assert_eq!(f(90_000), "1m30s");
        assert_eq!(f(86_400_000 * 90), "90d");
        assert_eq!(f(86_400_000 * 14), "2w");
        assert_eq!(f(86_400_000 * 365), "1y");
        assert_eq!(f(3_600_000 + 1), "1h1ms");
        for s in ["1m", "10s", "1h30m", "500ms", "1d", "2w", "1y"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("0"), Ok(0));
        assert_eq!(parse_byte_size("10MiB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_byte_size("1KB"), Ok(1024));
        assert_eq!(parse_byte_size("1.5KiB"), Ok(1536));
        assert_eq!(parse_byte_size("100B"), Ok(100));
        assert_eq!(parse_byte_size("1GiB512MiB"), Ok(3 << 29));
        for bad in ["", "10", "10 MB", "10mb", "MB", "1KiB1KB"] {
            assert!(parse_byte_size(bad).is_err(), "{bad:?}");
        }
    }
}
