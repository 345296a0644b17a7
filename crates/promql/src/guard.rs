//! Parsing that a request cannot crash: a bound on how deeply a query can nest, checked on its
//! text before anything walks it, and the parser's own panics turned into errors.
//!
//! The parser, the duration-expression rewriter and the evaluator all recurse once per level
//! of the syntax tree, and a tree can only get a level deeper through an operator, a `(` or a
//! `[` in the text (label matchers inside `{}` do not nest, string contents are not syntax).
//! Counting those tokens therefore bounds the depth of every tree the text can parse to, so
//! `((((…))))` or `1+1+…+1` a million times over is refused before it could overflow a stack.
use std::panic::{catch_unwind, AssertUnwindSafe};

use promql_parser::parser::Expr;

/// The most operators, `(` and `[` a query may hold. Real queries hold tens; a dashboard
/// joining a couple of hundred selectors with `or` still fits. The `strata` binary gives its
/// threads stacks with room for this depth several times over.
pub const MAX_NESTING_TOKENS: usize = 500;

/// Refuses a query that could nest deeper than [`MAX_NESTING_TOKENS`].
pub fn check_nesting(query: &str) -> Result<(), String> {
    let n = nesting_tokens(query);
    if n > MAX_NESTING_TOKENS {
        return Err(format!(
            "query is too complex: {n} operators and brackets, at most {MAX_NESTING_TOKENS}"
        ));
    }
    Ok(())
}

/// [`promql_parser::parser::parse`] for text from a request: refused when it could nest too
/// deeply ([`check_nesting`]), and a panic inside the parser (it has some, for instance on
/// durations written as numbers too large for it, `x offset 1e30`) is an error, not a
/// dropped connection.
pub fn parse(query: &str) -> Result<Expr, String> {
    check_nesting(query)?;
    let bytes = byte_escapes(query);
    let text = bytes.as_deref().unwrap_or(query);
    catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(text)))
        .unwrap_or_else(|_| Err(format!("cannot parse {query:?}: a value in it is out of range")))
}

/// The first of 128 private-use characters that stand for the bytes 0x80–0xff where a string
/// literal's bytes are not UTF-8 (`"\xff"`): no label name or stored value holds them, so
/// they fail name checks and match nothing, as those bytes do in Prometheus.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// Whether `ch` stands for a byte that was not UTF-8 (see [`RAW_BYTE_BASE`]).
pub(crate) fn raw_byte(ch: char) -> Option<u8> {
    let v = ch as u32;
    (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff).contains(&v).then(|| (v - RAW_BYTE_BASE) as u8)
}

/// `s` as Go's `%q` prints it, bytes that were not UTF-8 as `\xHH` (Prometheus's error
/// messages quote names this way).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match (raw_byte(ch), ch) {
            (Some(b), _) => out.push_str(&format!("\\x{b:02x}")),
            (None, '"') => out.push_str("\\\""),
            (None, '\\') => out.push_str("\\\\"),
            (None, '\n') => out.push_str("\\n"),
            (None, '\t') => out.push_str("\\t"),
            (None, '\r') => out.push_str("\\r"),
            (None, c) if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            (None, c) => out.push(c),
        }
    }
    out.push('"');
    out
}

