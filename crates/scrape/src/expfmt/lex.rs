//! Byte-level helpers shared by both parsers. Nothing here indexes past the input: every
//! read goes through `peek`/`bump`, which return `None` at the end.

use super::error::{ParseError, Result};

#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    line: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0, line: 1 }
    }

    pub fn line(&self) -> usize {
        self.line
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.b.len()
    }

    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    pub fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    pub fn starts_with(&self, s: &[u8]) -> bool {
        self.b.get(self.pos..).is_some_and(|rest| rest.starts_with(s))
    }

    /// Skips `s` if the input continues with it.
    pub fn eat_str(&mut self, s: &[u8]) -> bool {
        if self.starts_with(s) {
            for _ in 0..s.len() {
                self.bump();
            }
            true
        } else {
            false
        }
    }

    /// Consumes bytes while `f` holds and returns them.
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.b.get(start..self.pos).unwrap_or_default()
    }

    /// Skips spaces and tabs.
    pub fn skip_blanks(&mut self) -> bool {
        !self.take_while(|c| c == b' ' || c == b'\t').is_empty()
    }

    pub fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError::at(self.line, msg)
    }

    /// "got" text for error messages: the next few bytes.
    pub fn got(&self) -> String {
        let end = self.pos.saturating_add(12).min(self.b.len());
        let s = self.b.get(self.pos..end).unwrap_or_default();
        if s.is_empty() {
            "end of input".to_string()
        } else {
            format!("{:?}", String::from_utf8_lossy(s))
        }
    }

    /// A metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; empty when there is none.
    pub fn metric_name(&mut self) -> &'a [u8] {
        if !self.peek().is_some_and(is_name_start) {
            return &[];
        }
        self.take_while(|c| is_name_start(c) || c.is_ascii_digit())
    }

    /// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`; empty when there is none.
    pub fn label_name(&mut self) -> &'a [u8] {
        if !self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') {
            return &[];
        }
        self.take_while(|c| c.is_ascii_alphanumeric() || c == b'_')
    }

    /// A double-quoted string (`"` already peeked): backslash escapes any byte but a
    /// newline; a raw newline ends it in error. Returns the raw bytes between the quotes.
    pub fn quoted_raw(&mut self, what: &str) -> Result<&'a [u8]> {
        if !self.eat(b'"') {
            return Err(self.err(format!("expected {what}, got {}", self.got())));
        }
        let start = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => {
                    return Err(self.err(format!("unterminated quoted {what}")));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    self.bump();
                    match self.peek() {
                        None | Some(b'\n') => {
                            return Err(self.err(format!("unterminated quoted {what}")))
                        }
                        Some(_) => {
                            self.bump();
                        }
                    }
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        let raw = self.b.get(start..self.pos).unwrap_or_default();
        self.bump(); // closing quote
        Ok(raw)
    }

    /// Skips a sample's series part (`name`, `name{...}` or `{...}`) without building
    /// anything and returns where it ends; `None` on anything unusual, for the full parser
    /// to judge. `blanks`: spaces and tabs may stand between tokens (the text format; not
    /// OpenMetrics). For the scrape cache, whose keys are these bytes.
    pub fn scan_series(&mut self, blanks: bool) -> Option<usize> {
        let skip = |c: &mut Self| {
            if blanks {
                c.skip_blanks();
            }
        };
        self.metric_name();
        skip(self);
        if self.eat(b'{') {
            loop {
                skip(self);
                match self.peek()? {
                    b'}' => {
                        self.bump();
                        break;
                    }
                    b'"' => {
                        self.quoted_raw("label name").ok()?;
                    }
                    _ => {
                        if self.label_name().is_empty() {
                            return None;
                        }
                    }
                }
                skip(self);
                if self.eat(b'=') {
                    skip(self);
                    if self.peek() != Some(b'"') {
                        return None;
                    }
                    self.quoted_raw("label value").ok()?;
                    skip(self);
                }
                self.eat(b',');
            }
        }
        Some(self.pos)
    }

    /// A quoted string, escapes resolved as in label values.
    pub fn quoted(&mut self, what: &str) -> Result<String> {
        let raw = self.quoted_raw(what)?;
        utf8(raw, what, self.line).map(|s| unescape(s, true))
    }
}

pub(crate) fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

pub(crate) fn utf8<'b>(b: &'b [u8], what: &str, line: usize) -> Result<&'b str> {
    std::str::from_utf8(b).map_err(|_| ParseError::at(line, format!("invalid UTF-8 in {what}")))
}

/// Resolves `\\`, `\n` and (when `quote`) `\"`, left to right; other escapes stay as
/// written, as in Prometheus.
pub(crate) fn unescape(s: &str, quote: bool) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A sample value or OpenMetrics timestamp, as Prometheus reads them: Go's
/// `strconv.ParseFloat` without hex floats or `_` separators. NaN comes back as
/// Prometheus' normal NaN.
pub(crate) fn parse_value(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    if s.bytes().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return None;
    }
    let f = parse_go_float(s)?;
    Some(if f.is_nan() { f64::from_bits(super::NORMAL_NAN_BITS) } else { f })
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal input: optional sign, digits with an
/// optional point and exponent, or `inf`/`infinity` (signed or not) and unsigned `nan`, in
/// any case. Rust's parser agrees on all of that except that it also takes a signed NaN.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.len() != s.len() && unsigned.eq_ignore_ascii_case("nan") {
        return None;
    }
    if !s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-')) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// Prometheus' `formatOpenMetricsFloat`: Go's shortest `%g` (exponent form below 1e-4
/// and from 1e6), with `.0` added to integers; `+Inf`, `-Inf`, `NaN`.
pub(crate) fn format_om_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    // `{:e}` gives the shortest round-tripping digits, e.g. "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let s = if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    };
    if s.contains(['e', '.']) {
        s
    } else {
        s + ".0"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn om_float_format_matches_go() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.25, "0.25"),
            (100000.0, "100000.0"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.00089, "-0.00089"),
            (-8.999999999999979e-05, "-8.999999999999979e-05"),
            (1e100, "1e+100"),
            (0.0, "0.0"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(format_om_float(f), want, "{f}");
        }
    }

    #[test]
    fn values_follow_go() {
        assert_eq!(parse_value(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_value(b"NaN").is_some_and(|v| v.to_bits() == crate::expfmt::NORMAL_NAN_BITS));
        assert_eq!(parse_value(b"1e3"), Some(1000.0));
        assert_eq!(parse_value(b".5"), Some(0.5));
        for bad in ["0x1p-3", "1_2", "0x1", "true", "-NaN", "1 2", "", "1e", "0b1"] {
            assert_eq!(parse_value(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn unescape_like_prometheus() {
        assert_eq!(unescape(r#"a\\n\"b\z\n"#, true), "a\\n\"b\\z\n");
        assert_eq!(unescape(r#"\""#, false), "\\\"");
    }
}
