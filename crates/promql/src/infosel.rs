//! `info(v, {data=~".*"})`: Prometheus accepts an info selector whose matchers all match the
//! empty string, `promql-parser` does not. Such a selector gets a placeholder matcher
//! ([`PLACEHOLDER`]) that the parser accepts and the evaluator ignores.

/// The label name of the placeholder matcher; never a real label (names starting with `__`
/// are reserved).
pub(crate) const PLACEHOLDER: &str = "__strata_info_selector__";

/// Adds the placeholder to the selector braces of every `info(` call's second argument, or
/// returns `None` when there is no such call.
pub(crate) fn rewrite(query: &str) -> Option<String> {
    let b = query.as_bytes();
    let mut out = String::with_capacity(query.len() + 64);
    let mut last = 0;
    let mut i = 0;
    let mut changed = false;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'' | b'`') => {
                i = skip_string(b, i, q);
                continue;
            }
            b'i' | b'I' if is_call_at(b, i, b"info") => {
                // Find the top-level comma of this call, then the second argument's `{`.
                let open = i + 4 + b[i + 4..].iter().position(|c| *c == b'(').unwrap_or(0);
                let mut j = open + 1;
                let mut depth = 0i32;
                let mut comma = None;
                while j < b.len() {
                    match b[j] {
                        q @ (b'"' | b'\'' | b'`') => {
                            j = skip_string(b, j, q);
                            continue;
                        }
                        b'(' | b'[' | b'{' => depth += 1,
                        b')' | b']' | b'}' if depth == 0 => break,
                        b')' | b']' | b'}' => depth -= 1,
                        b',' if depth == 0 => {
                            comma = Some(j);
                            break;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if let Some(c) = comma {
                    let mut k = c + 1;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if b.get(k) == Some(&b'{') {
                        out.push_str(&query[last..=k]);
                        out.push_str(PLACEHOLDER);
                        out.push_str("=\"x\", ");
                        last = k + 1;
                        changed = true;
                    }
                }
                i += 4;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if !changed {
        return None;
    }
    out.push_str(&query[last..]);
    Some(out)
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

fn is_call_at(b: &[u8], i: usize, name: &[u8]) -> bool {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    if i + name.len() > b.len() || &b[i..i + name.len()] != name {
        return false;
    }
    if i > 0 && ident(b[i - 1]) {
        return false;
    }
    let rest = &b[i + name.len()..];
    rest.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'(')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_goes_into_the_info_selector_only() {
        assert_eq!(
            rewrite(r#"info(metric, {data=~".*"})"#).as_deref(),
            Some(r#"info(metric, {__strata_info_selector__="x", data=~".*"})"#)
        );
        assert_eq!(
            rewrite(r#"sum(info(rate(m{a="{"}[5m]), {x=~".*"}))"#).as_deref(),
            Some(r#"sum(info(rate(m{a="{"}[5m]), {__strata_info_selector__="x", x=~".*"}))"#)
        );
        assert_eq!(rewrite("info(metric)"), None);
        assert_eq!(rewrite("my_info(metric, {a=\"b\"})"), None);
    }
}
