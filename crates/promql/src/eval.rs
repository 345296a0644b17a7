//! Evaluation: fetch every selector's series once, then evaluate the tree over all steps.
//!
//! Every instant-vector node yields, per series, one optional value per step of its grid
//! (the query's steps, or a subquery's). Range-vector nodes keep raw samples and are cut into
//! windows by the function that consumes them. Label sets are computed once per series, not
//! per step; per-step work is plain float arithmetic.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::token::{self as tok, TokenId};
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    Offset, SubqueryExpr, VectorMatchCardinality, VectorSelector,
};
use strata_model::{
    is_stale_nan, Label, Labels, MatchOp, Matcher, Queryable, RawSeries, Sample, TenantId,
    METRIC_NAME,
};

use crate::extsel::Modifier;
use crate::functions::agg::{self, bucket_fraction, bucket_quantile, quantile, Bucket, KahanSum};
use crate::functions::extended::eval_extended;
use crate::functions::range::{eval_range, smoothing_factor_error, RangeFn};
use crate::functions::simple::{date_fn, math_fn, round};
use crate::value::{
    Annotations, MatrixSeries, QueryError, QueryOutput, QueryStats, QueryValue, VectorSample,
};

mod aggregate;
mod binary;
mod extended;
mod functions;

use self::functions::unwrap_parens;
use extended::check_extended;

type Result<T> = std::result::Result<T, QueryError>;

pub(crate) struct Params {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub lookback: i64,
    pub subquery_step: i64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
}

/// Evaluation times: `start`, `start + step`, ... up to `end`. `step == 0` means one step.
#[derive(Debug, Clone, Copy)]
struct Grid {
    start: i64,
    end: i64,
    step: i64,
}

impl Grid {
    fn len(&self) -> usize {
        if self.step <= 0 {
            1
        } else if self.end < self.start {
            0
        } else {
            ((self.end - self.start) / self.step + 1) as usize
        }
    }

    fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
}

/// One instant-vector series: a value or nothing at each step of the grid.
#[derive(Debug, Clone)]
struct Series {
    labels: Labels,
    vals: Vec<Option<f64>>,
    /// The metric name is to be removed when the result is returned (delayed name removal).
    drop_name: bool,
}

/// One range-vector series: raw samples, staleness markers removed.
#[derive(Debug, Clone)]
struct RangeSeries {
    labels: Labels,
    samples: Vec<Sample>,
    drop_name: bool,
}

/// A range vector: series plus how to cut each step's window.
#[derive(Debug, Clone)]
struct RangeVal {
    series: Vec<RangeSeries>,
    range: i64,
    offset: i64,
    at: Option<i64>,
    /// `anchored` or `smoothed`: the series hold samples up to a lookback delta beyond the
    /// windows.
    modifier: Option<Modifier>,
}

impl RangeVal {
    /// The window `(lo, hi]` for a step at `t`.
    fn window(&self, t: i64) -> (i64, i64) {
        let hi = self.at.unwrap_or(t) - self.offset;
        (hi - self.range, hi)
    }
}

#[derive(Debug, Clone)]
enum Val {
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Series>),
    Matrix(RangeVal),
}

