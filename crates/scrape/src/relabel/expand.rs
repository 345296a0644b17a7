//! Go's `Regexp.ExpandString`, which Prometheus uses for `replacement` and `target_label`:
//! `$1`, `${1}`, `$name`, `${name}`, `$$`. It differs from `regex::Captures::expand` in
//! small ways that change results, so it is written out: names take Unicode letters and
//! digits, `$01` is a *name* (no group, so empty), and a `$` that starts no valid reference
//! is kept as text.
use regex::{Captures, Regex};

/// Appends `template` to `dst` with references to `caps` (of a match of `re`) replaced.
pub(crate) fn expand(dst: &mut String, template: &str, re: &Regex, caps: &Captures<'_>) {
    let mut rest = template;
    while let Some(pos) = rest.find('$') {
        dst.push_str(&rest[..pos]);
        rest = &rest[pos + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            dst.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = reference(rest) else {
            dst.push('$');
            continue;
        };
        rest = after;
        match group_number(name) {
            Some(n) => {
                if let Some(m) = caps.get(n) {
                    dst.push_str(m.as_str());
                }
            }
            None => {
                let group = re
                    .capture_names()
                    .enumerate()
                    .find_map(|(i, n)| (n == Some(name)).then(|| caps.get(i)).flatten());
                if let Some(m) = group {
                    dst.push_str(m.as_str());
                }
            }
        }
    }
    dst.push_str(rest);
}

/// The name after a `$` (`name` or `{name}`) and the text after it, as Go's `extract`.
fn reference(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// A group number as Go reads one: ASCII digits, no leading zero, below 1e8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    name.parse::<usize>().ok().filter(|n| *n < 100_000_000)
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`: the label names Strata accepts (Prometheus' legacy scheme, the
/// one the ingester enforces).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
            bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
        _ => false,
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Prometheus' `relabelTarget` pattern `^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`: a label
/// name in which `$1`, `${1}`, `$name` references may stand for parts. Used for a `replace`
/// `target_label` holding `$` and a `labelmap` `replacement`.
pub(crate) fn is_valid_label_template(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            i += 1;
            if b.get(i) == Some(&b'{') {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && is_word(b[j]) {
                    j += 1;
                }
                if j == start || b.get(j) != Some(&b'}') {
                    return false;
                }
                i = j + 1;
            } else {
                let start = i;
                while i < b.len() && is_word(b[i]) {
                    i += 1;
                }
                if i == start {
                    return false;
                }
            }
        } else if (i == 0 && (b[i].is_ascii_alphabetic() || b[i] == b'_'))
            || (i > 0 && is_word(b[i]))
        {
            i += 1;
        } else {
            return false;
        }
    }
    !b.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(re: &str, input: &str, template: &str) -> String {
        let re = Regex::new(&format!("^(?:{re})$")).unwrap();
        let caps = re.captures(input).unwrap();
        let mut out = String::new();
        expand(&mut out, template, &re, &caps);
        out
    }

    #[test]
    fn expands_like_go() {
        assert_eq!(run("f(.*)", "foo", "ch${1}-ch${1}"), "choo-choo");
        assert_eq!(run("f(.*)", "foo", "ch$1-ch$1"), "choo-choo");
        assert_eq!(run("(?P<x>f)(.*)", "foo", "$x|${x}|$2"), "f|f|oo");
        // `$1x` names group "1x", which does not exist.
        assert_eq!(run("(f)(.*)", "foo", "$1x"), "");
        assert_eq!(run("(f)(.*)", "foo", "${1}x"), "fx");
        // Leading zeros make a name, not a number.
        assert_eq!(run("(f)(.*)", "foo", "$01"), "");
        assert_eq!(run("(f)(.*)", "foo", "$$1"), "$1");
        assert_eq!(run("(f)(.*)", "foo", "a$"), "a$");
        assert_eq!(run("(f)(.*)", "foo", "a${1"), "a${1");
        assert_eq!(run("(f)(.*)", "foo", "${}"), "${}");
        assert_eq!(run("(f)(.*)", "foo", "$3"), "");
        assert_eq!(run("(f)|(g)", "f", "[$2]"), "[]");
        assert_eq!(run("(.*)", "foo", "$0"), "foo");
    }

    #[test]
    fn target_label_templates() {
        for (s, valid) in [
            ("-label", false),
            ("label", true),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            ("0${3}", false),
            ("", false),
            ("a-b", false),
        ] {
            assert_eq!(is_valid_label_template(s), valid, "{s:?}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("__address__"));
        assert!(is_valid_label_name("a1"));
        for bad in ["", "1a", "not$allowed", "not:allowed", "é"] {
            assert!(!is_valid_label_name(bad), "{bad:?}");
        }
    }
}
