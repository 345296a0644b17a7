//! The Prometheus text format (0.0.4, plus 1.0.0's quoted names), read the way
//! Prometheus' `promparse` reads it: spaces and tabs between tokens, blank lines and
//! comments anywhere, trailing commas in label sets, integer millisecond timestamps.

use super::lex::{self, Cursor};
use super::{MetricType, Output, RawKey, RawSample, Result};

pub(crate) fn parse(body: &[u8], out: &mut Output) -> Result<()> {
    let mut cur = Cursor::new(body);
    let mut last_type = MetricType::Unknown;
    loop {
        cur.skip_blanks();
        match cur.peek() {
            None => return Ok(()),
            Some(b'\n') => {
                cur.bump();
            }
            Some(b'#') => {
                cur.bump();
                comment_or_meta(&mut cur, out, &mut last_type)?;
            }
            Some(c) if c == b'{' || lex::is_name_start(c) => {
                // A series the scrape cache knows is only scanned, not parsed; anything
                // else (or anything the scan does not like) takes the full parser.
                let mut fast = cur.clone();
                let start = cur.pos();
                if let Some(end) = fast.scan_series(true) {
                    let key = RawKey {
                        start: start as u32,
                        end: end as u32,
                        kind: last_type,
                        openmetrics: false,
                    };
                    if u32::try_from(end).is_ok() && out.knows(body, key) {
                        let (value, ts) = value_and_timestamp(&mut fast)?;
                        out.push_known(key, value, ts);
                        cur = fast;
                        continue;
                    }
                }
                let raw = series(&mut cur)?;
                let key = u32::try_from(raw.series_end).ok().map(|end| RawKey {
                    start: start as u32,
                    end,
                    kind: last_type,
                    openmetrics: false,
                });
                out.push(raw, last_type, key)?;
            }
            Some(_) => {
                return Err(cur.err(format!("expected a valid start token, got {}", cur.got())))
            }
        }
    }
}

fn end_of_line(cur: &Cursor) -> bool {
    matches!(cur.peek(), None | Some(b'\n'))
}

fn skip_line(cur: &mut Cursor) {
    cur.take_while(|c| c != b'\n');
    cur.bump();
}

/// After a `#`: `# HELP name text`, `# TYPE name type`, or a comment.
fn comment_or_meta(cur: &mut Cursor, out: &mut Output, last_type: &mut MetricType) -> Result<()> {
    if !cur.skip_blanks() {
        skip_line(cur);
        return Ok(());
    }
    let is_help = if cur.eat_str(b"HELP") {
        true
    } else if cur.eat_str(b"TYPE") {
        false
    } else {
        skip_line(cur);
        return Ok(());
    };
    if !cur.skip_blanks() {
        // `# HELPER ...`, `# TYPE` at the end of a line: a comment.
        skip_line(cur);
        return Ok(());
    }
    if end_of_line(cur) {
        // `# HELP ` with nothing after it: prometheus/common reads this as a comment.
        skip_line(cur);
        return Ok(());
    }
    let what = if is_help { "HELP" } else { "TYPE" };
    let name = match cur.peek() {
        Some(b'"') => cur.quoted("metric name")?,
        _ => {
            let n = cur.metric_name();
            if n.is_empty() {
                return Err(
                    cur.err(format!("expected metric name after {what}, got {}", cur.got()))
                );
            }
            lex::utf8(n, "metric name", cur.line())?.to_string()
        }
    };
    let text: &[u8] = if end_of_line(cur) {
        b""
    } else if matches!(cur.peek(), Some(b' ' | b'\t')) {
        cur.bump();
        cur.take_while(|c| c != b'\n')
    } else {
        return Err(cur.err(format!("expected text in {what}, got {}", cur.got())));
    };
    if is_help {
        let help = lex::utf8(text, "help text", cur.line())?;
        out.meta.set_help(&name, lex::unescape(help, false));
    } else {
        let kind = MetricType::from_text_format(text).ok_or_else(|| {
            cur.err(format!("invalid metric type {:?}", String::from_utf8_lossy(text)))
        })?;
        *last_type = kind;
        out.meta.set_type(&name, kind);
    }
    cur.bump(); // newline, if any
    Ok(())
}