pub(crate) async fn run(
    store: &dyn Queryable,
    tenant: &TenantId,
    expr: &Expr,
    p: &Params,
    instant: bool,
) -> Result<QueryOutput> {
    let grid = Grid { start: p.start, end: p.end, step: if instant { 0 } else { p.step } };
    // Phase 1: the time range each selector needs, then one fetch per selector.
    check_extended(expr)?;
    let mut fetches = Fetches { selectors: HashMap::new(), infos: Vec::new() };
    collect_ranges(expr, grid, p, &mut fetches)?;
    let mut ev = Ev {
        p,
        data: HashMap::new(),
        ann: Annotations::default(),
        stats: QueryStats::default(),
        live: 0,
        instant,
    };
    for (key, (mint, maxt, vs)) in fetches.selectors {
        let matchers = selector_matchers(vs)?;
        let series = store.select(tenant, &matchers, mint, maxt).await?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        ev.stats.samples_loaded += n as u64;
        ev.stats.series_loaded += series.len() as u64;
        ev.charge(n)?;
        ev.data.insert(key, series);
    }
    for (key, matchers, mint, maxt) in fetches.infos {
        let series = store.select(tenant, &matchers, mint, maxt).await?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        ev.stats.samples_loaded += n as u64;
        ev.charge(n)?;
        ev.data.insert(key, series);
    }
    ev.check_deadline()?;
    // Phase 2: evaluate.
    let val = ev.eval(expr, grid)?;
    let value = ev.finish(val, grid, instant)?;
    ev.stats.peak_samples = ev.stats.peak_samples.max(ev.live as u64);
    Ok(QueryOutput { value, annotations: ev.ann, stats: ev.stats })
}

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis() as i64
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(*d),
        Some(Offset::Neg(d)) => -ms(*d),
    }
}

fn at_ms(at: &Option<AtModifier>, p: &Params) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(p.start),
        Some(AtModifier::End) => Some(p.end),
        Some(AtModifier::At(t)) => Some(system_time_ms(*t)),
    }
}

fn system_time_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

/// The grid a subquery evaluates its inner expression on, as Prometheus aligns it.
fn subquery_grid(sq: &SubqueryExpr, outer: Grid, p: &Params) -> Grid {
    let off = offset_ms(&sq.offset);
    let range = ms(sq.range);
    let step = match sq.step {
        Some(s) if ms(s) > 0 => ms(s),
        _ => p.subquery_step.max(1),
    };
    let (os, oe) = match at_ms(&sq.at, p) {
        Some(a) => (a, a),
        None => (outer.start, outer.end),
    };
    let lo = os - off - range;
    let mut start = step * (lo / step);
    if start <= lo {
        start += step;
    }
    Grid { start, end: oe - off, step }
}

/// What phase 1 fetches: each selector's time range, keyed by the selector's address, and
/// each `info()` call's info series (matchers and range), keyed by the call's address.
struct Fetches<'e> {
    selectors: HashMap<usize, (i64, i64, &'e VectorSelector)>,
    infos: Vec<(usize, Vec<Matcher>, i64, i64)>,
}

fn collect_ranges<'e>(e: &'e Expr, g: Grid, p: &Params, f: &mut Fetches<'e>) -> Result<()> {
    let out = &mut f.selectors;
    // `back` and `ahead`: how far before and after the evaluation times samples are needed.
    let mut add = |vs: &'e VectorSelector, back: i64, ahead: i64| {
        let off = offset_ms(&vs.offset);
        let (s, e) = match at_ms(&vs.at, p) {
            Some(a) => (a, a),
            None => (g.start, g.end),
        };
        let mint = s.saturating_sub(off).saturating_sub(back);
        let maxt = e.saturating_sub(off).saturating_add(ahead);
        let key = vs as *const VectorSelector as usize;
        let entry = out.entry(key).or_insert((mint, maxt, vs));
        entry.0 = entry.0.min(mint);
        entry.1 = entry.1.max(maxt);
    };
    match e {
        Expr::VectorSelector(vs) => add(vs, p.lookback, 0),
        Expr::MatrixSelector(m) => add(&m.vs, ms(m.range), 0),
        Expr::Aggregate(a) => {
            collect_ranges(&a.expr, g, p, f)?;
            if let Some(pa) = &a.param {
                collect_ranges(pa, g, p, f)?;
            }
        }
        Expr::Unary(u) => collect_ranges(&u.expr, g, p, f)?,
        Expr::Binary(b) => {
            collect_ranges(&b.lhs, g, p, f)?;
            collect_ranges(&b.rhs, g, p, f)?;
        }
        Expr::Paren(x) => collect_ranges(&x.expr, g, p, f)?,
        Expr::Subquery(sq) => collect_ranges(&sq.expr, subquery_grid(sq, g, p), p, f)?,
        Expr::Call(c) if Modifier::of_function(c.func.name).is_some() => {
            // Extended selectors look a lookback delta past their windows: anchored before
            // the start, smoothed on both sides.
            let smoothed =
                Modifier::of_function(c.func.name).is_some_and(|(m, _)| m == Modifier::Smoothed);
            let ahead = if smoothed { p.lookback } else { 0 };
            match c.args.args.first().map(|a| a.as_ref()) {
                Some(Expr::MatrixSelector(m)) => {
                    add(&m.vs, ms(m.range).saturating_add(p.lookback), ahead)
                }
                Some(Expr::VectorSelector(vs)) => add(vs, p.lookback, ahead),
                _ => {
                    for a in &c.args.args {
                        collect_ranges(a, g, p, f)?;
                    }
                }
            }
        }
        Expr::Call(c) if c.func.name == "info" => {
            // The info selector (second argument) is fetched with its own matchers.
            let (mut m, data) = info_matchers(c)?;
            m.extend(data);
            f.infos.push((c as *const Call as usize, m, g.start - p.lookback, g.end));
            if let Some(a) = c.args.args.first() {
                collect_ranges(a, g, p, f)?;
            }
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect_ranges(a, g, p, f)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Extension(_) => {
            return Err(QueryError::BadData("extension expressions are not supported".into()))
        }
    }
    Ok(())
}

