//! Request parameters as Prometheus reads them: from the query string and, for POST, from an
//! `application/x-www-form-urlencoded` body; times as RFC 3339 or float seconds.
use axum::http::{header, HeaderMap, Method, Uri};
use bytes::Bytes;
use strata_model::{Error, MatchOp, Matcher, Result};

use crate::response::ApiError;

/// Earliest and latest times used when a request names none (milliseconds).
pub(crate) const MIN_TIME: i64 = i64::MIN / 2;
pub(crate) const MAX_TIME: i64 = i64::MAX / 2;

/// The largest request body read for form parameters (Go's `maxFormSize`).
const MAX_FORM_BYTES: usize = 10 << 20;

/// All parameters of a request, repeated keys kept in order. An extractor: a handler takes
/// `p: Params` as its last argument (it reads the body).
pub(crate) struct Params(Vec<(String, String)>);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = axum::response::Response;

    async fn from_request(
        req: axum::extract::Request,
        _state: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        let (method, uri, headers) =
            (req.method().clone(), req.uri().clone(), req.headers().clone());
        // Go's form parsing reads up to 10 MiB of body (long `match[]` lists from Grafana
        // come this way); past that, or when the body cannot be read, Prometheus answers
        // `bad_data`.
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM_BYTES).await.map_err(|e| {
            ApiError::bad_data(format!(
                "error parsing form values (at most {MAX_FORM_BYTES} bytes are read): {e}"
            ))
            .into_response()
        })?;
        Ok(Params::parse(&method, &uri, &headers, &body))
    }
}

impl Params {
    pub(crate) fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Self {
        // As Go's `Request.FormValue`: body parameters come before the URL's.
        let mut v: Vec<(String, String)> = Vec::new();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .and_then(|c| c.split(';').next())
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if method == Method::POST && is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(q) = uri.query() {
            v.extend(form_urlencoded::parse(q.as_bytes()).into_owned());
        }
        Params(v)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// `start` and `end`, defaulting to the whole time range; `None` when `end` is before
    /// `start`: a range nothing falls in (Prometheus answers such reads with no data).
    pub(crate) fn range(&self) -> Result<Option<(i64, i64)>> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        Ok((start <= end).then_some((start, end)))
    }

    /// An optional time parameter, with Prometheus's `parseTimeParam` message.
    pub(crate) fn time(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => parse_time(s).map_err(|e| {
                Error::Invalid(format!(
                    "invalid parameter {key:?}: invalid time value for '{key}': {e}"
                ))
            }),
        }
    }

    /// A required time parameter (`start`/`end` of a range query): absent reads as "".
    pub(crate) fn required_time(&self, key: &str) -> Result<i64> {
        let s = self.get(key).unwrap_or("");
        parse_time(s).map_err(|e| Error::Invalid(format!("invalid parameter {key:?}: {e}")))
    }

    /// A non-negative `limit` (0 = none), refused with Go's `strconv.Atoi` wording.
    pub(crate) fn limit(&self) -> Result<usize> {
        let bad = |why: String| Error::Invalid(format!("invalid parameter \"limit\": {why}"));
        match self.get("limit") {
            None | Some("") => Ok(0),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n < 0 => Err(bad("limit must be non-negative".into())),
                Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(e) => {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow
                        | std::num::IntErrorKind::NegOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    Err(bad(format!("strconv.Atoi: parsing {s:?}: {why}")))
                }
            },
        }
    }

    /// All `match[]` selectors, each turned into its matcher sets.
    pub(crate) fn match_sets(&self) -> Result<Vec<Vec<Matcher>>> {
        let mut sets = Vec::new();
        for s in self.all("match[]") {
            let parsed = parse_selector(s)
                .map_err(|e| Error::Invalid(format!("invalid parameter \"match[]\": {e}")))?;
            for set in parsed {
                if set.iter().all(Matcher::matches_empty) {
                    return Err(Error::Invalid(
                        "match[] must contain at least one non-empty matcher".into(),
                    ));
                }
                sets.push(set);
            }
        }
        Ok(sets)
    }
}

/// Parses a series selector such as `up{job="node"}` into matcher sets (more than one when
/// the selector uses `or` inside the braces).
pub fn parse_selector(s: &str) -> std::result::Result<Vec<Vec<Matcher>>, String> {
    let expr = strata_promql::guard::parse(s)?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("{s:?} is not a series selector"));
    };
    let convert = |m: &promql_parser::label::Matcher| -> std::result::Result<Matcher, String> {
        use promql_parser::label::MatchOp as P;
        let op = match &m.op {
            P::Equal => MatchOp::Equal,
            P::NotEqual => MatchOp::NotEqual,
            P::Re(_) => MatchOp::Regex,
            P::NotRe(_) => MatchOp::NotRegex,
        };
        Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| e.to_string())
    };
    let mut base = Vec::new();
    if let Some(name) = &vs.name {
        base.push(
            Matcher::new(MatchOp::Equal, strata_model::METRIC_NAME, name.clone())
                .map_err(|e| e.to_string())?,
        );
    }
    if vs.matchers.or_matchers.is_empty() {
        let mut set = base;
        for m in &vs.matchers.matchers {
            set.push(convert(m)?);
        }
        return Ok(vec![set]);
    }
    let mut sets = Vec::new();
    for group in &vs.matchers.or_matchers {
        let mut set = base.clone();
        for m in group {
            set.push(convert(m)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// Parses a Prometheus API duration: float seconds (`15`, `0.5`) or a Prometheus duration
/// (`1h30m`, `15s`, `250ms`, units y w d h m s ms in that order). Returns nanoseconds; may be
/// zero or negative (callers decide), errors carry Prometheus's `parseDuration` texts.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ns = f * 1e9;
        if ns.is_nan() {
            return Err(format!("cannot parse {s:?} to a valid duration"));
        }
        if ns >= i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"));
        }
        return Ok(ns as i64);
    }
    prom_duration_ms(s)
        .and_then(|ms| ms.checked_mul(1_000_000))
        .ok_or_else(|| format!("cannot parse {s:?} to a valid duration"))
}

