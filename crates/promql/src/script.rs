//! A runner for Prometheus' PromQL test scripts (the `.test` format of
//! `promql/promqltest`, described in `shared/conformance/promql/FORMAT.md`).
//!
//! ```no_run
//! # async fn demo() {
//! use strata_promql::{script, Engine};
//! let engine = Engine::new(script::engine_opts());
//! let report = script::run_file(std::path::Path::new("functions.test"), &engine).await;
//! println!("{} passed, {} failed, {} skipped", report.passed(), report.failed(), report.skipped());
//! # }
//! ```
//!
//! Each `eval` is reported on its own as passed, failed (with a message) or skipped (with a
//! reason), by the file and line of its header. Differences from the reference runner:
//!
//! * A malformed block or a query that does not parse fails that block or eval only, not
//!   the whole file. Queries using syntax that `promql-parser` lacks (duration
//!   expressions such as `[5m+1m]` or `offset step()`, the `anchored`/`smoothed`
//!   range-selector modifiers, the histogram trim operators `>/` and `</`) are skipped
//!   with reason `unsupported syntax: ...`. Prometheus also accepts an `info()` data-label selector that matches the empty string;
//!   `promql-parser` does not, and such evals are skipped the same way.
//! * Native histograms are not loaded (the storage is float-only). An eval is skipped with
//!   a reason starting `native histogram` when it expects histogram values, or when one of
//!   its selectors selects a series that was loaded with `{{...}}` values, or that
//!   `load_with_nhcb` builds, since the last `clear`. `load_with_nhcb` otherwise loads the
//!   float series, as `load` does.
//! * Start timestamps (`@st` lines) are parsed but not stored; evals whose selectors select
//!   a series that had them are skipped with reason `start timestamps`.
//! * The implicit `@`-modifier check (FORMAT.md 4.6a) is **not** run: it rewrites the
//!   query and prints it back, and there is no PromQL printer here yet. The implicit
//!   range-mode check (4.6b) is run.

mod check;
mod deps;
mod parse;
mod syntax;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use regex::Regex;
use strata_model::{Label, Labels, Queryable, TenantId, METRIC_NAME};

use crate::mem::MemStorage;
use crate::value::{QueryError, QueryOutput, QueryValue, VectorSample};
use crate::{Engine, EngineOpts, QueryOpts};
use check::{check_annotations, check_error, check_sorted, compare_result, value_kind};
use parse::{Command, Eval, Expected, Load, Spec, Timing};
use syntax::{fmt_labels, SeqValue};

/// How long one query of a script may run before the engine should give up.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Engine settings of the reference test engine: lookback 5m, subqueries without a step
/// use 1m, at most 10,000 samples per query.
pub fn engine_opts() -> EngineOpts {
    EngineOpts {
        lookback_delta_ms: 5 * 60 * 1000,
        default_subquery_step_ms: 60 * 1000,
        max_samples: 10_000,
    }
}

/// What the runner runs queries with. Implemented by [`Engine`]; tests use fakes.
#[async_trait]
pub trait ScriptEngine: Send + Sync {
    async fn instant(
        &self,
        store: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryOutput, QueryError>;

    async fn range(
        &self,
        store: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutput, QueryError>;
}

static TEST_TENANT: LazyLock<TenantId> = LazyLock::new(|| TenantId("test".to_string()));

fn query_opts() -> QueryOpts {
    QueryOpts { lookback_delta_ms: None, deadline: Some(Instant::now() + QUERY_TIMEOUT) }
}

#[async_trait]
impl ScriptEngine for Engine {
    async fn instant(
        &self,
        store: &dyn Queryable,
        query: &str,
        t: i64,
    ) -> Result<QueryOutput, QueryError> {
        Engine::instant(self, store, &TEST_TENANT, query, t, &query_opts()).await
    }

    async fn range(
        &self,
        store: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryOutput, QueryError> {
        Engine::range(self, store, &TEST_TENANT, query, start, end, step, &query_opts()).await
    }
}

/// The verdict on one eval.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// One eval's result; `line` is the 1-based line of its `eval` header.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    pub file: String,
    pub line: usize,
    pub query: String,
    pub outcome: Outcome,
}

impl fmt::Display for EvalResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, query) = (&self.file, self.line, &self.query);
        match &self.outcome {
            Outcome::Pass => write!(f, "{file}:{line}: {query}: passed"),
            Outcome::Fail(m) => write!(f, "{file}:{line}: {query}: {m}"),
            Outcome::Skip(r) => write!(f, "{file}:{line}: {query}: skipped: {r}"),
        }
    }
}