/// `info()`'s second argument split into `__name__` matchers (default: `target_info`) and
/// data-label matchers.
fn info_matchers(c: &Call) -> Result<(Vec<Matcher>, Vec<Matcher>)> {
    let mut names = Vec::new();
    let mut data = Vec::new();
    if let Some(a) = c.args.args.get(1) {
        let Expr::VectorSelector(vs) = unwrap_parens(a) else {
            return Err(QueryError::BadData(
                "info(): the second argument must be a vector selector".into(),
            ));
        };
        for m in selector_matchers(vs)? {
            if m.name == crate::infosel::PLACEHOLDER {
                continue;
            }
            if m.name == METRIC_NAME {
                names.push(m);
            } else {
                data.push(m);
            }
        }
    }
    if names.is_empty() {
        names.push(Matcher::new(MatchOp::Equal, METRIC_NAME, "target_info")?);
    }
    Ok((names, data))
}

fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>> {
    let mut out = Vec::new();
    if let Some(name) = &vs.name {
        out.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name.as_str())?);
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::BadData(
            "the \"or\" operator inside label matchers is not supported".into(),
        ));
    }
    for m in &vs.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::Regex,
            PMatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(Matcher::new(op, m.name.as_str(), m.value.as_str())?);
    }
    Ok(out)
}

struct Ev<'a> {
    p: &'a Params,
    data: HashMap<usize, Vec<RawSeries>>,
    ann: Annotations,
    stats: QueryStats,
    /// Samples currently charged against `max_samples`.
    live: usize,
    /// An instant query (sorting functions matter only there).
    instant: bool,
}

fn exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

