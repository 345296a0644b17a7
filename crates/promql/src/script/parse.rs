//! Splits a `.test` file into commands (FORMAT.md sections 1, 2 and 4.1-4.2).
//!
//! Unlike the reference runner, a malformed block does not fail the whole file: a bad
//! `load` or an unknown command becomes a [`ParseError`] and parsing resumes at the next
//! block; a bad `eval` body becomes that eval's own error.

use std::sync::LazyLock;

use regex::Regex;
use strata_model::Labels;

use super::syntax::{
    lex_string, parse_descriptor, parse_duration, parse_scalar, parse_values, SeqValue,
};

static EVAL_INSTANT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
});
static EVAL_RANGE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$")
});
static LOAD: LazyLock<Regex> = LazyLock::new(|| re(r"^load(?:_(with_nhcb))?\s+(.+?)$"));
static EXPECT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$")
});
static EXPECT_RANGE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^expect range vector\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$"));

/// Builds one of the constant patterns above.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant regex")
}

#[derive(Debug)]
pub(crate) enum Command {
    Clear,
    Load(Load),
    Eval(Box<Eval>),
}

#[derive(Debug)]
pub(crate) struct Load {
    pub interval_ms: i64,
    pub with_nhcb: bool,
    pub series: Vec<LoadSeries>,
}

#[derive(Debug)]
pub(crate) struct LoadSeries {
    pub line: usize,
    pub labels: Labels,
    pub values: Vec<SeqValue>,
    /// An `@st` line gave start timestamps for this series.
    pub start_timestamps: bool,
}

/// A file-level problem: the block at `line` could not be parsed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Timing {
    Instant { t: i64 },
    Range { start: i64, end: i64, step: i64 },
}

#[derive(Debug)]
pub(crate) struct Eval {
    /// 1-based line of the `eval` header.
    pub line: usize,
    pub query: String,
    /// The expectations, or why the eval's own lines are malformed.
    pub spec: Result<Spec, String>,
}

/// How an annotation or error text is matched.
#[derive(Debug, Clone)]
pub(crate) enum TextMatch {
    Any,
    Exact(String),
    Regex(Regex),
}

impl TextMatch {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            TextMatch::Any => true,
            TextMatch::Exact(m) => m == text,
            TextMatch::Regex(r) => r.is_match(text),
        }
    }
}

#[derive(Debug)]
pub(crate) struct ExpectedSeries {
    pub labels: Labels,
    pub values: Vec<SeqValue>,
}

#[derive(Debug)]
pub(crate) enum Expected {
    Scalar(f64),
    String(String),
    /// Series lines in file order; none means an empty vector or matrix.
    Series(Vec<ExpectedSeries>),
}

#[derive(Debug)]
pub(crate) struct Spec {
    pub timing: Timing,
    /// `expect fail` / `eval_fail`, with every text condition that came with it.
    pub fail: Option<Vec<TextMatch>>,
    /// `eval_warn` / `eval_info`: at least one annotation of the kind.
    pub warn_required: bool,
    pub info_required: bool,
    pub warns: Vec<TextMatch>,
    pub infos: Vec<TextMatch>,
    pub no_warn: bool,
    pub no_info: bool,
    pub ordered: bool,
    /// `expect range vector from .. to .. step ..`: (start, end, step) in ms.
    pub range_vector: Option<(i64, i64, i64)>,
    pub expected: Expected,
}

impl Spec {
    fn new(timing: Timing) -> Self {
        Spec {
            timing,
            fail: None,
            warn_required: false,
            info_required: false,
            warns: Vec::new(),
            infos: Vec::new(),
            no_warn: false,
            no_info: false,
            ordered: false,
            range_vector: None,
            expected: Expected::Series(Vec::new()),
        }
    }

    /// Whether an expected value is a native histogram.
    pub fn expects_histograms(&self) -> bool {
        match &self.expected {
            Expected::Series(s) => s.iter().any(|s| s.values.contains(&SeqValue::Histogram)),
            _ => false,
        }
    }
}

/// Parses a whole file. Line numbers are 1-based.
pub(crate) fn parse_file(text: &str) -> (Vec<Command>, Vec<ParseError>) {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| {
            let l = l.trim_matches([' ', '\t', '\r']);
            if l.starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.is_empty() {
            i += 1;
            continue;
        }
        let word = l.split([' ', '\t']).next().unwrap_or("").to_ascii_lowercase();
        let line = i + 1;
        if word == "clear" {
            cmds.push(Command::Clear);
            i += 1;
        } else if word.starts_with("load") {
            let end = block_end(&lines, i);
            match parse_load(&lines[i..end], line) {
                Ok(load) => cmds.push(Command::Load(load)),
                Err(e) => errors.push(e),
            }
            i = end;
        } else if word.starts_with("eval") {
            match parse_eval(&lines, i) {
                Ok((eval, next)) => {
                    cmds.push(Command::Eval(Box::new(eval)));
                    i = next;
                }
                Err(e) => {
                    errors.push(e);
                    i = block_end(&lines, i);
                }
            }
        } else {
            errors.push(ParseError { line, message: format!("invalid command {l:?}") });
            i = block_end(&lines, i);
        }
    }
    (cmds, errors)
}