/// `name{labels} value [timestamp]`, or `{"name", labels} value [timestamp]`.
fn series(cur: &mut Cursor) -> Result<RawSample> {
    let line = cur.line();
    let mut name = None;
    let plain = cur.metric_name();
    if !plain.is_empty() {
        name = Some(lex::utf8(plain, "metric name", line)?.to_string());
        cur.skip_blanks();
    }
    let mut labels = Vec::new();
    if cur.eat(b'{') {
        label_set(cur, &mut name, &mut labels)?;
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(cur.err("metric name not set"));
    };
    let series_end = cur.pos();
    let (value, ts) = value_and_timestamp(cur)?;
    Ok(RawSample { line, name, labels, value, ts, exemplar: None, series_end })
}

/// `value [timestamp]` to the end of the line (consumed).
fn value_and_timestamp(cur: &mut Cursor) -> Result<(f64, Option<i64>)> {
    cur.skip_blanks();
    let tok = cur.take_while(|c| !matches!(c, b'{' | b' ' | b'\t' | b'\n' | 0));
    if tok.is_empty() {
        return Err(cur.err(format!("expected value after metric, got {}", cur.got())));
    }
    let value = lex::parse_value(tok)
        .ok_or_else(|| cur.err(format!("invalid value {:?}", String::from_utf8_lossy(tok))))?;
    cur.skip_blanks();
    let mut ts = None;
    if !end_of_line(cur) {
        // Prometheus' lexer takes digits only; prometheus/common (and its fuzz corpus)
        // also takes a minus sign, which costs nothing to allow.
        let minus = cur.eat(b'-');
        let digits = cur.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Err(cur.err(format!("expected timestamp or new record, got {}", cur.got())));
        }
        let t = std::str::from_utf8(digits).ok().and_then(|d| d.parse::<i64>().ok());
        let t = if minus { t.map(|t| -t) } else { t };
        ts = Some(t.ok_or_else(|| cur.err("timestamp out of range"))?);
        cur.skip_blanks();
        if !end_of_line(cur) {
            return Err(cur.err(format!("expected next entry after timestamp, got {}", cur.got())));
        }
    }
    cur.bump();
    Ok((value, ts))
}

/// The inside of `{...}` (the brace is consumed): `name="value"` pairs separated by
/// optional commas, blanks anywhere, and at most one quoted metric name.
fn label_set(
    cur: &mut Cursor,
    name: &mut Option<String>,
    labels: &mut Vec<(String, String)>,
) -> Result<()> {
    loop {
        cur.skip_blanks();
        let label = match cur.peek() {
            Some(b'}') => {
                cur.bump();
                return Ok(());
            }
            Some(b'"') => {
                let q = cur.quoted("label name")?;
                cur.skip_blanks();
                if matches!(cur.peek(), Some(b',' | b'}')) {
                    if name.is_some() {
                        return Err(cur.err("metric name already set"));
                    }
                    *name = Some(q);
                    cur.eat(b',');
                    continue;
                }
                q
            }
            _ => {
                let n = cur.label_name();
                if n.is_empty() {
                    return Err(cur.err(format!("expected label name, got {}", cur.got())));
                }
                lex::utf8(n, "label name", cur.line())?.to_string()
            }
        };
        cur.skip_blanks();
        if !cur.eat(b'=') {
            return Err(cur.err(format!("expected equal, got {}", cur.got())));
        }
        cur.skip_blanks();
        if cur.peek() != Some(b'"') {
            return Err(cur.err(format!("expected label value, got {}", cur.got())));
        }
        let value = cur.quoted("label value")?;
        labels.push((label, value));
        cur.skip_blanks();
        cur.eat(b',');
    }
}

#[cfg(test)]
mod tests {
    use crate::expfmt::{parse_format, Format, ParseOptions};

    fn ok(s: &str) -> crate::expfmt::Parsed {
        parse_format(s.as_bytes(), Format::PrometheusText, 7, &ParseOptions::default())
            .unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn whitespace_and_comments() {
        let p = ok("\n # HELP  m2  \tdoc\n  #    TYPE    m2 gauge\nm2{a=\"1\"\t,b   =   \"2\"\t} +Inf 54321\nm2{ a = \"1\" , }-Inf\n# HELP \n# H");
        assert_eq!(p.samples.len(), 2);
        assert_eq!(p.samples[0].timestamp_ms, 54321);
        assert!(p.samples[0].explicit_timestamp);
        assert_eq!(p.samples[1].value, f64::NEG_INFINITY);
        assert_eq!(p.samples[1].timestamp_ms, 7);
        assert_eq!(p.metadata[0].help, " \tdoc");
    }
}
