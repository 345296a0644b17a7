//! Label-set checks applied to every incoming series, the way Prometheus and Mimir do.

/// Character classes of label and metric names, one byte of flags per input byte.
const LABEL_FIRST: u8 = 1;
const LABEL_REST: u8 = 2;
const METRIC_FIRST: u8 = 4;
const METRIC_REST: u8 = 8;

const CHAR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut f = 0;
        if alpha {
            f |= LABEL_FIRST | LABEL_REST | METRIC_FIRST | METRIC_REST;
        }
        if digit {
            f |= LABEL_REST | METRIC_REST;
        }
        if b == b':' {
            f |= METRIC_FIRST | METRIC_REST;
        }
        t[c] = f;
        c += 1;
    }
    t
};

/// Whether `n` is non-empty, its first byte has class `first` and every other byte `rest`.
#[inline]
fn all_of_class(n: &[u8], first: u8, rest: u8) -> bool {
    match n.split_first() {
        Some((&b, tail)) => {
            // AND the classes of all bytes, so the loop has no early exit to predict.
            let all = tail.iter().fold(rest, |acc, &c| acc & CHAR_CLASS[c as usize]);
            CHAR_CLASS[b as usize] & first != 0 && all != 0
        }
        None => false,
    }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the classic Prometheus label-name charset.
pub(crate) fn is_valid_label_name(n: &[u8]) -> bool {
    all_of_class(n, LABEL_FIRST, LABEL_REST)
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the classic Prometheus metric-name charset.
pub(crate) fn is_valid_metric_name(n: &[u8]) -> bool {
    all_of_class(n, METRIC_FIRST, METRIC_REST)
}

/// Renders flattened pairs as `{a="b", c="d"}` for messages (lossy on bad UTF-8).
pub(crate) fn render(pairs: &[(&[u8], &[u8])]) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&String::from_utf8_lossy(n));
        s.push_str("=\"");
        for c in String::from_utf8_lossy(v).chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// Whether `n` is the metric name label, compared as one 8-byte word.
#[inline(always)]
fn is_metric_name_label(n: &[u8]) -> bool {
    <&[u8; 8]>::try_from(n).is_ok_and(|n| n == b"__name__")
}

/// `a < b`, deciding on the first bytes when they differ (label names nearly always do)
/// without a call to `memcmp`.
#[inline(always)]
fn name_lt(a: &[u8], b: &[u8]) -> bool {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x < y,
        _ => a < b,
    }
}

/// Checks one label (value UTF-8 unless `ascii` says the caller saw it is ASCII, name
/// charset); `Ok(true)` when it is the metric name.
#[inline(always)]
fn check_label(n: &[u8], v: &[u8], ascii: bool, pairs: &[(&[u8], &[u8])]) -> Result<bool, String> {
    // Label values are nearly always ASCII, which is checked a word at a time.
    if !ascii && !v.is_ascii() && std::str::from_utf8(v).is_err() {
        return Err(format!(
            "invalid UTF-8 in value of label {:?} in series {}",
            String::from_utf8_lossy(n),
            render(pairs)
        ));
    }
    if is_metric_name_label(n) {
        if !is_valid_metric_name(v) {
            return Err(format!(
                "invalid metric name {:?} in series {}",
                String::from_utf8_lossy(v),
                render(pairs)
            ));
        }
        return Ok(true);
    }
    if !is_valid_label_name(n) {
        return Err(format!(
            "invalid label name {:?} in series {}",
            String::from_utf8_lossy(n),
            render(pairs)
        ));
    }
    Ok(false)
}

/// Normalises and checks one series' labels in place: drops empty-valued labels (an empty
/// value means "no label" in Prometheus), sorts by name if needed, and rejects invalid or
/// duplicate names, invalid UTF-8 and a missing or invalid metric name. `Ok(true)` when the
/// labels came already normalised (nothing dropped or moved), the common case.
#[cfg(test)]
pub(crate) fn check_labels(pairs: &mut Vec<(&[u8], &[u8])>) -> Result<bool, String> {
    check_labels_ascii(pairs, false)
}

