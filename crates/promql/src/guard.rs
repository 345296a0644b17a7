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
    catch_unwind(AssertUnwindSafe(|| promql_parser::parser::parse(query)))
        .unwrap_or_else(|_| Err(format!("cannot parse {query:?}: a value in it is out of range")))
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
    fn parser_panics_become_errors() {
        for q in ["up offset 1e30", "up[1e30]", "up offset Inf", "rate(up[5m:1e400])"] {
            let r = parse(q);
            assert!(r.is_err(), "{q}: {r:?}");
        }
        assert!(parse("up offset 5").is_ok());
    }
}