impl<'a> Ev<'a> {
    fn charge(&mut self, n: usize) -> Result<()> {
        self.live += n;
        self.stats.peak_samples = self.stats.peak_samples.max(self.live as u64);
        if self.live > self.p.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    /// Fails as [`Ev::charge`] would for `n` more samples, without charging them: checked
    /// before a series' grid is allocated, charged once it is kept.
    fn check_room(&self, n: usize) -> Result<()> {
        if self.live.saturating_add(n) > self.p.max_samples {
            return Err(QueryError::TooManySamples);
        }
        Ok(())
    }

    fn check_deadline(&self) -> Result<()> {
        match self.p.deadline {
            Some(d) if Instant::now() > d => Err(QueryError::Timeout("query execution")),
            _ => Ok(()),
        }
    }

    fn eval(&mut self, e: &Expr, g: Grid) -> Result<Val> {
        self.check_deadline()?;
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; g.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(x) => self.eval(&x.expr, g),
            Expr::Unary(u) => match self.eval(&u.expr, g)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut vs) => {
                    for s in &mut vs {
                        for v in s.vals.iter_mut().flatten() {
                            *v = -*v;
                        }
                        s.drop_name = true;
                    }
                    Ok(Val::Vector(vs))
                }
                _ => Err(QueryError::BadData("unary minus of a non-numeric value".into())),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.select_instant(vs, g, false)?)),
            Expr::MatrixSelector(m) => Ok(Val::Matrix(self.select_range(m)?)),
            Expr::Subquery(sq) => Ok(Val::Matrix(self.subquery(sq, g)?)),
            Expr::Aggregate(a) => self.aggregate(a, g),
            Expr::Binary(b) => self.binary(b, g),
            Expr::Call(c) => self.call(c, g),
            Expr::Extension(_) => {
                Err(QueryError::BadData("extension expressions are not supported".into()))
            }
        }
    }

    /// The fetched series of a selector, moved out: every node of the tree is evaluated
    /// exactly once (subqueries evaluate their inner expression over their whole grid), so
    /// nothing needs to be copied.
    fn take_raw(&mut self, vs: &VectorSelector) -> Vec<RawSeries> {
        self.data.remove(&(vs as *const VectorSelector as usize)).unwrap_or_default()
    }

    /// An instant selector over the grid: the newest sample in `(t - lookback, t]` per step.
    /// With `timestamps`, the value is the sample's timestamp in seconds (for `timestamp()`).
    fn select_instant(
        &mut self,
        vs: &VectorSelector,
        g: Grid,
        timestamps: bool,
    ) -> Result<Vec<Series>> {
        let off = offset_ms(&vs.offset);
        let at = at_ms(&vs.at, self.p);
        let lookback = self.p.lookback;
        let n = g.len();
        let mut out = Vec::new();
        for (si, rs) in self.take_raw(vs).into_iter().enumerate() {
            if si % 256 == 0 {
                self.check_deadline()?;
            }
            // Room checked before the allocation, so a grid too large for many series fails
            // before their memory is taken.
            self.check_room(n)?;
            let mut vals = vec![None; n];
            let mut any = false;
            for (i, slot) in vals.iter_mut().enumerate() {
                let te = at.unwrap_or(g.ts(i)) - off;
                let idx = rs.samples.partition_point(|s| s.t <= te);
                if idx == 0 {
                    continue;
                }
                let s = rs.samples[idx - 1];
                if s.t <= te - lookback || is_stale_nan(s.v) {
                    continue;
                }
                *slot = Some(if timestamps { s.t as f64 / 1000.0 } else { s.v });
                any = true;
            }
            if any {
                self.charge(n)?;
                out.push(Series { labels: rs.labels, vals, drop_name: false });
            }
        }
        Ok(out)
    }

    fn select_range(&mut self, m: &MatrixSelector) -> Result<RangeVal> {
        let series: Vec<RangeSeries> = self
            .take_raw(&m.vs)
            .into_iter()
            .map(|mut rs| {
                rs.samples.retain(|s| !is_stale_nan(s.v));
                RangeSeries { labels: rs.labels, samples: rs.samples, drop_name: false }
            })
            .collect();
        Ok(RangeVal {
            series,
            range: ms(m.range),
            offset: offset_ms(&m.vs.offset),
            at: at_ms(&m.vs.at, self.p),
            modifier: None,
        })
    }

    fn subquery(&mut self, sq: &SubqueryExpr, outer: Grid) -> Result<RangeVal> {
        let ig = subquery_grid(sq, outer, self.p);
        if ig.len() > self.p.max_samples {
            return Err(QueryError::TooManySamples);
        }
        let inner = self.eval(&sq.expr, ig)?;
        let series = match inner {
            Val::Vector(vs) => vs
                .into_iter()
                .map(|s| RangeSeries {
                    labels: s.labels,
                    samples: s
                        .vals
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| Sample { t: ig.ts(i), v }))
                        .collect(),
                    drop_name: s.drop_name,
                })
                .collect(),
            Val::Scalar(v) => vec![RangeSeries {
                labels: Labels::default(),
                samples: v.iter().enumerate().map(|(i, v)| Sample { t: ig.ts(i), v: *v }).collect(),
                drop_name: false,
            }],
            _ => {
                return Err(QueryError::BadData(
                    "subquery is only allowed on instant vector or scalar".into(),
                ))
            }
        };
        Ok(RangeVal {
            series,
            range: ms(sq.range),
            offset: offset_ms(&sq.offset),
            at: at_ms(&sq.at, self.p),
            modifier: None,
        })
    }

    fn scalar_arg(&mut self, e: &Expr, g: Grid) -> Result<Vec<f64>> {
        match self.eval(e, g)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(QueryError::BadData("expected a scalar argument".into())),
        }
    }

    fn vector_arg(&mut self, e: &Expr, g: Grid) -> Result<Vec<Series>> {
        match self.eval(e, g)? {
            Val::Vector(v) => Ok(v),
            _ => Err(QueryError::BadData("expected an instant vector argument".into())),
        }
    }

    fn matrix_arg(&mut self, e: &Expr, g: Grid) -> Result<RangeVal> {
        match self.eval(e, g)? {
            Val::Matrix(v) => Ok(v),
            _ => Err(QueryError::BadData("expected a range vector argument".into())),
        }
    }

    fn string_arg(&mut self, e: &Expr, g: Grid) -> Result<String> {
        match self.eval(e, g)? {
            Val::Str(s) => Ok(s),
            _ => Err(QueryError::BadData("expected a string argument".into())),
        }
    }

    // ---------------------------------------------------------------- final result

    fn finish(&mut self, val: Val, g: Grid, instant: bool) -> Result<QueryValue> {
        match val {
            Val::Scalar(v) => {
                if instant {
                    Ok(QueryValue::Scalar { t: g.start, v: v.first().copied().unwrap_or(f64::NAN) })
                } else {
                    let samples =
                        v.iter().enumerate().map(|(i, v)| Sample { t: g.ts(i), v: *v }).collect();
                    Ok(QueryValue::Matrix(vec![MatrixSeries {
                        labels: Labels::default(),
                        samples,
                    }]))
                }
            }
            Val::Str(s) => {
                if instant {
                    Ok(QueryValue::String { t: g.start, v: s })
                } else {
                    Err(QueryError::BadData(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                    ))
                }
            }
            Val::Vector(vs) => {
                let vs = drop_names(vs)?;
                if instant {
                    let mut out = Vec::with_capacity(vs.len());
                    for s in vs {
                        if let Some(Some(v)) = s.vals.first() {
                            out.push(VectorSample { labels: s.labels, t: g.start, v: *v });
                        }
                    }
                    Ok(QueryValue::Vector(out))
                } else {
                    let mut out: Vec<MatrixSeries> = vs
                        .into_iter()
                        .filter_map(|s| {
                            let samples: Vec<Sample> = s
                                .vals
                                .iter()
                                .enumerate()
                                .filter_map(|(i, v)| v.map(|v| Sample { t: g.ts(i), v }))
                                .collect();
                            (!samples.is_empty())
                                .then_some(MatrixSeries { labels: s.labels, samples })
                        })
                        .collect();
                    out.sort_by(|a, b| a.labels.cmp(&b.labels));
                    Ok(QueryValue::Matrix(out))
                }
            }
            Val::Matrix(rv) => {
                if !instant {
                    return Err(QueryError::BadData(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
                let (lo, hi) = rv.window(g.start);
                let mut out: Vec<MatrixSeries> = Vec::new();
                for s in rv.series {
                    let a = s.samples.partition_point(|x| x.t <= lo);
                    let b = s.samples.partition_point(|x| x.t <= hi);
                    if a < b {
                        let mut labels = s.labels;
                        if s.drop_name {
                            labels.0.retain(|l| !is_reserved_name(&l.name));
                        }
                        out.push(MatrixSeries { labels, samples: s.samples[a..b].to_vec() });
                    }
                }
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                if out.windows(2).any(|w| w[0].labels == w[1].labels) {
                    return Err(exec("vector cannot contain metrics with the same labelset"));
                }
                Ok(QueryValue::Matrix(out))
            }
        }
    }
}

/// `__name__` and the type-and-unit labels, which go together when a result stops being
/// the metric it was read as.
fn is_reserved_name(n: &str) -> bool {
    n == METRIC_NAME || n == "__type__" || n == "__unit__"
}

/// Removes `__name__` from series marked for it; label sets must stay unique per step.
fn drop_names(vs: Vec<Series>) -> Result<Vec<Series>> {
    if !vs.iter().any(|s| s.drop_name) {
        return Ok(vs);
    }
    let mut c = Collector::new(vs.first().map(|s| s.vals.len()).unwrap_or(0));
    for mut s in vs {
        if s.drop_name {
            s.labels.0.retain(|l| !is_reserved_name(&l.name));
        }
        let idx = c.series_for(s.labels, false);
        for (i, v) in s.vals.iter().enumerate() {
            if let Some(v) = v {
                c.put(idx, i, *v)?;
            }
        }
    }
    Ok(c.finish())
}

/// Builds an output vector keyed by label set, refusing two values for one label set at a step.
struct Collector {
    n: usize,
    index: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl Collector {
    fn new(n: usize) -> Self {
        Collector { n, index: HashMap::new(), series: Vec::new() }
    }

    fn series_for(&mut self, labels: Labels, drop_name: bool) -> usize {
        if let Some(i) = self.index.get(&labels) {
            let i = *i;
            self.series[i].drop_name |= drop_name;
            return i;
        }
        let i = self.series.len();
        self.index.insert(labels.clone(), i);
        self.series.push(Series { labels, vals: vec![None; self.n], drop_name });
        i
    }

    fn put(&mut self, idx: usize, step: usize, v: f64) -> Result<()> {
        let slot = &mut self.series[idx].vals[step];
        if slot.is_some() {
            return Err(exec("vector cannot contain metrics with the same labelset"));
        }
        *slot = Some(v);
        Ok(())
    }

    fn finish(self) -> Vec<Series> {
        self.series.into_iter().filter(|s| s.vals.iter().any(Option::is_some)).collect()
    }
}

// -------------------------------------------------------------------- label helpers

fn labels_without(l: &Labels, names: &[String], drop_metric: bool) -> Labels {
    Labels(
        l.0.iter()
            .filter(|x| !(names.contains(&x.name) || (drop_metric && x.name == METRIC_NAME)))
            .cloned()
            .collect(),
    )
}

fn labels_only(l: &Labels, names: &[String]) -> Labels {
    Labels(l.0.iter().filter(|x| names.contains(&x.name)).cloned().collect())
}

fn set_label(l: &mut Labels, name: &str, value: &str) {
    match l.0.binary_search_by(|x| x.name.as_str().cmp(name)) {
        Ok(i) => {
            if value.is_empty() {
                l.0.remove(i);
            } else {
                l.0[i].value = value.to_string();
            }
        }
        Err(i) => {
            if !value.is_empty() {
                l.0.insert(i, Label { name: name.to_string(), value: value.to_string() });
            }
        }
    }
}

/// Prometheus's `labels.String()`: `{a="b", c="d"}`.
fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l.0.iter().map(|x| format!("{}={:?}", x.name, x.value)).collect();
    format!("{{{}}}", parts.join(", "))
}

fn valid_label_name(s: &str) -> bool {
    // UTF-8, as a Rust string always is, but not bytes that were not (`guard::raw_byte`).
    !s.is_empty() && !s.chars().any(|c| crate::guard::raw_byte(c).is_some())
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, as Prometheus prints values in labels.
pub(crate) fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn metric_name(l: &Labels) -> &str {
    l.get(METRIC_NAME).unwrap_or("")
}
