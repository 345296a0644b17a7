//! Prometheus 3.x's experimental extended selectors, `x[5m] anchored` and `x[5m] smoothed`
//! (and the instant selector `x smoothed`), which the `promql-parser` crate does not parse.
//!
//! Like duration expressions (see `durexpr`), they are handled in the query text before
//! parsing: the selector and its `offset`/`@` modifiers are wrapped in a call of an internal
//! function registered with the parser (`rate(x[5m] anchored offset 1m)` becomes
//! `rate(__strata_anchored(x[5m] offset 1m))`). The evaluator reads such a call as the
//! selector with the modifier. The internal names start with `__`, which no PromQL function
//! uses; a query that spells them out gets the same meaning.

use std::sync::OnceLock;

use promql_parser::parser::function::{register_extra_functions, Function};
use promql_parser::parser::value::ValueType;

/// The internal function for `x[range] anchored`.
pub(crate) const ANCHORED: &str = "__strata_anchored";
/// The internal function for `x[range] smoothed`.
pub(crate) const SMOOTHED: &str = "__strata_smoothed";
/// The internal function for the instant selector `x smoothed`.
pub(crate) const SMOOTHED_INSTANT: &str = "__strata_smoothed_instant";

/// An extended selector's modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Modifier {
    /// The window also takes the last sample at or before its start (within the lookback
    /// delta); nothing is extrapolated.
    Anchored,
    /// The values at the window's bounds are interpolated from the neighbouring samples.
    Smoothed,
}

impl Modifier {
    /// The modifier an internal function stands for, and whether it wraps a range selector.
    pub(crate) fn of_function(name: &str) -> Option<(Modifier, bool)> {
        match name {
            ANCHORED => Some((Modifier::Anchored, true)),
            SMOOTHED => Some((Modifier::Smoothed, true)),
            SMOOTHED_INSTANT => Some((Modifier::Smoothed, false)),
            _ => None,
        }
    }

    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Modifier::Anchored => "anchored",
            Modifier::Smoothed => "smoothed",
        }
    }

    /// The functions that accept a range selector with this modifier, as Prometheus lists them.
    pub(crate) fn functions(self) -> &'static [&'static str] {
        match self {
            Modifier::Anchored => &["changes", "delta", "increase", "rate", "resets"],
            Modifier::Smoothed => &["delta", "increase", "rate"],
        }
    }

    /// Prometheus's error for a range selector with this modifier passed to `func`, or `None`
    /// when `func` accepts it.
    pub(crate) fn check_function(self, func: &str) -> Option<String> {
        let allowed = self.functions();
        if allowed.contains(&func) {
            return None;
        }
        Some(format!(
            "{} modifier can only be used with: {} - not with {func}",
            self.keyword(),
            allowed.join(", ")
        ))
    }
}

/// Registers the internal functions with the parser, once per process.
pub(crate) fn register() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_extra_functions(vec![
            Function::new(ANCHORED, vec![ValueType::Matrix], 0, ValueType::Matrix, false),
            Function::new(SMOOTHED, vec![ValueType::Matrix], 0, ValueType::Matrix, false),
            Function::new(SMOOTHED_INSTANT, vec![ValueType::Vector], 0, ValueType::Vector, false),
        ])
    })
    .clone()
}