/// [`check_labels`] where `ascii` says every value is known to be ASCII (the caller checked
/// the bytes that hold them all at once), so their UTF-8 check is skipped.
pub(crate) fn check_labels_ascii(
    pairs: &mut Vec<(&[u8], &[u8])>,
    ascii: bool,
) -> Result<bool, String> {
    // One pass for the common case: strictly increasing names (so no duplicates) and no
    // empty values, each label checked as it is passed.
    let mut has_name = false;
    let mut prev: Option<&[u8]> = None;
    let mut canonical = true;
    for &(n, v) in pairs.iter() {
        if v.is_empty() || prev.is_some_and(|p| !name_lt(p, n)) {
            canonical = false;
            break;
        }
        prev = Some(n);
        match check_label(n, v, ascii, pairs) {
            Ok(is_name) => has_name |= is_name,
            // Reported by the general path below, as it names the normalised series.
            Err(_) => {
                canonical = false;
                break;
            }
        }
    }
    if !canonical {
        if !pairs.windows(2).all(|w| w[0].0 <= w[1].0) {
            pairs.sort_by(|a, b| a.0.cmp(b.0));
        }
        // Duplicates count with their empty values, as in Prometheus (`{a="", a="x"}`).
        if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
            let name = String::from_utf8_lossy(w[0].0).into_owned();
            pairs.retain(|(_, v)| !v.is_empty());
            return Err(format!("duplicate label name {name:?} in series {}", render(pairs)));
        }
        pairs.retain(|(_, v)| !v.is_empty());
        has_name = false;
        for &(n, v) in pairs.iter() {
            has_name |= check_label(n, v, false, pairs)?;
        }
    }
    if !has_name {
        return Err(format!("series has no metric name (__name__): {}", render(pairs)));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p<'a>(v: &[(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        v.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())).collect()
    }

    #[test]
    fn a_name_twice_is_a_duplicate_even_with_an_empty_value() {
        let mut l = p(&[("__name__", "up"), ("job", ""), ("job", "a")]);
        let e = check_labels(&mut l).unwrap_err();
        assert!(e.contains("duplicate label name \"job\""), "{e}");
    }

    #[test]
    fn accepts_and_sorts() {
        let mut l = p(&[("job", "a"), ("__name__", "up"), ("empty", "")]);
        assert!(!check_labels(&mut l).unwrap(), "changed");
        assert_eq!(l, p(&[("__name__", "up"), ("job", "a")]));
        assert!(check_labels(&mut l).unwrap(), "already normalised");
        let mut l = p(&[("__name__", "up"), ("job", "a"), ("z", "")]);
        assert!(!check_labels(&mut l).unwrap(), "an empty value was dropped");
    }

    #[test]
    fn name_tables_match_the_charsets() {
        let label = |n: &[u8]| {
            n.split_first().is_some_and(|(f, r)| {
                (f.is_ascii_alphabetic() || *f == b'_')
                    && r.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            })
        };
        let metric = |n: &[u8]| {
            n.split_first().is_some_and(|(f, r)| {
                (f.is_ascii_alphabetic() || *f == b'_' || *f == b':')
                    && r.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
            })
        };
        assert!(!is_valid_label_name(b"") && !is_valid_metric_name(b""));
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                for n in [&[a][..], &[a, b][..], &[b'a', a, b][..]] {
                    assert_eq!(is_valid_label_name(n), label(n), "{n:?}");
                    assert_eq!(is_valid_metric_name(n), metric(n), "{n:?}");
                }
            }
        }
    }

    #[test]
    fn metric_name_label_and_name_order() {
        assert!(is_metric_name_label(strata_model::METRIC_NAME.as_bytes()));
        assert!(!is_metric_name_label(b"__name_") && !is_metric_name_label(b"__name__x"));
        for (a, b) in [("a", "b"), ("ab", "b"), ("a", "ab"), ("", "a"), ("ab", "ab"), ("b", "a")] {
            assert_eq!(name_lt(a.as_bytes(), b.as_bytes()), a < b, "{a} {b}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        for (labels, want) in [
            (vec![("job", "a")], "no metric name"),
            (vec![("__name__", "up"), ("job", "a"), ("job", "b")], "duplicate label name"),
            (vec![("job", "b"), ("__name__", "up"), ("job", "a")], "duplicate label name"),
            (vec![("__name__", "up"), ("1job", "a")], "invalid label name"),
            (vec![("__name__", "up"), ("jo-b", "a")], "invalid label name"),
            (vec![("__name__", "1up")], "invalid metric name"),
            (vec![("__name__", "up"), ("a:b", "x")], "invalid label name"),
        ] {
            let err = check_labels(&mut p(&labels)).unwrap_err();
            assert!(err.contains(want), "{labels:?}: {err}");
        }
        let mut bad: Vec<(&[u8], &[u8])> = vec![(b"__name__", b"up"), (b"x", b"\xff")];
        assert!(check_labels(&mut bad).unwrap_err().contains("UTF-8"));
    }
}
