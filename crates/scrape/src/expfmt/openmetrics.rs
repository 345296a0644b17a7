//! OpenMetrics 1.0 text, read the way Prometheus' `openmetricsparse` reads it: single
//! spaces only, no blank lines or free comments, timestamps in (fractional) seconds,
//! exemplars after ` # `, and `# EOF` as the last line.

use super::lex::{self, Cursor};
use super::strict::Strict;
use super::{MetricType, Output, ParseError, RawExemplar, RawKey, RawSample, Result};

/// Exemplar label sets longer than this many runes (names and values) are invalid
/// (OpenMetrics 1.0); Prometheus drops such exemplars when it stores them.
const EXEMPLAR_MAX_RUNES: usize = 128;

pub(crate) fn parse(body: &[u8], strict: bool, out: &mut Output) -> Result<()> {
    let mut cur = Cursor::new(body);
    let mut last_type = MetricType::Unknown;
    let mut checker = strict.then(Strict::default);
    loop {
        match cur.peek() {
            None => return Err(cur.err("data does not end with # EOF")),
            Some(b'#') => {
                if !cur.eat_str(b"# ") {
                    return Err(cur.err(format!("expected a valid start token, got {}", cur.got())));
                }
                if cur.eat_str(b"EOF") {
                    cur.eat(b'\n');
                    if !cur.at_end() {
                        return Err(cur.err("unexpected data after # EOF"));
                    }
                    if let Some(c) = checker.as_mut() {
                        c.finish(cur.line())?;
                    }
                    return Ok(());
                }
                meta(&mut cur, out, &mut last_type, checker.as_mut())?;
            }
            Some(c) if c == b'{' || lex::is_name_start(c) => {
                let start = cur.pos();
                let key = |end: usize| {
                    u32::try_from(end).ok().map(|end| RawKey {
                        start: start as u32,
                        end,
                        kind: last_type,
                        openmetrics: true,
                    })
                };
                // As in the text format: a series the scrape cache knows is only scanned.
                // Not in strict mode (its checker needs every sample's labels), and not for
                // lines with an exemplar.
                if checker.is_none() {
                    let mut fast = cur.clone();
                    if let Some(k) = fast.scan_series(false).and_then(key) {
                        if out.knows(body, k) {
                            let (value, ts, exemplar) = sample_tail(&mut fast, strict)?;
                            if exemplar.is_none() {
                                out.push_known(k, value, ts);
                                cur = fast;
                                continue;
                            }
                        }
                    }
                }
                let raw = series(&mut cur, strict)?;
                if let Some(c) = checker.as_mut() {
                    c.sample(&raw)?;
                }
                let k = if checker.is_none() { key(raw.series_end) } else { None };
                out.push(raw, last_type, k)?;
            }
            Some(_) => {
                return Err(cur.err(format!("expected a valid start token, got {}", cur.got())))
            }
        }
    }
}

fn meta(
    cur: &mut Cursor,
    out: &mut Output,
    last_type: &mut MetricType,
    checker: Option<&mut Strict>,
) -> Result<()> {
    let line = cur.line();
    let what = if cur.eat_str(b"HELP ") {
        "HELP"
    } else if cur.eat_str(b"TYPE ") {
        "TYPE"
    } else if cur.eat_str(b"UNIT ") {
        "UNIT"
    } else {
        return Err(cur.err(format!("expected a valid start token, got {}", cur.got())));
    };
    let name = match cur.peek() {
        Some(b'"') => cur.quoted("metric name")?,
        _ => {
            let n = cur.metric_name();
            if n.is_empty() {
                return Err(
                    cur.err(format!("expected metric name after {what}, got {}", cur.got()))
                );
            }
            lex::utf8(n, "metric name", line)?.to_string()
        }
    };
    if !cur.eat(b' ') {
        return Err(cur.err(format!("expected text in {what}")));
    }
    let text = cur.take_while(|c| c != b'\n');
    if !cur.eat(b'\n') {
        return Err(cur.err("data does not end with # EOF"));
    }
    match what {
        "HELP" => {
            let help = lex::utf8(text, "help text", line)?;
            out.meta.set_help(&name, lex::unescape(help, true));
        }
        "TYPE" => {
            let kind = MetricType::from_openmetrics(text).ok_or_else(|| {
                ParseError::at(
                    line,
                    format!("invalid metric type {:?}", String::from_utf8_lossy(text)),
                )
            })?;
            *last_type = kind;
            out.meta.set_type(&name, kind);
        }
        _ => {
            let unit = lex::utf8(text, "unit", line)?;
            let suffix_ok = unit.is_empty()
                || name
                    .strip_suffix(unit)
                    .is_some_and(|head| head.len() > 1 && head.ends_with('_'));
            if !suffix_ok {
                return Err(ParseError::at(
                    line,
                    format!("unit {unit:?} not a suffix of metric {name:?}"),
                ));
            }
            out.meta.set_unit(&name, unit.to_string());
        }
    }
    if let Some(c) = checker {
        c.meta(line, what, &name, text)?;
    }
    Ok(())
}

/// One token up to the next space or newline, after exactly one space.
fn spaced_token<'a>(cur: &mut Cursor<'a>) -> Option<&'a [u8]> {
    if !cur.eat(b' ') {
        return None;
    }
    let tok = cur.take_while(|c| c != b' ' && c != b'\n');
    (!tok.is_empty()).then_some(tok)
}