/// Rewrites the extended selectors in `query` into calls of the internal functions, or
/// returns `None` when there are none. A modifier keyword that does not follow a selector is
/// left alone (the parser then reports it).
pub(crate) fn rewrite(query: &str) -> Option<String> {
    let toks = lex(query);
    let mut out = String::new();
    // Bytes of `query` already in `out`, and the first token not yet rewritten.
    let mut copied = 0;
    let mut free = 0;
    let mut depth = 0i32;
    let mut k = 0;
    while let Some(t) = toks.get(k) {
        k += 1;
        match t.kind {
            Kind::Punct(b'{') => depth += 1,
            Kind::Punct(b'}') => depth -= 1,
            Kind::Ident if depth == 0 => {
                let word = &query[t.start..t.end];
                let modifier = if word.eq_ignore_ascii_case("anchored") {
                    Modifier::Anchored
                } else if word.eq_ignore_ascii_case("smoothed") {
                    Modifier::Smoothed
                } else {
                    continue;
                };
                let at = k - 1;
                let Some((first, is_range)) = selector_start(query, &toks, at) else { continue };
                if first < free {
                    continue;
                }
                let func = match (modifier, is_range) {
                    (Modifier::Anchored, true) => ANCHORED,
                    (Modifier::Smoothed, true) => SMOOTHED,
                    (Modifier::Smoothed, false) => SMOOTHED_INSTANT,
                    // Prometheus has no anchored instant selector.
                    (Modifier::Anchored, false) => continue,
                };
                let last = modifiers_after(query, &toks, k);
                let start = toks[first].start;
                let end = if last > at { toks[last].end } else { t.end };
                out.push_str(&query[copied..start]);
                out.push_str(func);
                out.push('(');
                // Up to the selector's last token: what follows it may be a comment.
                let sel_end = toks.get(at.wrapping_sub(1)).map_or(t.start, |p| p.end);
                out.push_str(&query[start..sel_end]);
                if last > at {
                    out.push(' ');
                    out.push_str(query[t.end..end].trim_start());
                }
                out.push(')');
                copied = end;
                free = last + 1;
                k = last + 1;
            }
            _ => {}
        }
    }
    if copied == 0 {
        return None;
    }
    out.push_str(&query[copied..]);
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
struct Tok {
    kind: Kind,
    start: usize,
    end: usize,
}

/// The index of the first token of the selector (with its modifiers) that ends right before
/// token `k`, and whether it is a range selector; `None` when no selector ends there.
fn selector_start(q: &str, toks: &[Tok], k: usize) -> Option<(usize, bool)> {
    let text = |i: usize| &q[toks[i].start..toks[i].end];
    let punct = |i: usize, c: u8| toks[i].kind == Kind::Punct(c);
    let mut j = k.checked_sub(1)?;
    // `offset ...` and `@ ...`, any number, in any order.
    loop {
        let before = if toks[j].kind == Kind::Number {
            let mut i = j.checked_sub(1)?;
            if punct(i, b'+') || punct(i, b'-') {
                i = i.checked_sub(1)?;
            }
            (punct(i, b'@')
                || (toks[i].kind == Kind::Ident && text(i).eq_ignore_ascii_case("offset")))
            .then_some(i)
        } else if j >= 3
            && punct(j, b')')
            && punct(j - 1, b'(')
            && toks[j - 2].kind == Kind::Ident
            && matches!(text(j - 2), "start" | "end")
            && punct(j - 3, b'@')
        {
            Some(j - 3)
        } else {
            None
        };
        match before {
            Some(i) => j = i.checked_sub(1)?,
            None => break,
        }
    }
    let mut is_range = false;
    if punct(j, b']') {
        // A range is a few tokens (duration expressions are folded by now).
        let open = (j.saturating_sub(8)..j).rev().find(|&i| punct(i, b'['))?;
        // A subquery (`x[5m:1m]`) takes no modifier.
        if q[toks[open].end..toks[j].start].contains(':')
            || !(open + 1..j).all(|i| matches!(toks[i].kind, Kind::Number | Kind::Ident))
        {
            return None;
        }
        is_range = true;
        j = open.checked_sub(1)?;
    }
    if punct(j, b'}') {
        // Matchers are names, strings, operators and commas.
        let open = (0..j).rev().find(|&i| {
            !matches!(
                toks[i].kind,
                Kind::Ident | Kind::Str | Kind::Punct(b'=' | b'!' | b'~' | b',')
            )
        })?;
        if !punct(open, b'{') {
            return None;
        }
        match open.checked_sub(1) {
            Some(i) if is_metric_name(toks[i], text(i)) => Some((i, is_range)),
            _ => Some((open, is_range)),
        }
    } else if is_metric_name(toks[j], text(j)) {
        Some((j, is_range))
    } else {
        None
    }
}

fn is_metric_name(t: Tok, text: &str) -> bool {
    const KEYWORDS: [&str; 12] = [
        "and",
        "or",
        "unless",
        "atan2",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
    ];
    t.kind == Kind::Ident && !KEYWORDS.iter().any(|k| text.eq_ignore_ascii_case(k))
}

/// The index of the last token of the `offset`/`@` modifiers that start at token `from`, or
/// `from - 1` when there are none.
fn modifiers_after(q: &str, toks: &[Tok], from: usize) -> usize {
    let kind = |i: usize| toks.get(i).map(|t| t.kind);
    let text = |i: usize| toks.get(i).map_or("", |t| &q[t.start..t.end]);
    let mut i = from;
    loop {
        let signed_number = |i: usize| match kind(i) {
            Some(Kind::Punct(b'+' | b'-')) => (kind(i + 1) == Some(Kind::Number)).then_some(i + 1),
            Some(Kind::Number) => Some(i),
            _ => None,
        };
        let end = match kind(i) {
            Some(Kind::Ident) if text(i).eq_ignore_ascii_case("offset") => signed_number(i + 1),
            Some(Kind::Punct(b'@')) => signed_number(i + 1).or_else(|| {
                (matches!(text(i + 1), "start" | "end")
                    && kind(i + 2) == Some(Kind::Punct(b'('))
                    && kind(i + 3) == Some(Kind::Punct(b')')))
                .then_some(i + 3)
            }),
            _ => None,
        };
        match end {
            Some(e) => i = e + 1,
            None => return i.saturating_sub(1).max(from.saturating_sub(1)),
        }
    }
}

/// Splits a query into identifiers, numbers (durations included), strings and single
/// punctuation characters; whitespace and comments are dropped.
fn lex(q: &str) -> Vec<Tok> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' | b'`' => {
                i = skip_string(b, i, c);
                Kind::Str
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_digit() || c == b'.' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                Kind::Number
            }
            c => {
                // One character, keeping multi-byte characters whole.
                i += q[i..].chars().next().map_or(1, char::len_utf8);
                Kind::Punct(if c.is_ascii() { c } else { 0 })
            }
        };
        out.push(Tok { kind, start, end: i });
    }
    out
}

fn skip_string(b: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_range_and_instant_selectors() {
        let cases = [
            ("rate(x[5m] anchored)", "rate(__strata_anchored(x[5m]))"),
            ("increase(x{a=\"b\"}[1m] smoothed)", "increase(__strata_smoothed(x{a=\"b\"}[1m]))"),
            (
                "rate({__name__=\"x\"}[1m] smoothed)",
                "rate(__strata_smoothed({__name__=\"x\"}[1m]))",
            ),
            ("rate(x[5m] offset 1m anchored)", "rate(__strata_anchored(x[5m] offset 1m))"),
            ("rate(x[5m] anchored offset -1m)", "rate(__strata_anchored(x[5m] offset -1m))"),
            ("rate(x[5m] anchored @ start())", "rate(__strata_anchored(x[5m] @ start()))"),
            ("metric smoothed", "__strata_smoothed_instant(metric)"),
            ("metric @ 100 smoothed + 0", "__strata_smoothed_instant(metric @ 100) + 0"),
            ("metric offset -100 smoothed", "__strata_smoothed_instant(metric offset -100)"),
            (
                "rate(a[1m] anchored) + delta(b[1m] smoothed)",
                "rate(__strata_anchored(a[1m])) + delta(__strata_smoothed(b[1m]))",
            ),
            ("x[1m] anchored anchored", "__strata_anchored(x[1m]) anchored"),
            ("x{a=\"}\"} # c\n smoothed", "__strata_smoothed_instant(x{a=\"}\"})"),
        ];
        for (q, want) in cases {
            assert_eq!(rewrite(q).as_deref(), Some(want), "{q}");
        }
    }

    #[test]
    fn leaves_other_uses_alone() {
        for q in [
            "anchored",
            "sum by (anchored) (x)",
            "x{anchored=\"1\"}",
            "x and anchored",
            "rate(x[5m:1m] anchored)",
            "rate(x[5m]) anchored",
            "x anchored",
            "\"x[5m] anchored\"",
            "",
            "[ anchored",
            "] smoothed",
            "@ 5 smoothed",
            "é smoothed",
            "a[1m] + b] anchored",
            "x{a=\"b\" c} anchored",
            "(x) smoothed",
        ] {
            assert_eq!(rewrite(q), None, "{q}");
        }
    }

    proptest::proptest! {
        /// Any text: no panic, and a rewrite only ever adds the internal functions.
        #[test]
        fn never_panics(
            q in "([a-z_:]{1,3}|[\\[\\]{}()@=~!,+*/\"'`#-]|[0-9]{1,2}[ms]?| |\n|é| anchored| smoothed| offset| start\\(\\)){0,24}",
        ) {
            if let Some(r) = rewrite(&q) {
                proptest::prop_assert!(r.contains("__strata_"));
            }
            let _ = crate::Engine::parse_with(&q, 0, 0);
        }
    }

    #[test]
    fn rewritten_queries_parse() {
        register().expect("register");
        for q in ["rate(x[5m] anchored offset 1m)", "metric @ 100 smoothed + 0"] {
            let r = rewrite(q).expect("rewritten");
            assert!(promql_parser::parser::parse(&r).is_ok(), "{r}");
        }
    }
}