/// Index of the first empty line at or after `i + 1` (or the end).
fn block_end(lines: &[&str], i: usize) -> usize {
    (i + 1..lines.len()).find(|&j| lines[j].is_empty()).unwrap_or(lines.len())
}

fn parse_load(block: &[&str], line: usize) -> Result<Load, ParseError> {
    let err = |off: usize, message: String| ParseError { line: line + off, message };
    let caps = LOAD
        .captures(block[0])
        .ok_or_else(|| err(0, "invalid load command. (load[_with_nhcb] <step:duration>)".into()))?;
    let step = caps.get(2).map_or("", |m| m.as_str());
    let interval_ms = parse_duration(step)
        .map_err(|e| err(0, format!("invalid step definition {step:?}: {e}")))?;
    let mut load = Load { interval_ms, with_nhcb: caps.get(1).is_some(), series: Vec::new() };
    // Start timestamps are recognised but not stored: the series they apply to are marked
    // so the runner can skip evals that read them.
    let mut default_st = false;
    let mut pending_st: Option<Labels> = None;
    for (off, l) in block.iter().enumerate().skip(1) {
        if let Some(rest) = l.strip_prefix("@st") {
            if !rest.starts_with(char::is_whitespace) {
                return Err(err(off, "invalid @st line".into()));
            }
            default_st = true;
            continue;
        }
        let (labels, rest) = parse_descriptor(l).map_err(|e| err(off, e))?;
        if let Some(r) = rest.strip_prefix("@st") {
            if pending_st.is_some() {
                return Err(err(off, "@st line has no following sample line".into()));
            }
            if !r.is_empty() && !r.starts_with(char::is_whitespace) {
                return Err(err(off, "invalid @st line".into()));
            }
            pending_st = Some(labels);
            continue;
        }
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(err(off, format!("unexpected {rest:?} after series descriptor")));
        }
        let values = parse_values(rest).map_err(|e| err(off, e))?;
        let st = match pending_st.take() {
            Some(st_labels) if st_labels != labels => {
                return Err(err(off, "@st metric does not match the following sample line".into()))
            }
            Some(_) => true,
            None => default_st,
        };
        // A series listed twice keeps only its last definition.
        load.series.retain(|s| s.labels != labels);
        load.series.push(LoadSeries { line: line + off, labels, values, start_timestamps: st });
    }
    if pending_st.is_some() {
        return Err(err(block.len() - 1, "@st line has no following sample line".into()));
    }
    Ok(load)
}

/// Parses the eval starting at `lines[i]`; returns it and the index of the next line to
/// look at. Fails only when the header itself is unrecognisable.
fn parse_eval(lines: &[&str], i: usize) -> Result<(Eval, usize), ParseError> {
    let header = lines[i];
    let line = i + 1;
    let (modifier, query, timing) = if let Some(c) = EVAL_INSTANT.captures(header) {
        let at = c.get(2).map_or("", |m| m.as_str());
        let t = parse_duration(at).map_err(|e| format!("invalid timestamp definition {at:?}: {e}"));
        (c.get(1), c.get(3), t.map(|t| Timing::Instant { t }))
    } else if let Some(c) = EVAL_RANGE.captures(header) {
        let d = |n: usize| {
            let s = c.get(n).map_or("", |m| m.as_str());
            parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
        };
        let timing = (|| {
            let (start, end, step) = (d(2)?, d(3)?, d(4)?);
            if end < start {
                return Err(
                    "invalid test definition, end timestamp is before start timestamp".into()
                );
            }
            Ok(Timing::Range { start, end, step })
        })();
        (c.get(1), c.get(5), timing)
    } else {
        return Err(ParseError { line, message: format!("invalid evaluation command {header:?}") });
    };
    let query = query.map_or("", |m| m.as_str()).to_string();
    let modifier = modifier.map(|m| m.as_str());
    let end = block_end(lines, i);
    let (spec, next) = match timing {
        Ok(timing) => match parse_body(&lines[i + 1..end], modifier, timing) {
            Ok((spec, used)) => (Ok(spec), i + 1 + used),
            Err(e) => (Err(e), end),
        },
        Err(e) => (Err(e), end),
    };
    Ok((Eval { line, query, spec }, next))
}

