//! Lexical pieces of the `.test` format: durations, numbers, Go string literals, series
//! descriptors (label sets) and value sequences.

use strata_model::{Label, Labels, METRIC_NAME, STALE_NAN_BITS};

/// The most positions one value-sequence item may expand to, so that a typo such as
/// `1x100000000000` gives an error instead of exhausting memory.
const MAX_REPEAT: u64 = 1_000_000;

/// One position of a value sequence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SeqValue {
    /// `_`: no sample at this position.
    Omitted,
    Float(f64),
    /// A native histogram literal; its contents are not interpreted.
    Histogram,
}

/// Parses a Prometheus duration (`model.ParseDuration`) into milliseconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    strata_model::parse_duration_ms(s)
        .and_then(|ms| i64::try_from(ms).map_err(|_| "duration out of range".to_string()))
}

/// Parses a scalar expectation line as the reference runner does: Go's
/// `strconv.ParseInt(s, 0, 64)` (so `0x1f`, `0o17`, `0b101` and octal `017` work), then
/// `strconv.ParseFloat` (`1e3`, `.5`, `Inf`, `NaN`).
pub(crate) fn parse_scalar(s: &str) -> Option<f64> {
    if let Some(i) = parse_go_int(s) {
        return Some(i as f64);
    }
    parse_go_float(s)
}

fn parse_go_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d.to_string())
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    // Go allows underscores only together with a base prefix.
    let digits = if radix != 10 && digits.contains('_') {
        if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
            return None;
        }
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_go_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = body.to_ascii_lowercase();
    if matches!(lower.as_str(), "inf" | "infinity" | "nan") {
        return s.parse().ok();
    }
    // Rust's float grammar is Go's minus hex floats and underscores, which the scripts do
    // not use in expectations; reject anything that is not plain decimal.
    if body.is_empty()
        || !body.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    s.parse().ok()
}

/// Lexes a decimal float (`12`, `1.5`, `.5`, `1e-3`), `Inf` or `NaN` at the start of `s`,
/// without a sign. Returns the value and the rest.
fn lex_unsigned(s: &str) -> Option<(f64, &str)> {
    for kw in ["inf", "nan"] {
        if s.len() >= 3 && s[..3].eq_ignore_ascii_case(kw) {
            let v = if kw == "inf" { f64::INFINITY } else { f64::NAN };
            return Some((v, &s[3..]));
        }
    }
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if digits(&mut j) > 0 {
            i = j;
        }
    }
    let v = s[..i].parse().ok()?;
    Some((v, &s[i..]))
}

/// Like [`lex_unsigned`] with an optional leading sign.
fn lex_signed(s: &str) -> Option<(f64, &str)> {
    if let Some(r) = s.strip_prefix('-') {
        lex_unsigned(r).map(|(v, rest)| (-v, rest))
    } else {
        lex_unsigned(s.strip_prefix('+').unwrap_or(s))
    }
}

fn parse_repeat(s: &str, item: &str) -> Result<u64, String> {
    let k: u64 = s.parse().map_err(|_| format!("invalid repetition in {item:?}"))?;
    if k >= MAX_REPEAT {
        return Err(format!("repetition too large in {item:?}"));
    }
    Ok(k)
}

/// Splits a value sequence into items at whitespace, keeping `{{...}}` literals (which
/// contain spaces) whole.
fn split_items(s: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let start = s.len() - trimmed.len();
        let mut j = start;
        while j < s.len() {
            let r = &s[j..];
            if r.starts_with("{{") {
                let close = r.find("}}").ok_or("unterminated histogram literal `{{`")?;
                j += close + 2;
            } else if r.starts_with(char::is_whitespace) {
                break;
            } else {
                j += r.chars().next().map_or(1, char::len_utf8);
            }
        }
        items.push(&s[start..j]);
        i = j;
    }
    Ok(items)
}