/// A problem outside any eval: an unreadable file, a malformed block, a rejected sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptError {
    pub file: String,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Results of one or more script files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptReport {
    pub results: Vec<EvalResult>,
    pub errors: Vec<ScriptError>,
}

impl ScriptReport {
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pass))
    }

    /// Failed evals plus [`errors`](Self::errors).
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_))) + self.errors.len()
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }

    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }

    /// Appends another report's results and errors.
    pub fn merge(&mut self, other: ScriptReport) {
        self.results.extend(other.results);
        self.errors.extend(other.errors);
    }
}

/// Reads and runs one script file. Never fails: problems are in the report.
pub async fn run_file(path: &Path, engine: &dyn ScriptEngine) -> ScriptReport {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => run_script(&file, &text, engine).await,
        Err(e) => ScriptReport {
            results: Vec::new(),
            errors: vec![ScriptError { file, line: 0, message: format!("cannot read: {e}") }],
        },
    }
}

/// Runs a script given as text; `file` names it in the report.
pub async fn run_script(file: &str, text: &str, engine: &dyn ScriptEngine) -> ScriptReport {
    let (cmds, parse_errors) = parse::parse_file(text);
    let mut report = ScriptReport::default();
    report.errors.extend(parse_errors.into_iter().map(|e| ScriptError {
        file: file.to_string(),
        line: e.line,
        message: e.message,
    }));
    let mut seg = Segment::default();
    for cmd in cmds {
        match cmd {
            Command::Clear => seg = Segment::default(),
            Command::Load(load) => {
                for (line, message) in seg.load(&load) {
                    report.errors.push(ScriptError { file: file.to_string(), line, message });
                }
            }
            Command::Eval(eval) => {
                let outcome = match seg.eval(&eval, engine).await {
                    Ok(None) => Outcome::Pass,
                    Ok(Some(reason)) => Outcome::Skip(reason),
                    Err(message) => Outcome::Fail(message),
                };
                report.results.push(EvalResult {
                    file: file.to_string(),
                    line: eval.line,
                    query: eval.query.clone(),
                    outcome,
                });
            }
        }
    }
    report.errors.sort_by_key(|e| e.line);
    report
}

/// The data loaded since the last `clear`, and what the runner knows about it.
#[derive(Default)]
struct Segment {
    storage: MemStorage,
    /// Series that have native-histogram samples (not loaded), including the ones
    /// `load_with_nhcb` would build.
    histogram_series: Vec<Labels>,
    /// Series loaded with start timestamps (not stored).
    start_timestamp_series: Vec<Labels>,
}

fn add_unique(set: &mut Vec<Labels>, labels: Labels) {
    if !set.contains(&labels) {
        set.push(labels);
    }
}