fn seconds_to_ms(cur: &Cursor, tok: &[u8], what: &str) -> Result<i64> {
    let ts = lex::parse_value(tok)
        .ok_or_else(|| cur.err(format!("invalid {what} {:?}", String::from_utf8_lossy(tok))))?;
    if !ts.is_finite() {
        return Err(cur.err(format!("invalid {what} {ts}")));
    }
    // Prometheus truncates; `as` saturates where Go's conversion is undefined.
    Ok((ts * 1000.0) as i64)
}

/// The end of a sample or exemplar line: `\n`, or the end of input, which is an error
/// because `# EOF` must follow.
fn line_end(cur: &mut Cursor, after: &str) -> Result<()> {
    match cur.peek() {
        Some(b'\n') => {
            cur.bump();
            Ok(())
        }
        None => Err(cur.err("data does not end with # EOF")),
        Some(_) => Err(cur.err(format!("expected next entry after {after}, got {}", cur.got()))),
    }
}

fn series(cur: &mut Cursor, strict: bool) -> Result<RawSample> {
    let line = cur.line();
    let mut name = None;
    let plain = cur.metric_name();
    if !plain.is_empty() {
        name = Some(lex::utf8(plain, "metric name", line)?.to_string());
    }
    let mut labels = Vec::new();
    if cur.eat(b'{') {
        label_set(cur, strict, Some(&mut name), &mut labels)?;
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return Err(cur.err("metric name not set"));
    };
    let series_end = cur.pos();
    let (value, ts, exemplar) = sample_tail(cur, strict)?;
    Ok(RawSample { line, name, labels, value, ts, exemplar, series_end })
}

/// What follows the series part: ` value [timestamp] [# {exemplar} value [timestamp]]` and
/// the newline.
fn sample_tail(cur: &mut Cursor, strict: bool) -> Result<(f64, Option<i64>, Option<RawExemplar>)> {
    let Some(tok) = spaced_token(cur) else {
        return Err(cur.err(format!("expected value after metric, got {}", cur.got())));
    };
    let value = lex::parse_value(tok)
        .ok_or_else(|| cur.err(format!("invalid value {:?}", String::from_utf8_lossy(tok))))?;
    let mut ts = None;
    let mut exemplar = None;
    if cur.peek() == Some(b' ') && !cur.starts_with(b" # {") {
        let Some(tok) = spaced_token(cur) else {
            return Err(cur.err(format!("expected timestamp, got {}", cur.got())));
        };
        ts = Some(seconds_to_ms(cur, tok, "timestamp")?);
    }
    if cur.eat_str(b" # {") {
        let mut elabels = Vec::new();
        label_set(cur, strict, None, &mut elabels)?;
        let Some(tok) = spaced_token(cur) else {
            return Err(cur.err(format!("expected value after exemplar labels, got {}", cur.got())));
        };
        let evalue = lex::parse_value(tok).ok_or_else(|| {
            cur.err(format!("invalid exemplar value {:?}", String::from_utf8_lossy(tok)))
        })?;
        let mut ets = None;
        if cur.peek() == Some(b' ') {
            let Some(tok) = spaced_token(cur) else {
                return Err(cur.err(format!("expected exemplar timestamp, got {}", cur.got())));
            };
            ets = Some(seconds_to_ms(cur, tok, "exemplar timestamp")?);
        }
        let runes: usize = elabels
            .iter()
            .map(|(n, v): &(String, String)| n.chars().count() + v.chars().count())
            .sum();
        if runes <= EXEMPLAR_MAX_RUNES {
            exemplar = Some((elabels, evalue, ets));
        } else if strict {
            return Err(cur.err(format!(
                "exemplar label set has {runes} runes, more than {EXEMPLAR_MAX_RUNES}"
            )));
        }
        line_end(cur, "exemplar")?;
    } else {
        line_end(cur, if ts.is_some() { "timestamp" } else { "value" })?;
    }
    Ok((value, ts, exemplar))
}

/// The inside of `{...}` (brace consumed): `name="value"` separated by single commas, no
/// blanks. A quoted name alone is the metric name (not allowed in exemplars, where
/// `name` is `None`). Prometheus allows one trailing comma; strict OpenMetrics does not.
fn label_set(
    cur: &mut Cursor,
    strict: bool,
    mut name: Option<&mut Option<String>>,
    labels: &mut Vec<(String, String)>,
) -> Result<()> {
    if cur.eat(b'}') {
        return Ok(());
    }
    loop {
        let label = match cur.peek() {
            Some(b'"') => {
                let q = cur.quoted("label name")?;
                if matches!(cur.peek(), Some(b',' | b'}')) {
                    let Some(slot) = name.as_deref_mut() else {
                        return Err(cur.err("expected label name in exemplar"));
                    };
                    if slot.is_some() {
                        return Err(cur.err("metric name already set"));
                    }
                    *slot = Some(q);
                    if next_label(cur, strict)? {
                        return Ok(());
                    }
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
        if !cur.eat(b'=') {
            return Err(cur.err(format!("expected equal, got {}", cur.got())));
        }
        if cur.peek() != Some(b'"') {
            return Err(cur.err(format!("expected label value, got {}", cur.got())));
        }
        let value = cur.quoted("label value")?;
        labels.push((label, value));
        if next_label(cur, strict)? {
            return Ok(());
        }
    }
}

/// After a label: `}` ends the set (returns true), `,` continues it.
fn next_label(cur: &mut Cursor, strict: bool) -> Result<bool> {
    if cur.eat(b'}') {
        return Ok(true);
    }
    if !cur.eat(b',') {
        return Err(cur.err(format!("expected comma or brace close, got {}", cur.got())));
    }
    if cur.peek() == Some(b'}') {
        if strict {
            return Err(cur.err("trailing comma in label set"));
        }
        cur.bump();
        return Ok(true);
    }
    Ok(false)
}