/// Expands a value sequence (the part of a series line after the descriptor).
pub(crate) fn parse_values(s: &str) -> Result<Vec<SeqValue>, String> {
    let mut out = Vec::new();
    for item in split_items(s)? {
        expand_item(item, &mut out)?;
    }
    Ok(out)
}

fn expand_item(item: &str, out: &mut Vec<SeqValue>) -> Result<(), String> {
    let bad = || format!("invalid value {item:?} in series values");
    if item == "_" {
        out.push(SeqValue::Omitted);
        return Ok(());
    }
    if let Some(k) = item.strip_prefix("_x") {
        let k = parse_repeat(k, item)?;
        out.extend((0..k).map(|_| SeqValue::Omitted));
        return Ok(());
    }
    if item.eq_ignore_ascii_case("stale") {
        out.push(SeqValue::Float(f64::from_bits(STALE_NAN_BITS)));
        return Ok(());
    }
    if item.starts_with("{{") {
        let n = histogram_positions(item)?;
        out.extend((0..n).map(|_| SeqValue::Histogram));
        return Ok(());
    }
    let (n, rest) = lex_signed(item).ok_or_else(bad)?;
    if rest.is_empty() {
        out.push(SeqValue::Float(n));
        return Ok(());
    }
    if let Some(k) = rest.strip_prefix('x') {
        let k = parse_repeat(k, item)?;
        out.extend((0..=k).map(|_| SeqValue::Float(n)));
        return Ok(());
    }
    let (sign, rest) = match rest.as_bytes()[0] {
        b'+' => (1.0, &rest[1..]),
        b'-' => (-1.0, &rest[1..]),
        _ => return Err(bad()),
    };
    let (d, rest) = lex_unsigned(rest).ok_or_else(bad)?;
    let k = rest.strip_prefix('x').ok_or_else(bad)?;
    let k = parse_repeat(k, item)?;
    let delta = sign * d;
    let mut v = n;
    for _ in 0..=k {
        out.push(SeqValue::Float(v));
        v += delta;
    }
    Ok(())
}

/// How many positions a histogram item (`{{A}}`, `{{A}}xK`, `{{A}}+{{B}}xK`) covers.
fn histogram_positions(item: &str) -> Result<u64, String> {
    let bad = || format!("invalid histogram item {item:?}");
    let mut rest = item;
    let mut literals = 0;
    while let Some(r) = rest.strip_prefix("{{") {
        let close = r.find("}}").ok_or_else(bad)?;
        rest = &r[close + 2..];
        literals += 1;
        match rest.as_bytes().first() {
            Some(b'+' | b'-') if rest[1..].starts_with("{{") && literals == 1 => rest = &rest[1..],
            _ => break,
        }
    }
    match (rest.strip_prefix('x'), literals) {
        (None, 1) if rest.is_empty() => Ok(1),
        (Some(k), 1 | 2) => Ok(parse_repeat(k, item)? + 1),
        _ => Err(bad()),
    }
}