impl Segment {
    /// Applies a load block; returns (line, message) for each rejected series.
    fn load(&mut self, load: &Load) -> Vec<(usize, String)> {
        let mut errors = Vec::new();
        for s in &load.series {
            if s.start_timestamps {
                add_unique(&mut self.start_timestamp_series, s.labels.clone());
            }
            if s.values.contains(&SeqValue::Histogram) {
                add_unique(&mut self.histogram_series, s.labels.clone());
            }
            for (i, v) in s.values.iter().enumerate() {
                let SeqValue::Float(v) = v else { continue };
                let Some(t) = (i as i64).checked_mul(load.interval_ms) else {
                    errors.push((s.line, "timestamp overflow".to_string()));
                    break;
                };
                if let Err(e) = self.storage.append(&s.labels, t, *v) {
                    errors.push((s.line, e.to_string()));
                    break;
                }
            }
            if load.with_nhcb {
                if let Some(base) = nhcb_base(&s.labels) {
                    add_unique(&mut self.histogram_series, base);
                }
            }
        }
        errors
    }

    /// Runs one eval: `Ok(None)` passed, `Ok(Some(reason))` skipped, `Err(msg)` failed.
    async fn eval(&self, eval: &Eval, engine: &dyn ScriptEngine) -> Result<Option<String>, String> {
        let spec = eval.spec.as_ref().map_err(|e| format!("malformed eval: {e}"))?;
        if spec.expects_histograms() {
            return Ok(Some("native histogram".into()));
        }
        let (step, range) = match spec.timing {
            Timing::Range { start, end, step } => (step, end - start),
            Timing::Instant { .. } => (0, 0),
        };
        let expr = match Engine::parse_with(&eval.query, step, range) {
            Ok(expr) => expr,
            Err(e) => {
                return match unsupported_syntax(&eval.query, &e.to_string()) {
                    Some(what) => Ok(Some(format!("unsupported syntax: {what}: {e}"))),
                    None => Err(format!("parse error: {e}")),
                }
            }
        };
        if let Some(l) = deps::first_selected(&expr, &self.histogram_series) {
            return Ok(Some(format!("native histogram: reads histogram series {}", fmt_labels(l))));
        }
        if let Some(l) = deps::first_selected(&expr, &self.start_timestamp_series) {
            return Ok(Some(format!("start timestamps: reads {} loaded with @st", fmt_labels(l))));
        }
        let store: &dyn Queryable = &self.storage;
        let q = eval.query.as_str();
        match spec.timing {
            Timing::Range { start, end, step } => {
                let res = guarded(engine.range(store, q, start, end, step)).await?;
                let out = match res {
                    Ok(out) => out,
                    Err(e) => return check_error(spec, &e).map(|()| None),
                };
                check_success(spec, &out)?;
                compare_result(spec, &out.value, Some((start, end, step)))?;
            }
            Timing::Instant { t } => {
                let res = guarded(engine.instant(store, q, t)).await?;
                let out = match res {
                    Ok(out) => out,
                    Err(e) => return check_error(spec, &e).map(|()| None),
                };
                check_success(spec, &out)?;
                compare_result(spec, &out.value, spec.range_vector)?;
                range_mode_check(spec, q, t, &out.value, store, engine).await?;
            }
        }
        Ok(None)
    }
}

/// The histogram series `load_with_nhcb` builds from a classic `_bucket` (with `le`),
/// `_count` or `_sum` series: the base name and the other labels.
fn nhcb_base(labels: &Labels) -> Option<Labels> {
    let name = labels.get(METRIC_NAME)?;
    let bucket = if labels.get("le").is_some() { name.strip_suffix("_bucket") } else { None };
    let base = bucket.or(name.strip_suffix("_count")).or(name.strip_suffix("_sum"))?;
    let mut out: Vec<Label> =
        labels.iter().filter(|l| l.name != "le" && l.name != METRIC_NAME).cloned().collect();
    out.push(Label { name: METRIC_NAME.to_string(), value: base.to_string() });
    out.sort();
    Some(Labels(out))
}