/// `model.ParseDuration`: each unit at most once, largest first; `0` alone is allowed.
fn prom_duration_ms(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let value: i64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let idx = UNITS.iter().position(|(name, _)| *name == &rest[..u])?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        total = total.checked_add(value.checked_mul(UNITS[idx].1)?)?;
        rest = &rest[u..];
    }
    Some(total)
}

/// How Prometheus prints its own default start and end times; accepted back as those bounds.
const MIN_TIME_FORMATTED: &str = "-292273086-05-16T16:47:06Z";
const MAX_TIME_FORMATTED: &str = "292277025-08-18T07:12:54.999999999Z";

/// Parses a Prometheus API time: float Unix seconds or RFC 3339. Returns milliseconds.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
    match s {
        MIN_TIME_FORMATTED => return Ok(MIN_TIME),
        MAX_TIME_FORMATTED => return Ok(MAX_TIME),
        _ => {}
    }
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return Err(bad());
        }
        let ms = (f * 1000.0).round();
        return Ok(ms.clamp(MIN_TIME as f64, MAX_TIME as f64) as i64);
    }
    parse_rfc3339(s).ok_or_else(bad)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days in `month` (1-12) of `year`, proleptic Gregorian.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, as Go's `time.Parse(time.RFC3339Nano, …)` takes
/// it: an upper-case `T` and `Z`, a day that exists in its month, no leap second, and offsets
/// of at most 24 hours and 60 minutes.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(s.get(0..4)?)?;
    let month = digits(s.get(5..7)?)?;
    let day = digits(s.get(8..10)?)?;
    let (hh, mm, ss) = (digits(s.get(11..13)?)?, digits(s.get(14..16)?)?, digits(s.get(17..19)?)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let f = &frac[..n];
        let padded: String = f.chars().chain("000".chars()).take(3).collect();
        millis = digits(&padded)?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (oh, om) = (digits(rest.get(1..3)?)?, digits(rest.get(4..6)?)?);
            if oh > 24 || om > 60 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A form body past Go's 10 MiB is `bad_data`, not read on (end to end, the server's
    /// answer races the client still sending, so this is checked here).
    #[test]
    fn form_bodies_past_10_mib_are_bad_data() {
        use axum::extract::FromRequest;
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let request = |len: usize| {
            axum::http::Request::post("/api/v1/series")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!("match[]=up&x={}", "a".repeat(len))))
                .unwrap()
        };
        let p = rt.block_on(Params::from_request(request(MAX_FORM_BYTES - 100), &())).ok().unwrap();
        assert_eq!(p.get("match[]"), Some("up"));
        let Err(r) = rt.block_on(Params::from_request(request(MAX_FORM_BYTES), &())) else {
            panic!("a body past the limit was read")
        };
        assert_eq!(r.status(), 400);
        let body = rt.block_on(axum::body::to_bytes(r.into_body(), 1 << 20)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data", "{v}");
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1").unwrap(), 1000);
        assert_eq!(parse_time("1.5").unwrap(), 1500);
        assert_eq!(parse_time("-1.0015").unwrap(), -1002);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T22:10:51.781+02:00").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2000-03-01T00:00:00Z").unwrap(), 951_868_800_000);
        assert_eq!(parse_time(MIN_TIME_FORMATTED).unwrap(), MIN_TIME);
        assert_eq!(parse_time(MAX_TIME_FORMATTED).unwrap(), MAX_TIME);
        assert_eq!(parse_time("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_time("2015-07-01T20:10:51+24:00").unwrap(), 1_435_695_051_000);
        // What Go's RFC 3339 parser refuses: days a month does not have, leap seconds,
        // offsets past 24:60, a lower-case or missing `T`, a lower-case `Z`.
        for bad in [
            "",
            "abc",
            "NaN",
            "Inf",
            "2015-13-01T00:00:00Z",
            "2015-07-01T20:10:51",
            "2023-02-29T00:00:00Z",
            "2023-02-31T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2015-06-30T23:59:60Z",
            "2015-07-01T20:10:51+25:00",
            "2015-07-01T20:10:51+01:61",
            "2015-07-01t20:10:51Z",
            "2015-07-01 20:10:51Z",
            "2015-07-01T20:10:51z",
            "2015-07-01T20:10:51.Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let s = 1_000_000_000;
        assert_eq!(parse_duration("15").unwrap(), 15 * s);
        assert_eq!(parse_duration("0.5").unwrap(), s / 2);
        assert_eq!(parse_duration("15s").unwrap(), 15 * s);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * s);
        assert_eq!(parse_duration("250ms").unwrap(), s / 4);
        assert_eq!(parse_duration("1d").unwrap(), 86_400 * s);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("-1").unwrap(), -s);
        for bad in ["", "abc", "5x", "1.5s", "30m1h", "1s1s", "NaN"] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(e, format!("cannot parse {bad:?} to a valid duration"));
        }
        assert!(parse_duration("1e300").unwrap_err().contains("overflows int64"));
        assert!(parse_duration("300y").is_err(), "overflows i64 nanoseconds");
    }

    #[test]
    fn selectors() {
        let sets = parse_selector(r#"up{job=~"a|b", x!="y"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 3);
        assert!(sets[0][1].matches("a") || sets[0][2].matches("a"));
        assert!(parse_selector("rate(up[5m])").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