/// Unquotes a Go string literal (`"..."`, `'...'` or `` `...` ``) at the start of `s`,
/// returning the string and the rest of `s`.
pub(crate) fn lex_string(s: &str) -> Result<(String, &str), String> {
    let quote = s.chars().next().ok_or("expected a string")?;
    let body = &s[1..];
    if quote == '`' {
        let end = body.find('`').ok_or("unterminated raw string")?;
        return Ok((body[..end].to_string(), &body[end + 1..]));
    }
    if quote != '"' && quote != '\'' {
        return Err(format!("expected a quoted string at {s:?}"));
    }
    let mut out: Vec<u8> = Vec::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => {
                let text = String::from_utf8(out).map_err(|_| "string is not valid UTF-8")?;
                return Ok((text, &body[i + 1..]));
            }
            '\n' => return Err("newline in string".into()),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated string")?;
                let mut hex = |n: usize| -> Result<u32, String> {
                    let h: String = (0..n).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    u32::from_str_radix(&h, 16)
                        .ok()
                        .filter(|_| h.len() == n)
                        .ok_or_else(|| format!("invalid escape \\{e}{h}"))
                };
                let simple = match e {
                    'a' => Some(7u8),
                    'b' => Some(8),
                    'f' => Some(12),
                    'n' => Some(b'\n'),
                    'r' => Some(b'\r'),
                    't' => Some(b'\t'),
                    'v' => Some(11),
                    '\\' => Some(b'\\'),
                    '"' | '\'' if e == quote => Some(e as u8),
                    _ => None,
                };
                if let Some(b) = simple {
                    out.push(b);
                    continue;
                }
                match e {
                    'x' => out.push(hex(2)? as u8),
                    'u' | 'U' => {
                        let cp = hex(if e == 'u' { 4 } else { 8 })?;
                        let ch = char::from_u32(cp).ok_or("invalid unicode escape")?;
                        let mut buf = [0; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let d = chars.next().and_then(|(_, c)| c.to_digit(8));
                            v = v * 8 + d.ok_or("invalid octal escape")?;
                        }
                        out.push(u8::try_from(v).map_err(|_| "octal escape out of range")?);
                    }
                    _ => return Err(format!("unknown escape sequence \\{e}")),
                }
            }
            c => {
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    Err("unterminated string".into())
}

fn lex_ident(s: &str) -> Option<(&str, &str)> {
    let first = s.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_' || first == ':') {
        return None;
    }
    let end =
        s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).unwrap_or(s.len());
    Some((&s[..end], &s[end..]))
}

/// Parses a series descriptor (`name`, `name{a="b"}`, `{__name__="x"}`, `{"utf8.name",
/// "a.b"="c"}`, `{}`) at the start of `s`. Returns the label set (labels with empty values
/// dropped, as storage drops them) and the rest of `s`.
pub(crate) fn parse_descriptor(s: &str) -> Result<(Labels, &str), String> {
    let mut pairs: Vec<Label> = Vec::new();
    let mut name: Option<String> = None;
    let mut rest = s;
    if let Some((ident, r)) = lex_ident(s) {
        name = Some(ident.to_string());
        rest = r;
    }
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let (label, quoted, r) = match lex_ident(rest) {
                Some((id, r)) => (id.to_string(), false, r),
                None => {
                    let (q, r) = lex_string(rest)?;
                    (q, true, r)
                }
            };
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix('=') {
                if r.starts_with('~') {
                    return Err("only equality matchers are allowed in series descriptors".into());
                }
                let (value, r) = lex_string(r.trim_start())?;
                rest = r.trim_start();
                if pairs.iter().any(|l| l.name == label) {
                    return Err(format!("label {label:?} is set twice"));
                }
                pairs.push(Label { name: label, value });
            } else if quoted && (rest.starts_with(',') || rest.starts_with('}')) {
                if name.replace(label).is_some() {
                    return Err("metric name is set twice".into());
                }
            } else {
                return Err(format!("unexpected {:?} in series descriptor", rest));
            }
            match rest.as_bytes().first() {
                Some(b',') => rest = rest[1..].trim_start(),
                Some(b'}') => {}
                _ => return Err("expected `,` or `}` in series descriptor".into()),
            }
        }
    } else if name.is_none() {
        return Err(format!("expected a series descriptor at {s:?}"));
    }
    if let Some(n) = name {
        if pairs.iter().any(|l| l.name == METRIC_NAME) {
            return Err("metric name is set twice".into());
        }
        pairs.push(Label { name: METRIC_NAME.to_string(), value: n });
    }
    pairs.retain(|l| !l.value.is_empty());
    pairs.sort();
    Ok((Labels(pairs), rest))
}

/// Formats labels the Prometheus way: `name{a="b"}`, or `{a="b"}` without a name.
pub(crate) fn fmt_labels(labels: &Labels) -> String {
    let name = labels.get(METRIC_NAME).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|l| l.name != METRIC_NAME)
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        return name.to_string();
    }
    format!("{name}{{{}}}", rest.join(", "))
}