static CONTEXT_FUNCS: LazyLock<Regex> = LazyLock::new(|| re(r"(start|end|range|step)\(\)"));
static EXTENDED_SELECTOR: LazyLock<Regex> = LazyLock::new(|| re(r"\b(anchored|smoothed)\b"));
static BRACKET: LazyLock<Regex> = LazyLock::new(|| re(r"\[([^\]]*)\]"));
static PLAIN_RANGE: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*(\d+[a-z]+)*\s*(:\s*(\d+[a-z]+)*\s*)?$"));
static OFFSET_EXPR: LazyLock<Regex> =
    LazyLock::new(|| re(r"\boffset\s*([-+]\s*)?([(]|[a-zA-Z_]+\s*\(|\d+[a-z]+\s*[-+*/%^])"));

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant regex")
}

/// Names the syntax that Prometheus' parser accepts under the test engine's options but
/// `promql-parser` does not, when `query` (which failed to parse with `error`) uses it.
fn unsupported_syntax(query: &str, error: &str) -> Option<&'static str> {
    // Prometheus exempts the second argument of `info()` from the rule that a selector
    // needs a matcher that does not match the empty string.
    if query.contains("info(") && error.contains("at least one non-empty matcher") {
        return Some("info() data-label selector that matches the empty string");
    }
    if EXTENDED_SELECTOR.is_match(query) {
        return Some("`anchored`/`smoothed` range selector modifier");
    }
    if query.contains(">/") || query.contains("</") {
        return Some("histogram trim operator `>/` or `</`");
    }
    let expr_range = BRACKET
        .captures_iter(query)
        .any(|c| c.get(1).is_some_and(|m| !PLAIN_RANGE.is_match(m.as_str())));
    if expr_range || OFFSET_EXPR.is_match(query) {
        return Some("duration expression");
    }
    None
}

/// Checks that apply to any successful query: not expected to fail, annotations.
fn check_success(spec: &Spec, out: &QueryOutput) -> Result<(), String> {
    if spec.fail.is_some() {
        return Err(format!("expected error but got {}", value_kind(&out.value)));
    }
    check_annotations(spec, &out.annotations)
}

/// FORMAT.md 4.6(b): the instant query run as a range query from `t-1m` to `t+1m` must
/// give the same result at `t`.
async fn range_mode_check(
    spec: &Spec,
    q: &str,
    t: i64,
    instant: &QueryValue,
    store: &dyn Queryable,
    engine: &dyn ScriptEngine,
) -> Result<(), String> {
    const MINUTE: i64 = 60_000;
    if spec.range_vector.is_some()
        || matches!(spec.expected, Expected::String(_))
        || CONTEXT_FUNCS.is_match(q)
    {
        return Ok(());
    }
    let res = guarded(engine.range(store, q, t - MINUTE, t + MINUTE, MINUTE)).await?;
    let out = res.map_err(|e| format!("error in range mode: {e}"))?;
    if spec.ordered {
        return Ok(());
    }
    let QueryValue::Matrix(mat) = &out.value else {
        return Err(format!("range mode: expected a matrix but got {}", value_kind(&out.value)));
    };
    check_sorted(mat).map_err(|e| format!("range mode: {e}"))?;
    let vec: Vec<VectorSample> = mat
        .iter()
        .filter_map(|s| {
            let p = s.samples.iter().find(|p| p.t == t)?;
            Some(VectorSample { labels: s.labels.clone(), t, v: p.v })
        })
        .collect();
    let value = match instant {
        QueryValue::Scalar { .. } => match vec.first() {
            Some(s) => QueryValue::Scalar { t, v: s.v },
            None => return Err(format!("range mode: no point at t={t} for the scalar")),
        },
        _ => QueryValue::Vector(vec),
    };
    compare_result(spec, &value, None).map_err(|e| format!("range mode: {e}"))
}

/// Runs an engine call, turning a panic into an error message so that one broken query
/// does not end the whole run.
async fn guarded<T>(fut: Pin<Box<dyn Future<Output = T> + Send + '_>>) -> Result<T, String> {
    CatchPanic(fut).await
}

struct CatchPanic<'a, T>(Pin<Box<dyn Future<Output = T> + Send + 'a>>);

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => {
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Poll::Ready(Err(format!("engine panicked: {msg}")))
            }
        }
    }
}