/// Parses an eval's body lines. Returns the spec and how many lines it used (a scalar
/// expectation or `expected_fail_*` line ends the eval; following lines are commands).
fn parse_body(
    body: &[&str],
    modifier: Option<&str>,
    timing: Timing,
) -> Result<(Spec, usize), String> {
    let mut spec = Spec::new(timing);
    let mut series: Vec<ExpectedSeries> = Vec::new();
    match modifier {
        Some("fail") => spec.fail = Some(Vec::new()),
        Some("warn") => spec.warn_required = true,
        Some("info") => spec.info_required = true,
        Some("ordered") => spec.ordered = true,
        _ => {}
    }
    let is_instant = matches!(timing, Timing::Instant { .. });
    let mut used = 0;
    for (n, l) in body.iter().enumerate() {
        used = n + 1;
        if let Some(fail) = spec.fail.as_mut() {
            if let Some(msg) = l.strip_prefix("expected_fail_message") {
                fail.push(TextMatch::Exact(msg.trim().to_string()));
                break;
            }
            if let Some(pat) = l.strip_prefix("expected_fail_regexp") {
                let pat = pat.trim();
                let r = Regex::new(pat).map_err(|e| format!("invalid regexp {pat:?}: {e}"))?;
                fail.push(TextMatch::Regex(r));
                break;
            }
        }
        if l.starts_with("expect range vector") {
            let c = EXPECT_RANGE
                .captures(l)
                .ok_or_else(|| format!("invalid range vector definition {l:?}"))?;
            let d = |n: usize| parse_duration(c.get(n).map_or("", |m| m.as_str()));
            let (start, end, step) = (d(1)?, d(2)?, d(3)?);
            if end < start {
                return Err("invalid range vector definition, end is before start".into());
            }
            spec.range_vector = Some((start, end, step));
            continue;
        }
        if let Some(s) = l.strip_prefix("expect string") {
            let s = s.trim_start();
            let (text, rest) =
                lex_string(s).map_err(|e| format!("expected string literal not valid: {e}"))?;
            if !rest.trim().is_empty() || s.starts_with('\'') {
                return Err("expected string literal not valid".into());
            }
            spec.expected = Expected::String(text);
            continue;
        }
        if l.split(' ').next() == Some("expect") {
            parse_expect(l, &mut spec)?;
            continue;
        }
        if let Some(v) = parse_scalar(l) {
            spec.expected = Expected::Scalar(v);
            break;
        }
        let (labels, rest) = parse_descriptor(l)?;
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(format!("unexpected {rest:?} after series descriptor"));
        }
        let values = parse_values(rest)?;
        if values.len() > 1 && is_instant && spec.range_vector.is_none() {
            return Err("expecting multiple values in instant evaluation not allowed; use \
                        'expect range vector'"
                .into());
        }
        series.retain(|s| s.labels != labels);
        series.push(ExpectedSeries { labels, values });
    }
    if !series.is_empty() {
        if !matches!(spec.expected, Expected::Series(_)) {
            return Err(
                "series lines cannot be combined with a scalar or string expectation".into()
            );
        }
        spec.expected = Expected::Series(series);
    }
    Ok((spec, used))
}

fn parse_expect(l: &str, spec: &mut Spec) -> Result<(), String> {
    let c = EXPECT.captures(l).ok_or_else(|| {
        format!("invalid expect statement {l:?}, must match `expect <type> <match_type>: <string>`")
    })?;
    let kind = c.get(1).map_or("", |m| m.as_str());
    let text = c.get(3).map_or("", |m| m.as_str()).trim();
    let m = match c.get(2).map(|m| m.as_str()) {
        Some("msg") => TextMatch::Exact(text.to_string()),
        Some(_) => TextMatch::Regex(
            Regex::new(text).map_err(|e| format!("invalid regex {text} for {kind}: {e}"))?,
        ),
        None => TextMatch::Any,
    };
    match kind {
        "fail" => {
            if spec.fail.as_ref().is_some_and(|f| !f.is_empty()) {
                return Err("multiple expect fail lines are not allowed".into());
            }
            spec.fail.get_or_insert_with(Vec::new).push(m);
        }
        "warn" => spec.warns.push(m),
        "info" => spec.infos.push(m),
        "no_warn" => spec.no_warn = true,
        "no_info" => spec.no_info = true,
        _ => spec.ordered = true,
    }
    if spec.no_warn && !spec.warns.is_empty() {
        return Err("warn and no_warn cannot be used together".into());
    }
    if spec.no_info && !spec.infos.is_empty() {
        return Err("info and no_info cannot be used together".into());
    }
    Ok(())
}
