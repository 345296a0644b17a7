//! Request parameters as Prometheus reads them: from the query string and, for POST, from an
//! `application/x-www-form-urlencoded` body; times as RFC 3339 or float seconds.
use axum::http::{header, HeaderMap, Method, Uri};
use bytes::Bytes;
use strata_model::{Error, MatchOp, Matcher, Result};

/// Earliest and latest times used when a request names none (milliseconds).
pub(crate) const MIN_TIME: i64 = i64::MIN / 2;
pub(crate) const MAX_TIME: i64 = i64::MAX / 2;

/// All parameters of a request, repeated keys kept in order.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn from_request(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Self {
        let mut v: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if method == Method::POST && is_form {
            v.extend(form_urlencoded::parse(body).into_owned());
        }
        Params(v)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// `start` and `end`, defaulting to the whole time range.
    pub(crate) fn range(&self) -> Result<(i64, i64)> {
        let start = self.time("start", MIN_TIME)?;
        let end = self.time("end", MAX_TIME)?;
        if end < start {
            return Err(Error::Invalid("end timestamp must not be before start time".into()));
        }
        Ok((start, end))
    }

    fn time(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(s) => {
                parse_time(s).map_err(|e| Error::Invalid(format!("invalid parameter {key:?}: {e}")))
            }
        }
    }

    /// A non-negative `limit` (0 = none).
    pub(crate) fn limit(&self) -> Result<usize> {
        match self.get("limit") {
            None | Some("") => Ok(0),
            Some(s) => s.parse::<usize>().map_err(|_| {
                Error::Invalid(format!(
                    "invalid parameter \"limit\": cannot parse {s:?} to a valid limit"
                ))
            }),
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
    let expr = promql_parser::parser::parse(s)?;
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

/// Parses a Prometheus API time: float Unix seconds or RFC 3339. Returns milliseconds.
pub fn parse_time(s: &str) -> std::result::Result<i64, String> {
    let bad = || format!("cannot parse {s:?} to a valid timestamp");
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

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(s.get(0..4)?)?;
    let month = digits(s.get(5..7)?)?;
    let day = digits(s.get(8..10)?)?;
    let (hh, mm, ss) = (digits(s.get(11..13)?)?, digits(s.get(14..16)?)?, digits(s.get(17..19)?)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
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
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (digits(&rest[1..3])? * 60 + digits(&rest[4..6])?)
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

    #[test]
    fn times() {
        assert_eq!(parse_time("1").unwrap(), 1000);
        assert_eq!(parse_time("1.5").unwrap(), 1500);
        assert_eq!(parse_time("-1.0015").unwrap(), -1002);
        assert_eq!(parse_time("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_time("2015-07-01T20:10:51.781Z").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2015-07-01T22:10:51.781+02:00").unwrap(), 1_435_781_451_781);
        assert_eq!(parse_time("2000-03-01T00:00:00Z").unwrap(), 951_868_800_000);
        for bad in ["", "abc", "NaN", "Inf", "2015-13-01T00:00:00Z", "2015-07-01T20:10:51"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
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