/// String literals with byte escapes (`\xc3\xa9`, `\303\251`) mean bytes, as in Go (and so in
/// Prometheus), where promql-parser reads each as a code point of its own (`Ã©`). Such
/// literals are rewritten with the characters their bytes spell, bytes that are not UTF-8 as
/// the characters of [`RAW_BYTE_BASE`]. `None` when no literal needs it (the usual case).
fn byte_escapes(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // `query[..copied]` is in `out` already
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'#' => {
                while b.get(i).is_some_and(|&d| d != b'\n') {
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while b.get(i).is_some_and(|&d| d != b'`') {
                    i += 1;
                }
                i += 1;
            }
            b'"' | b'\'' => {
                let start = i;
                // A malformed literal: the query is left as it is, for the parser to report.
                let (bytes, end, has_byte_escape) = go_unquote(b, i)?;
                i = end;
                if !has_byte_escape {
                    continue;
                }
                let mut text = String::with_capacity(bytes.len());
                for chunk in bytes.utf8_chunks() {
                    text.push_str(chunk.valid());
                    for &b in chunk.invalid() {
                        text.push(
                            char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or('\u{fffd}'),
                        );
                    }
                }
                let o = out.get_or_insert_with(String::new);
                o.push_str(query.get(copied..start).unwrap_or_default());
                o.push(c as char);
                for ch in text.chars() {
                    match ch {
                        '\\' => o.push_str("\\\\"),
                        ch if ch == c as char => {
                            o.push('\\');
                            o.push(ch);
                        }
                        ch if (ch as u32) < 0x20 || ch == '\u{7f}' => {
                            o.push_str(&format!("\\x{:02x}", ch as u32));
                        }
                        ch => o.push(ch),
                    }
                }
                o.push(c as char);
                copied = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.map(|mut o| {
        o.push_str(query.get(copied..).unwrap_or_default());
        o
    })
}

/// The bytes of the Go string literal opening at `b[start]` (`"` or `'`), the position after
/// its closing quote, and whether it holds a byte escape of a value over 0x7f. `None` for a
/// literal Go would refuse (a malformed escape, a raw newline, no closing quote): the query is
/// then left as it is, for the parser to report.
fn go_unquote(b: &[u8], start: usize) -> Option<(Vec<u8>, usize, bool)> {
    let quote = *b.get(start)?;
    let mut out = Vec::new();
    let mut i = start + 1;
    let mut byte_escape = false;
    let digits = |at: usize, len: usize, radix: u32| -> Option<u32> {
        let d = b.get(at..at + len)?;
        if !d.iter().all(|c| (*c as char).is_digit(radix)) {
            return None;
        }
        u32::from_str_radix(std::str::from_utf8(d).ok()?, radix).ok()
    };
    loop {
        let c = *b.get(i)?;
        if c == quote {
            return Some((out, i + 1, byte_escape));
        }
        if c == b'\n' {
            return None;
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1)?;
        let simple = match e {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(e),
            // Only the literal's own quote may be escaped.
            b'"' | b'\'' if e == quote => Some(e),
            _ => None,
        };
        if let Some(v) = simple {
            out.push(v);
            i += 2;
            continue;
        }
        match e {
            b'x' => {
                let v = digits(i + 2, 2, 16)?;
                byte_escape |= v > 0x7f;
                out.push(v as u8);
                i += 4;
            }
            b'0'..=b'7' => {
                let v = digits(i + 1, 3, 8)?;
                let v = u8::try_from(v).ok()?;
                byte_escape |= v > 0x7f;
                out.push(v);
                i += 4;
            }
            b'u' | b'U' => {
                let len = if e == b'u' { 4 } else { 8 };
                let ch = char::from_u32(digits(i + 2, len, 16)?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += 2 + len;
            }
            _ => return None,
        }
    }
}

/// Operators (each `+ - * / % ^ = ! < > ~ @` byte, and the words `and`, `or`, `unless`,
/// `atan2`), `(` and `[` outside strings, comments and label-matcher braces: an upper bound on
/// the depth of the syntax tree.
fn nesting_tokens(query: &str) -> usize {
    let b = query.as_bytes();
    let mut n = 0usize;
    let mut i = 0;
    let mut in_braces = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' | b'\'' | b'`' => {
                // A string: skip to its closing quote (backticks have no escapes).
                i += 1;
                while let Some(&d) = b.get(i) {
                    if d == b'\\' && c != b'`' {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if d == c {
                        break;
                    }
                }
                continue;
            }
            b'#' => {
                while b.get(i).is_some_and(|&d| d != b'\n') {
                    i += 1;
                }
                continue;
            }
            b'{' => in_braces = true,
            b'}' => in_braces = false,
            _ if in_braces => {}
            b'(' | b'[' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'=' | b'!' | b'<' | b'>'
            | b'~' | b'@' => n += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while b.get(i).is_some_and(|&d| d.is_ascii_alphanumeric() || d == b'_' || d == b':')
                {
                    i += 1;
                }
                let word = &query[start..i];
                if ["and", "or", "unless", "atan2"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    n += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    n
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_can_nest_and_nothing_else() {
        assert_eq!(nesting_tokens(r#"up{job=~"a|b", x!="(((("}"#), 0);
        assert_eq!(nesting_tokens("sum by (job) (rate(x[5m])) / on() 2"), 6);
        assert_eq!(nesting_tokens("a or b AND c unless atan2"), 3 + 1);
        assert_eq!(nesting_tokens("x # ((((((\n+ 1"), 1);
        assert_eq!(nesting_tokens(r#"x{a="\"(("} + 'it\'s (' + `(\`"#), 2);
        // Unterminated strings and escapes at the very end stay in bounds.
        assert_eq!(nesting_tokens("x + \"abc\\"), 1);
        assert_eq!(nesting_tokens("é(ü"), 1);
    }

    #[test]
    fn deep_queries_are_refused_before_parsing() {
        for deep in [
            format!("{}1{}", "(".repeat(200_000), ")".repeat(200_000)),
            format!("1{}", "+1".repeat(200_000)),
            format!("up[{}1s]", "-".repeat(200_000)),
            format!("{}up", "-".repeat(200_000)),
        ] {
            let r = parse(&deep);
            assert!(r.as_ref().is_err_and(|e| e.contains("too complex")), "{:?}", r.err());
        }
        // At the bound, parsing works (and nothing overflows).
        let q = format!("1{}", "+1".repeat(MAX_NESTING_TOKENS + 1));
        assert!(parse(&q).is_err_and(|e| e.contains("too complex")));
        let q = format!("1{}", "+1".repeat(MAX_NESTING_TOKENS));
        assert!(parse(&q).is_ok());
        let q = format!("{}up{}", "(".repeat(MAX_NESTING_TOKENS), ")".repeat(MAX_NESTING_TOKENS));
        assert!(parse(&q).is_ok());
    }

    #[test]
    fn byte_escapes_spell_utf8_or_are_refused() {
        // Go reads `\xc3\xa9` and `\303\251` as the two bytes of `é`.
        assert_eq!(byte_escapes(r#"up{a="\xc3\xa9"}"#).as_deref(), Some(r#"up{a="é"}"#));
        assert_eq!(byte_escapes(r#"up{a='\303\251'}"#).as_deref(), Some(r#"up{a='é'}"#));
        assert_eq!(
            byte_escapes(r#"x{a="\xc3\xa9\n\"q\\"}"#).as_deref(),
            Some(r#"x{a="é\x0a\"q\\"}"#)
        );
        // Malformed literals are left for the parser to refuse, byte escapes or not.
        for q in
            [r#"x{a="\d\xff"}"#, r#"x{a="\x+f\xc3\xa9"}"#, r#"x{a='\"\xff'}"#, r#"x{a="\xc3\xa9"#]
        {
            assert_eq!(byte_escapes(q), None, "{q}");
            assert!(parse(q).is_err(), "{q}");
        }
        // Nothing to do: no byte escape over 0x7f, or inside raw strings and comments.
        for q in [r#"up{a="\x41\u00e9\t"}"#, "up{a=`\\xff`}", "up # \"\\xff\"", "sum(up)"] {
            assert_eq!(byte_escapes(q), None, "{q}");
        }
        // Not UTF-8: bytes that no name or value can hold, quoted back as Go quotes them.
        let q = byte_escapes(r#"count_values("a\xc5z", x)"#).unwrap();
        let lit: String = q.chars().skip(14).take(3).collect();
        assert_eq!(raw_byte(lit.chars().nth(1).unwrap()), Some(0xc5));
        assert_eq!(go_quote(&lit), r#""a\xc5z""#);
        assert!(parse(r#"label_replace(up, "\xff", "", "src", "(.*)")"#).is_ok());
        assert!(parse(r#"up{a="\xc3\xa9"}"#).is_ok());
    }

    #[test]
    fn parser_panics_become_errors() {
        for q in ["up offset 1e30", "up[1e30]", "up offset Inf", "rate(up[5m:1e400])"] {
            let r = parse(q);
            assert!(r.is_err(), "{q}: {r:?}");
        }
        assert!(parse("up offset 5").is_ok());
    }
}
