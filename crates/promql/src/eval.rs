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

mod extended;
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
    let mut ranges: HashMap<usize, (i64, i64, &VectorSelector)> = HashMap::new();
    collect_ranges(expr, grid, p, &mut ranges)?;
    let mut ev = Ev {
        p,
        data: HashMap::new(),
        ann: Annotations::default(),
        stats: QueryStats::default(),
        live: 0,
        instant,
    };
    for (key, (mint, maxt, vs)) in ranges {
        let matchers = selector_matchers(vs)?;
        let series = store.select(tenant, &matchers, mint, maxt).await?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        ev.stats.samples_loaded += n as u64;
        ev.stats.series_loaded += series.len() as u64;
        ev.charge(n)?;
        ev.data.insert(key, series);
    }
    let mut infos = Vec::new();
    info_fetches(expr, grid, p, &mut infos)?;
    for (key, matchers, mint, maxt) in infos {
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

fn collect_ranges<'e>(
    e: &'e Expr,
    g: Grid,
    p: &Params,
    out: &mut HashMap<usize, (i64, i64, &'e VectorSelector)>,
) -> Result<()> {
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
            collect_ranges(&a.expr, g, p, out)?;
            if let Some(pa) = &a.param {
                collect_ranges(pa, g, p, out)?;
            }
        }
        Expr::Unary(u) => collect_ranges(&u.expr, g, p, out)?,
        Expr::Binary(b) => {
            collect_ranges(&b.lhs, g, p, out)?;
            collect_ranges(&b.rhs, g, p, out)?;
        }
        Expr::Paren(x) => collect_ranges(&x.expr, g, p, out)?,
        Expr::Subquery(sq) => collect_ranges(&sq.expr, subquery_grid(sq, g, p), p, out)?,
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
                        collect_ranges(a, g, p, out)?;
                    }
                }
            }
        }
        Expr::Call(c) if c.func.name == "info" => {
            // The info selector (second argument) is fetched separately, see `info_fetch`.
            if let Some(a) = c.args.args.first() {
                collect_ranges(a, g, p, out)?;
            }
        }
        Expr::Call(c) => {
            for a in &c.args.args {
                collect_ranges(a, g, p, out)?;
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Extension(_) => {
            return Err(QueryError::BadData("extension expressions are not supported".into()))
        }
    }
    Ok(())
}

/// The `info()` calls in an expression, with the matchers and time range their info
/// series are fetched with, keyed like selectors (by the call's address).
fn info_fetches(
    e: &Expr,
    g: Grid,
    p: &Params,
    out: &mut Vec<(usize, Vec<Matcher>, i64, i64)>,
) -> Result<()> {
    match e {
        Expr::Call(c) => {
            if c.func.name == "info" {
                let (names, data) = info_matchers(c)?;
                let mut m = names;
                m.extend(data);
                out.push((c as *const Call as usize, m, g.start - p.lookback, g.end));
            }
            for a in &c.args.args {
                info_fetches(a, g, p, out)?;
            }
        }
        Expr::Aggregate(a) => {
            info_fetches(&a.expr, g, p, out)?;
            if let Some(pa) = &a.param {
                info_fetches(pa, g, p, out)?;
            }
        }
        Expr::Unary(u) => info_fetches(&u.expr, g, p, out)?,
        Expr::Binary(b) => {
            info_fetches(&b.lhs, g, p, out)?;
            info_fetches(&b.rhs, g, p, out)?;
        }
        Expr::Paren(x) => info_fetches(&x.expr, g, p, out)?,
        Expr::Subquery(sq) => info_fetches(&sq.expr, subquery_grid(sq, g, p), p, out)?,
        _ => {}
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
        for rs in self.take_raw(vs) {
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
                out.push(Series { labels: rs.labels, vals, drop_name: false });
            }
        }
        let total = out.len() * n;
        self.charge(total)?;
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
    !s.is_empty() && std::str::from_utf8(s.as_bytes()).is_ok()
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

// -------------------------------------------------------------------- aggregation

impl<'a> Ev<'a> {
    fn aggregate(&mut self, a: &AggregateExpr, g: Grid) -> Result<Val> {
        let op = a.op.id();
        let n = g.len();
        // Parameters first (Prometheus evaluates them per step).
        let mut k_param: Option<Vec<f64>> = None;
        let mut label_param: Option<String> = None;
        if let Some(pe) = &a.param {
            if op == tok::T_COUNT_VALUES {
                label_param = Some(self.string_arg(pe, g)?);
            } else {
                k_param = Some(self.scalar_arg(pe, g)?);
            }
        }
        let input = self.vector_arg(&a.expr, g)?;
        let (by, names): (bool, Vec<String>) = match &a.modifier {
            None => (true, Vec::new()),
            Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
        };
        // Group series once: hash the grouping labels without allocating, build a label set
        // only for a new group.
        let in_group = |l: &Label| {
            if by {
                names.contains(&l.name)
            } else {
                l.name != METRIC_NAME && !names.contains(&l.name)
            }
        };
        let mut gindex: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
        for (i, s) in input.iter().enumerate() {
            let h = strata_model::label_hash(
                s.labels
                    .iter()
                    .filter(|l| in_group(l))
                    .map(|l| (l.name.as_bytes(), l.value.as_bytes())),
            );
            let slot = gindex.entry(h).or_default();
            let found = slot.iter().copied().find(|&gi| {
                let mut it = s.labels.iter().filter(|l| in_group(l));
                groups[gi].0.iter().all(|g| it.next() == Some(g)) && it.next().is_none()
            });
            let gi = match found {
                Some(gi) => gi,
                None => {
                    let gl = Labels(s.labels.iter().filter(|l| in_group(l)).cloned().collect());
                    groups.push((gl, Vec::new()));
                    slot.push(groups.len() - 1);
                    groups.len() - 1
                }
            };
            groups[gi].1.push(i);
        }

        match op {
            tok::T_TOPK | tok::T_BOTTOMK | tok::T_LIMITK | tok::T_LIMIT_RATIO => {
                let params = k_param.unwrap_or_else(|| vec![f64::NAN; n]);
                return self.aggregate_select(op, input, &groups, &params, g);
            }
            tok::T_COUNT_VALUES => {
                let label = label_param.unwrap_or_default();
                if !valid_label_name(&label) {
                    return Err(exec(format!("invalid label name {label:?}")));
                }
                let mut c = Collector::new(n);
                for (gl, members) in &groups {
                    for i in 0..n {
                        let mut counts: Vec<(String, f64)> = Vec::new();
                        for &m in members {
                            if let Some(v) = input[m].vals[i] {
                                let key = format_float(v);
                                match counts.iter_mut().find(|(k, _)| *k == key) {
                                    Some(e) => e.1 += 1.0,
                                    None => counts.push((key, 1.0)),
                                }
                            }
                        }
                        for (key, cnt) in counts {
                            let mut l = gl.clone();
                            set_label(&mut l, &label, &key);
                            let idx = c.series_for(l, false);
                            c.put(idx, i, cnt)?;
                        }
                    }
                }
                return Ok(Val::Vector(c.finish()));
            }
            _ => {}
        }

        if op == tok::T_QUANTILE {
            if let Some(qs) = &k_param {
                for q in qs {
                    if !(0.0..=1.0).contains(q) {
                        self.ann.warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_float(*q)
                        ));
                    }
                }
            }
        }

        let mut out = Vec::with_capacity(groups.len());
        let mut buf: Vec<f64> = Vec::new();
        for (gl, members) in groups {
            let mut vals = vec![None; n];
            for (i, slot) in vals.iter_mut().enumerate() {
                buf.clear();
                buf.extend(members.iter().filter_map(|&m| input[m].vals[i]));
                if buf.is_empty() {
                    continue;
                }
                *slot = Some(match op {
                    tok::T_SUM => {
                        let mut k = KahanSum::default();
                        buf.iter().for_each(|v| k.add(*v));
                        k.value()
                    }
                    tok::T_AVG => agg::mean(buf.iter().copied()),
                    tok::T_COUNT => buf.len() as f64,
                    tok::T_GROUP => 1.0,
                    tok::T_MIN => buf.iter().copied().fold(f64::NAN, |acc, v| {
                        if acc.is_nan() || v < acc {
                            v
                        } else {
                            acc
                        }
                    }),
                    tok::T_MAX => buf.iter().copied().fold(f64::NAN, |acc, v| {
                        if acc.is_nan() || v > acc {
                            v
                        } else {
                            acc
                        }
                    }),
                    tok::T_STDDEV => agg::stddev(buf.iter().copied()),
                    tok::T_STDVAR => agg::stdvar(buf.iter().copied()),
                    tok::T_QUANTILE => {
                        let q =
                            k_param.as_ref().and_then(|p| p.get(i)).copied().unwrap_or(f64::NAN);
                        quantile(q, &mut buf)
                    }
                    other => {
                        return Err(QueryError::BadData(format!(
                            "unsupported aggregation {}",
                            tok::TokenType::new(other)
                        )))
                    }
                });
            }
            if vals.iter().any(Option::is_some) {
                // Grouping by `__name__` keeps names that are only marked for removal; the
                // group's name goes when any member's would have.
                let drop_name = by && members.iter().any(|&m| input[m].drop_name);
                out.push(Series { labels: gl, vals, drop_name });
            }
        }
        self.charge(out.len() * n)?;
        Ok(Val::Vector(out))
    }

    /// topk, bottomk, limitk, limit_ratio: pick series per group and step, keeping their labels.
    fn aggregate_select(
        &mut self,
        op: TokenId,
        input: Vec<Series>,
        groups: &[(Labels, Vec<usize>)],
        params: &[f64],
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let mut keep: Vec<Vec<bool>> = vec![vec![false; n]; input.len()];
        // For instant queries, the order of the output within each group (Prometheus sorts
        // topk results descending and bottomk ascending).
        let mut order: Vec<usize> = Vec::new();
        // `i` is the step: it indexes every series' values and `keep[series]`.
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let p = params.get(i).copied().unwrap_or(f64::NAN);
            if op == tok::T_LIMIT_RATIO {
                if p.is_nan() {
                    return Err(exec("Ratio value is NaN"));
                }
                let r = if !(-1.0..=1.0).contains(&p) {
                    self.ann.warn(format!(
                        "ratio value should be between -1 and 1, got {}, capping to {}",
                        format_float(p),
                        if p < 0.0 { -1 } else { 1 }
                    ));
                    p.clamp(-1.0, 1.0)
                } else {
                    p
                };
                for (_, members) in groups {
                    for &m in members {
                        if input[m].vals[i].is_none() {
                            continue;
                        }
                        let ratio = ratio_of(&input[m].labels);
                        if (r >= 0.0 && ratio < r) || (r < 0.0 && ratio >= 1.0 + r) {
                            keep[m][i] = true;
                        }
                    }
                }
                continue;
            }
            if p.is_nan() {
                return Err(exec("Parameter value is NaN"));
            }
            if p >= 9.223372036854776e18 || p <= -9.223372036854776e18 {
                return Err(exec(format!("Scalar value {} overflows int64", format_float(p))));
            }
            let k = p as i64;
            if k < 1 {
                continue;
            }
            for (_, members) in groups {
                let mut present: Vec<usize> =
                    members.iter().copied().filter(|&m| input[m].vals[i].is_some()).collect();
                let k = k.min(present.len() as i64) as usize;
                if matches!(op, tok::T_TOPK | tok::T_BOTTOMK) && k > 0 {
                    let top = op == tok::T_TOPK;
                    let cmp = |a: &usize, b: &usize| {
                        let (x, y) = (
                            input[*a].vals[i].unwrap_or(f64::NAN),
                            input[*b].vals[i].unwrap_or(f64::NAN),
                        );
                        let o = cmp_nan_low(x, y, top);
                        if top {
                            o.reverse()
                        } else {
                            o
                        }
                    };
                    // Only the k best matter: select them, then order just those.
                    if k < present.len() {
                        present.select_nth_unstable_by(k - 1, cmp);
                        present.truncate(k);
                    }
                    present.sort_by(cmp);
                }
                present.truncate(k);
                for &m in &present {
                    keep[m][i] = true;
                }
                if n == 1 {
                    order.extend(present);
                }
            }
        }
        let mut out = Vec::new();
        if n == 1 && op != tok::T_LIMIT_RATIO {
            let mut input: Vec<Option<Series>> = input.into_iter().map(Some).collect();
            for m in order {
                if let Some(s) = input.get_mut(m).and_then(Option::take) {
                    out.push(s);
                }
            }
        } else {
            for (m, mut s) in input.into_iter().enumerate() {
                for (i, v) in s.vals.iter_mut().enumerate() {
                    if !keep[m][i] {
                        *v = None;
                    }
                }
                if s.vals.iter().any(Option::is_some) {
                    out.push(s);
                }
            }
        }
        Ok(Val::Vector(out))
    }
}

/// Orders floats with NaN below every number (`nan_low`) as topk/bottomk treat it.
fn cmp_nan_low(a: f64, b: f64, top: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        // For topk NaN is the smallest; for bottomk NaN is the largest.
        (true, false) => {
            if top {
                Less
            } else {
                Greater
            }
        }
        (false, true) => {
            if top {
                Greater
            } else {
                Less
            }
        }
        _ => a.partial_cmp(&b).unwrap_or(Equal),
    }
}

/// A stable number in [0, 1) from a label set, for limit_ratio.
fn ratio_of(l: &Labels) -> f64 {
    let h = strata_model::label_hash(l.0.iter().map(|x| (x.name.as_bytes(), x.value.as_bytes())));
    h as f64 / u64::MAX as f64
}

// -------------------------------------------------------------------- binary operators

fn arith(op: TokenId, l: f64, r: f64) -> Option<(f64, bool)> {
    // Returns (value, keep) — for comparisons, keep says whether the comparison held.
    Some(match op {
        tok::T_ADD => (l + r, true),
        tok::T_SUB => (l - r, true),
        tok::T_MUL => (l * r, true),
        tok::T_DIV => (l / r, true),
        tok::T_MOD => (l % r, true),
        tok::T_POW => (l.powf(r), true),
        tok::T_ATAN2 => (l.atan2(r), true),
        tok::T_EQLC => (l, l == r),
        tok::T_NEQ => (l, l != r),
        tok::T_GTR => (l, l > r),
        tok::T_LSS => (l, l < r),
        tok::T_GTE => (l, l >= r),
        tok::T_LTE => (l, l <= r),
        _ => return None,
    })
}

fn is_comparison(op: TokenId) -> bool {
    matches!(op, tok::T_EQLC | tok::T_NEQ | tok::T_GTR | tok::T_LSS | tok::T_GTE | tok::T_LTE)
}

impl<'a> Ev<'a> {
    fn binary(&mut self, b: &BinaryExpr, g: Grid) -> Result<Val> {
        let op = b.op.id();
        let lhs = self.eval(&b.lhs, g)?;
        let rhs = self.eval(&b.rhs, g)?;
        let return_bool = b.modifier.as_ref().map(|m| m.return_bool).unwrap_or(false);
        let bad = |o: TokenId| {
            QueryError::BadData(format!("invalid operator {}", tok::TokenType::new(o)))
        };
        match (lhs, rhs) {
            (Val::Scalar(l), Val::Scalar(r)) => {
                let mut out = Vec::with_capacity(l.len());
                for (a, c) in l.iter().zip(r.iter()) {
                    let (v, keep) = arith(op, *a, *c).ok_or_else(|| bad(op))?;
                    out.push(if is_comparison(op) {
                        if keep {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        v
                    });
                }
                Ok(Val::Scalar(out))
            }
            (Val::Vector(vs), Val::Scalar(sc)) => {
                self.vector_scalar(op, vs, &sc, false, return_bool)
            }
            (Val::Scalar(sc), Val::Vector(vs)) => {
                self.vector_scalar(op, vs, &sc, true, return_bool)
            }
            (Val::Vector(l), Val::Vector(r)) => {
                let default_mod;
                let m = match &b.modifier {
                    Some(m) => m,
                    None => {
                        default_mod = BinModifier::default();
                        &default_mod
                    }
                };
                match op {
                    tok::T_LAND | tok::T_LOR | tok::T_LUNLESS => self.set_op(op, l, r, m, g),
                    _ => self.vector_vector(op, l, r, m, g),
                }
            }
            _ => Err(QueryError::BadData("binary operator on non-numeric operands".into())),
        }
    }

    fn vector_scalar(
        &mut self,
        op: TokenId,
        mut vs: Vec<Series>,
        sc: &[f64],
        scalar_left: bool,
        return_bool: bool,
    ) -> Result<Val> {
        let cmp = is_comparison(op);
        for s in &mut vs {
            for (i, slot) in s.vals.iter_mut().enumerate() {
                let Some(v) = *slot else { continue };
                let c = sc.get(i).copied().unwrap_or(f64::NAN);
                let (l, r) = if scalar_left { (c, v) } else { (v, c) };
                let (mut res, keep) = arith(op, l, r)
                    .ok_or_else(|| QueryError::BadData("invalid vector/scalar operator".into()))?;
                if cmp && scalar_left {
                    res = r;
                }
                *slot = if return_bool {
                    Some(if keep { 1.0 } else { 0.0 })
                } else if keep {
                    Some(res)
                } else {
                    None
                };
            }
            if !cmp || return_bool {
                s.drop_name = true;
            }
        }
        vs.retain(|s| s.vals.iter().any(Option::is_some));
        Ok(Val::Vector(vs))
    }

    fn set_op(
        &mut self,
        op: TokenId,
        l: Vec<Series>,
        r: Vec<Series>,
        m: &BinModifier,
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let sig = signature_fn(m);
        let mut ids: HashMap<Labels, u32> = HashMap::new();
        let mut intern = |s: &Series| -> u32 {
            let k = sig(&s.labels);
            let next = ids.len() as u32;
            *ids.entry(k).or_insert(next)
        };
        let lsig: Vec<u32> = l.iter().map(&mut intern).collect();
        let rsig: Vec<u32> = r.iter().map(&mut intern).collect();
        let nsig = ids.len();
        // For each step, which signatures the right (or left, for `or`) side has.
        let mut out_l = l;
        match op {
            tok::T_LAND | tok::T_LUNLESS => {
                let mut present = vec![u32::MAX; nsig];
                for i in 0..n {
                    for (j, s) in r.iter().enumerate() {
                        if s.vals[i].is_some() {
                            present[rsig[j] as usize] = i as u32;
                        }
                    }
                    for (j, s) in out_l.iter_mut().enumerate() {
                        let has = present[lsig[j] as usize] == i as u32;
                        if (op == tok::T_LAND) != has {
                            s.vals[i] = None;
                        }
                    }
                }
                out_l.retain(|s| s.vals.iter().any(Option::is_some));
                Ok(Val::Vector(out_l))
            }
            _ => {
                // or: all of the left; right series at steps where the left lacks their signature.
                let mut present = vec![u32::MAX; nsig];
                let mut out_r = r;
                for i in 0..n {
                    for (j, s) in out_l.iter().enumerate() {
                        if s.vals[i].is_some() {
                            present[lsig[j] as usize] = i as u32;
                        }
                    }
                    for (j, s) in out_r.iter_mut().enumerate() {
                        if present[rsig[j] as usize] == i as u32 {
                            s.vals[i] = None;
                        }
                    }
                }
                let mut c = Collector::new(n);
                for s in out_l.into_iter().chain(out_r) {
                    let idx = c.series_for(s.labels, s.drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
        }
    }

    fn vector_vector(
        &mut self,
        op: TokenId,
        l: Vec<Series>,
        r: Vec<Series>,
        m: &BinModifier,
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        let (include, card_one_to_one, swap) = match &m.card {
            VectorMatchCardinality::OneToOne => (Vec::new(), true, false),
            VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false, false),
            VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), false, true),
            VectorMatchCardinality::ManyToMany => {
                return Err(QueryError::BadData(
                    "many-to-many matching only allowed for set operators".into(),
                ))
            }
        };
        let cmp = is_comparison(op);
        let return_bool = m.return_bool;
        // After a swap, `many` is the side whose labels the result keeps.
        let (many, one) = if swap { (r, l) } else { (l, r) };
        let sig = signature_fn(m);
        let mut ids: HashMap<Labels, u32> = HashMap::new();
        let mut sig_labels: Vec<Labels> = Vec::new();
        let mut intern = |s: &Series| -> u32 {
            let k = sig(&s.labels);
            if let Some(i) = ids.get(&k) {
                return *i;
            }
            let i = sig_labels.len() as u32;
            sig_labels.push(k.clone());
            ids.insert(k, i);
            i
        };
        let msig: Vec<u32> = many.iter().map(&mut intern).collect();
        let osig: Vec<u32> = one.iter().map(&mut intern).collect();
        let nsig = sig_labels.len();
        let mut by_sig: Vec<Vec<usize>> = vec![Vec::new(); nsig];
        for (j, s) in osig.iter().enumerate() {
            by_sig[*s as usize].push(j);
        }
        // Fill values apply to the sides after the group_right swap.
        let fill_many = m.fill_values.lhs;
        let fill_one = m.fill_values.rhs;
        let mut one_matched = vec![u32::MAX; one.len()];
        let mut fill_out: HashMap<(bool, usize), usize> = HashMap::new();
        let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
        let mut c = Collector::new(n);
        let mut matched_at = vec![u32::MAX; nsig];
        let on = matches!(m.matching, Some(LabelModifier::Include(_)));
        let match_names: Vec<String> = match &m.matching {
            Some(LabelModifier::Include(l)) | Some(LabelModifier::Exclude(l)) => l.labels.clone(),
            None => Vec::new(),
        };
        for i in 0..n {
            if i % 64 == 0 {
                self.check_deadline()?;
            }
            // The `one` side must be unique per signature at this step.
            let mut one_at: Vec<Option<usize>> = vec![None; nsig];
            for (j, s) in one.iter().enumerate() {
                if s.vals[i].is_none() {
                    continue;
                }
                let sg = osig[j] as usize;
                if let Some(prev) = one_at[sg] {
                    let side = if swap { "left" } else { "right" };
                    return Err(exec(format!(
                        "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_string(&sig_labels[sg]),
                        side,
                        labels_string(&one[prev].labels),
                        labels_string(&s.labels)
                    )));
                }
                one_at[sg] = Some(j);
            }
            for (k, s) in many.iter().enumerate() {
                let Some(mv) = s.vals[i] else { continue };
                let sg = msig[k] as usize;
                let Some(j) = one_at[sg] else {
                    if let Some(fv) = fill_one {
                        let (lv, rv) = if swap { (fv, mv) } else { (mv, fv) };
                        let idx = match fill_out.get(&(true, k)) {
                            Some(x) => *x,
                            None => {
                                let lb = result_labels(
                                    &s.labels,
                                    None,
                                    card_one_to_one,
                                    on,
                                    &match_names,
                                    &include,
                                );
                                let idx = c.series_for(lb, !cmp || return_bool || s.drop_name);
                                fill_out.insert((true, k), idx);
                                idx
                            }
                        };
                        self.put_binop(&mut c, idx, i, op, lv, rv, return_bool)?;
                    }
                    continue;
                };
                one_matched[j] = i as u32;
                let Some(ov) = one[j].vals[i] else { continue };
                if card_one_to_one {
                    if matched_at[sg] == i as u32 {
                        return Err(exec(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                        ));
                    }
                    matched_at[sg] = i as u32;
                }
                let (lv, rv) = if swap { (ov, mv) } else { (mv, ov) };
                let (v, keep) = arith(op, lv, rv)
                    .ok_or_else(|| QueryError::BadData("invalid operator".into()))?;
                let v = if return_bool {
                    if keep {
                        1.0
                    } else {
                        0.0
                    }
                } else if keep {
                    v
                } else {
                    continue;
                };
                let idx = match pair_out.get(&(k, j)) {
                    Some(x) => *x,
                    None => {
                        let lb = result_labels(
                            &s.labels,
                            Some(&one[j].labels),
                            card_one_to_one,
                            on,
                            &match_names,
                            &include,
                        );
                        let drop_name = !cmp || return_bool || s.drop_name;
                        let idx = c.series_for(lb, drop_name);
                        pair_out.insert((k, j), idx);
                        idx
                    }
                };
                if c.series[idx].vals[i].is_some() {
                    return Err(exec(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
                c.put(idx, i, v)?;
            }
            if let Some(fv) = fill_many {
                for (j, s) in one.iter().enumerate() {
                    let Some(ov) = s.vals[i] else { continue };
                    if one_matched[j] == i as u32 {
                        continue;
                    }
                    let (lv, rv) = if swap { (ov, fv) } else { (fv, ov) };
                    let idx = match fill_out.get(&(false, j)) {
                        Some(x) => *x,
                        None => {
                            let lb = result_labels(
                                &s.labels,
                                None,
                                card_one_to_one,
                                on,
                                &match_names,
                                &[],
                            );
                            let idx = c.series_for(lb, true);
                            fill_out.insert((false, j), idx);
                            idx
                        }
                    };
                    self.put_binop(&mut c, idx, i, op, lv, rv, return_bool)?;
                }
            }
        }
        Ok(Val::Vector(c.finish()))
    }

    #[allow(clippy::too_many_arguments)]
    fn put_binop(
        &mut self,
        c: &mut Collector,
        idx: usize,
        i: usize,
        op: TokenId,
        lv: f64,
        rv: f64,
        return_bool: bool,
    ) -> Result<()> {
        let (v, keep) =
            arith(op, lv, rv).ok_or_else(|| QueryError::BadData("invalid operator".into()))?;
        let v = if return_bool {
            if keep {
                1.0
            } else {
                0.0
            }
        } else if keep {
            v
        } else {
            return Ok(());
        };
        if c.series[idx].vals[i].is_some() {
            return Err(exec(
                "multiple matches for labels: grouping labels must ensure unique matches",
            ));
        }
        c.put(idx, i, v)
    }
}

/// The labels of a binary operation's result, from the side whose labels it keeps.
fn result_labels(
    base: &Labels,
    other: Option<&Labels>,
    one_to_one: bool,
    on: bool,
    match_names: &[String],
    include: &[String],
) -> Labels {
    let mut lb = if one_to_one {
        if on {
            labels_only(base, match_names)
        } else {
            labels_without(base, match_names, false)
        }
    } else {
        base.clone()
    };
    for name in include {
        let v = other.and_then(|o| o.get(name)).unwrap_or("").to_string();
        set_label(&mut lb, name, &v);
    }
    lb
}

/// The matching signature of a label set under `on`/`ignoring`.
fn signature_fn(m: &BinModifier) -> impl Fn(&Labels) -> Labels + '_ {
    move |l: &Labels| match &m.matching {
        Some(LabelModifier::Include(names)) => labels_only(l, &names.labels),
        Some(LabelModifier::Exclude(names)) => labels_without(l, &names.labels, true),
        None => labels_without(l, &[], true),
    }
}

// -------------------------------------------------------------------- functions

impl<'a> Ev<'a> {
    fn call(&mut self, c: &Call, g: Grid) -> Result<Val> {
        let name = c.func.name;
        let args = &c.args.args;
        let n = g.len();
        if let Some(f) = RangeFn::from_name(name) {
            return self.range_function(f, name, args, g);
        }
        if let Some((modifier, range)) = Modifier::of_function(name) {
            return self.extended(c, modifier, range, g);
        }
        if let Some(f) = math_fn(name) {
            let mut vs = self.vector_arg(arg(args, 0)?, g)?;
            for s in &mut vs {
                for v in s.vals.iter_mut().flatten() {
                    *v = f(*v);
                }
                s.drop_name = true;
            }
            return Ok(Val::Vector(vs));
        }
        if let Some(f) = date_fn(name) {
            let mut vs = match args.first() {
                Some(a) => self.vector_arg(a, g)?,
                None => vec![Series {
                    labels: Labels::default(),
                    vals: (0..n).map(|i| Some(g.ts(i) as f64 / 1000.0)).collect(),
                    drop_name: false,
                }],
            };
            for s in &mut vs {
                for v in s.vals.iter_mut().flatten() {
                    *v = f(*v);
                }
                s.drop_name = true;
            }
            return Ok(Val::Vector(vs));
        }
        match name {
            "time" => Ok(Val::Scalar((0..n).map(|i| g.ts(i) as f64 / 1000.0).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
            "start" => Ok(Val::Scalar(vec![self.p.start as f64 / 1000.0; n])),
            "end" => Ok(Val::Scalar(vec![self.p.end as f64 / 1000.0; n])),
            "range" => Ok(Val::Scalar(vec![(self.p.end - self.p.start) as f64 / 1000.0; n])),
            "step" => Ok(Val::Scalar(vec![self.p.step as f64 / 1000.0; n])),
            "min_of" | "max_of" => {
                let a = self.scalar_arg(arg(args, 0)?, g)?;
                let b = self.scalar_arg(arg(args, 1)?, g)?;
                let min = name == "min_of";
                Ok(Val::Scalar(
                    a.iter()
                        .zip(b.iter())
                        .map(|(x, y)| {
                            if x.is_nan() || y.is_nan() {
                                f64::NAN
                            } else if (x < y) == min {
                                *x
                            } else {
                                *y
                            }
                        })
                        .collect(),
                ))
            }
            "vector" => {
                let v = self.scalar_arg(arg(args, 0)?, g)?;
                Ok(Val::Vector(vec![Series {
                    labels: Labels::default(),
                    vals: v.into_iter().map(Some).collect(),
                    drop_name: false,
                }]))
            }
            "scalar" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let mut out = vec![f64::NAN; n];
                for (i, o) in out.iter_mut().enumerate() {
                    let mut it = vs.iter().filter_map(|s| s.vals[i]);
                    if let (Some(v), None) = (it.next(), it.next()) {
                        *o = v;
                    }
                }
                Ok(Val::Scalar(out))
            }
            "timestamp" => {
                let a = arg(args, 0)?;
                let mut vs = match unwrap_parens(a) {
                    Expr::VectorSelector(vs) => self.select_instant(vs, g, true)?,
                    _ => {
                        let mut vs = self.vector_arg(a, g)?;
                        for s in &mut vs {
                            for (i, v) in s.vals.iter_mut().enumerate() {
                                if v.is_some() {
                                    *v = Some(g.ts(i) as f64 / 1000.0);
                                }
                            }
                        }
                        vs
                    }
                };
                for s in &mut vs {
                    s.drop_name = true;
                }
                Ok(Val::Vector(vs))
            }
            "round" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let to = match args.get(1) {
                    Some(a) => self.scalar_arg(a, g)?,
                    None => vec![1.0; n],
                };
                for s in &mut vs {
                    for (i, v) in s.vals.iter_mut().enumerate() {
                        if let Some(x) = v {
                            *x = round(*x, to[i]);
                        }
                    }
                    s.drop_name = true;
                }
                Ok(Val::Vector(vs))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let (lo, hi) = match name {
                    "clamp" => {
                        (self.scalar_arg(arg(args, 1)?, g)?, self.scalar_arg(arg(args, 2)?, g)?)
                    }
                    "clamp_min" => (self.scalar_arg(arg(args, 1)?, g)?, vec![f64::NAN; n]),
                    _ => (vec![f64::NAN; n], self.scalar_arg(arg(args, 1)?, g)?),
                };
                for s in &mut vs {
                    for (i, v) in s.vals.iter_mut().enumerate() {
                        let Some(x) = *v else { continue };
                        let (l, h) = (lo[i], hi[i]);
                        if name == "clamp" && h < l {
                            *v = None;
                            continue;
                        }
                        let mut y = x;
                        if name != "clamp_max" {
                            y = if l.is_nan() { f64::NAN } else { y.max(l) };
                            if x.is_nan() {
                                y = f64::NAN;
                            }
                        }
                        if name != "clamp_min" {
                            y = if h.is_nan() {
                                f64::NAN
                            } else if y.is_nan() {
                                y
                            } else {
                                y.min(h)
                            };
                        }
                        *v = Some(y);
                    }
                    s.drop_name = true;
                }
                vs.retain(|s| s.vals.iter().any(Option::is_some));
                Ok(Val::Vector(vs))
            }
            "absent" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let labels = absent_labels(arg(args, 0)?);
                let vals: Vec<Option<f64>> = (0..n)
                    .map(|i| if vs.iter().any(|s| s.vals[i].is_some()) { None } else { Some(1.0) })
                    .collect();
                Ok(Val::Vector(vec![Series { labels, vals, drop_name: false }]))
            }
            "absent_over_time" => {
                let rv = self.matrix_arg(arg(args, 0)?, g)?;
                let labels = absent_labels(arg(args, 0)?);
                let vals = (0..n)
                    .map(|i| {
                        let (lo, hi) = rv.window(g.ts(i));
                        let any = rv.series.iter().any(|s| {
                            let a = s.samples.partition_point(|x| x.t <= lo);
                            let b = s.samples.partition_point(|x| x.t <= hi);
                            a < b
                        });
                        if any {
                            None
                        } else {
                            Some(1.0)
                        }
                    })
                    .collect();
                Ok(Val::Vector(vec![Series { labels, vals, drop_name: false }]))
            }
            "label_replace" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let dst = self.string_arg(arg(args, 1)?, g)?;
                let repl = self.string_arg(arg(args, 2)?, g)?;
                let src = self.string_arg(arg(args, 3)?, g)?;
                let re_s = self.string_arg(arg(args, 4)?, g)?;
                let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
                    exec(format!("invalid regular expression in label_replace(): {re_s}: {e}"))
                })?;
                if !valid_label_name(&dst) {
                    return Err(exec(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    )));
                }
                let mut c = Collector::new(n);
                for s in vs {
                    let mut lb = s.labels;
                    let mut drop_name = s.drop_name;
                    let sv = lb.get(&src).unwrap_or("").to_string();
                    if let Some(caps) = re.captures(&sv) {
                        let mut res = String::new();
                        caps.expand(&repl, &mut res);
                        set_label(&mut lb, &dst, &res);
                        if dst == METRIC_NAME {
                            drop_name = false;
                        }
                    }
                    let idx = c.series_for(lb, drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
            "label_join" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                let dst = self.string_arg(arg(args, 1)?, g)?;
                let sep = self.string_arg(arg(args, 2)?, g)?;
                let mut srcs = Vec::new();
                for a in args.iter().skip(3) {
                    srcs.push(self.string_arg(a, g)?);
                }
                if !valid_label_name(&dst) {
                    return Err(exec(format!(
                        "invalid destination label name in label_join(): {dst}"
                    )));
                }
                let mut c = Collector::new(n);
                for s in vs {
                    let mut lb = s.labels;
                    let joined: Vec<&str> = srcs.iter().map(|x| lb.get(x).unwrap_or("")).collect();
                    let joined = joined.join(&sep);
                    set_label(&mut lb, &dst, &joined);
                    let drop_name = s.drop_name && dst != METRIC_NAME;
                    let idx = c.series_for(lb, drop_name);
                    for (i, v) in s.vals.iter().enumerate() {
                        if let Some(v) = v {
                            c.put(idx, i, *v)?;
                        }
                    }
                }
                Ok(Val::Vector(c.finish()))
            }
            "sort" | "sort_desc" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                self.warn_sort_in_range();
                if n == 1 {
                    let desc = name == "sort_desc";
                    vs.sort_by(|a, b| {
                        let (x, y) = (a.vals[0].unwrap_or(f64::NAN), b.vals[0].unwrap_or(f64::NAN));
                        // NaN sorts last in both directions.
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            _ => {
                                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                                if desc {
                                    o.reverse()
                                } else {
                                    o
                                }
                            }
                        }
                    });
                }
                Ok(Val::Vector(vs))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut vs = self.vector_arg(arg(args, 0)?, g)?;
                let mut names = Vec::new();
                for a in args.iter().skip(1) {
                    names.push(self.string_arg(a, g)?);
                }
                let desc = name == "sort_by_label_desc";
                self.warn_sort_in_range();
                vs.sort_by(|a, b| {
                    let mut o = std::cmp::Ordering::Equal;
                    for ln in &names {
                        o = natural_cmp(
                            a.labels.get(ln).unwrap_or(""),
                            b.labels.get(ln).unwrap_or(""),
                        );
                        if o != std::cmp::Ordering::Equal {
                            break;
                        }
                    }
                    if o == std::cmp::Ordering::Equal {
                        o = a.labels.cmp(&b.labels);
                    }
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                Ok(Val::Vector(vs))
            }
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                self.classic_histogram(name, args, g)
            }
            "info" => self.info(c, g),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                // Native histograms are not stored yet, so no series has one: the result is empty.
                for a in args {
                    let _ = self.eval(a, g)?;
                }
                Ok(Val::Vector(Vec::new()))
            }
            other => Err(exec(format!("function {other:?} is not supported by Strata yet"))),
        }
    }

    fn warn_sort_in_range(&mut self) {
        if !self.instant {
            self.ann.warn(
                "sort is ineffective for range queries since results are always ordered by labels",
            );
        }
    }

    fn range_function(
        &mut self,
        f: RangeFn,
        name: &str,
        args: &[Box<Expr>],
        g: Grid,
    ) -> Result<Val> {
        let n = g.len();
        // The range vector is the last argument for quantile_over_time, the first otherwise.
        let (m_idx, param_idx): (usize, Vec<usize>) = match f {
            RangeFn::QuantileOverTime => (1, vec![0]),
            RangeFn::PredictLinear => (0, vec![1]),
            RangeFn::DoubleExponentialSmoothing => (0, vec![1, 2]),
            _ => (0, vec![]),
        };
        let mut params: Vec<Vec<f64>> = Vec::new();
        for &pi in &param_idx {
            params.push(self.scalar_arg(arg(args, pi)?, g)?);
        }
        let rv = self.matrix_arg(arg(args, m_idx)?, g)?;
        if let Some(msg) = rv.modifier.and_then(|m| m.check_function(name)) {
            return Err(QueryError::BadData(msg));
        }
        // How far past the window an extended selector looks: (before, after).
        let (before, after) = match rv.modifier {
            None => (0, 0),
            Some(Modifier::Anchored) => (self.p.lookback, 0),
            Some(Modifier::Smoothed) => (self.p.lookback, self.p.lookback),
        };
        let keep_name = matches!(f, RangeFn::LastOverTime | RangeFn::FirstOverTime);
        let counter_fn = matches!(f, RangeFn::Rate | RangeFn::Increase | RangeFn::Irate);
        let mut rv = rv;
        let series = std::mem::take(&mut rv.series);
        let mut out = Vec::with_capacity(series.len());
        let mut pbuf: Vec<f64> = Vec::with_capacity(params.len());
        for (si, s) in series.into_iter().enumerate() {
            if si % 256 == 0 {
                self.check_deadline()?;
            }
            let mut vals = vec![None; n];
            let mut any = false;
            // Windows only move forward from step to step, so two cursors find them.
            let (mut a, mut b) = (0usize, 0usize);
            let len = s.samples.len();
            for (i, slot) in vals.iter_mut().enumerate() {
                let t = g.ts(i);
                let (lo, hi) = rv.window(t);
                let (lo_x, hi_x) = (lo.saturating_sub(before), hi.saturating_add(after));
                while a < len && s.samples[a].t <= lo_x {
                    a += 1;
                }
                b = b.max(a);
                while b < len && s.samples[b].t <= hi_x {
                    b += 1;
                }
                if a >= b {
                    continue;
                }
                if let Some(m) = rv.modifier {
                    let smoothed = m == Modifier::Smoothed;
                    if let Some(v) = eval_extended(f, &s.samples[a..b], lo, hi, rv.range, smoothed)
                    {
                        *slot = Some(v);
                        any = true;
                    }
                    continue;
                }
                pbuf.clear();
                pbuf.extend(params.iter().map(|p| p.get(i).copied().unwrap_or(f64::NAN)));
                match f {
                    RangeFn::QuantileOverTime => {
                        let q = pbuf.first().copied().unwrap_or(f64::NAN);
                        if !(0.0..=1.0).contains(&q) {
                            self.ann.warn(format!(
                                "quantile value should be between 0 and 1, got {}",
                                format_float(q)
                            ));
                        }
                    }
                    RangeFn::DoubleExponentialSmoothing => {
                        let sf = pbuf.first().copied().unwrap_or(f64::NAN);
                        let tf = pbuf.get(1).copied().unwrap_or(f64::NAN);
                        if let Some(msg) = smoothing_factor_error(sf, tf) {
                            return Err(exec(msg));
                        }
                    }
                    _ => {}
                }
                if let Some(v) = eval_range(f, &s.samples[a..b], lo, hi, t, &pbuf) {
                    *slot = Some(v);
                    any = true;
                }
            }
            if any {
                if counter_fn {
                    let mn = metric_name(&s.labels);
                    if !mn.is_empty()
                        && !["_total", "_sum", "_count", "_bucket"]
                            .iter()
                            .any(|suf| mn.ends_with(suf))
                    {
                        self.ann.info(format!(
                            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {mn:?}"
                        ));
                    }
                }
                out.push(Series { labels: s.labels, vals, drop_name: s.drop_name || !keep_name });
            }
        }
        self.charge(out.len() * n)?;
        Ok(Val::Vector(out))
    }

    /// `info(v, {sel})`: adds the data labels of the info series (default `target_info`) that
    /// share `v`'s identifying labels (`instance`, `job`), step by step.
    fn info(&mut self, c: &Call, g: Grid) -> Result<Val> {
        let n = g.len();
        let base = self.vector_arg(arg(&c.args.args, 0)?, g)?;
        let (names, data) = info_matchers(c)?;
        let lookback = self.p.lookback;
        // Per info series: the timestamp of the sample in effect at each step.
        let infos: Vec<(&Labels, Vec<Option<i64>>)> = self
            .data
            .get(&(c as *const Call as usize))
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|rs| {
                let ts = (0..n)
                    .map(|i| {
                        let te = g.ts(i);
                        let idx = rs.samples.partition_point(|s| s.t <= te);
                        let s = rs.samples.get(idx.checked_sub(1)?)?;
                        (s.t > te - lookback && !is_stale_nan(s.v)).then_some(s.t)
                    })
                    .collect();
                (&rs.labels, ts)
            })
            .collect();
        // With only negative `__name__` matchers, info series are recognised by the `_info`
        // suffix of their name.
        let positive = names.iter().any(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex));
        let infos: Vec<(&Labels, Vec<Option<i64>>)> = infos
            .into_iter()
            .filter(|(l, _)| positive || metric_name(l).ends_with("_info"))
            .collect();
        let ident = |l: &Labels| {
            (l.get("instance").unwrap_or("").to_string(), l.get("job").unwrap_or("").to_string())
        };
        let data_names: Vec<&str> = data.iter().map(|m| m.name.as_str()).collect();
        let drop_without_info = data.iter().any(|m| !m.matches_empty());
        let mut coll = Collector::new(n);
        for s in base {
            let name = s.labels.get(METRIC_NAME);
            // A base series is an info series itself (and passed through) when it meets every
            // `__name__` matcher and at least one of them is positive.
            let is_info = positive && name.is_some_and(|nm| names.iter().all(|m| m.matches(nm)));
            if is_info {
                let idx = coll.series_for(s.labels.clone(), s.drop_name);
                for (i, v) in s.vals.iter().enumerate() {
                    if let Some(v) = v {
                        coll.put(idx, i, *v)?;
                    }
                }
                continue;
            }
            let id = ident(&s.labels);
            let candidates: Vec<&(&Labels, Vec<Option<i64>>)> =
                infos.iter().filter(|(l, _)| ident(l) == id).collect();
            for (i, v) in s.vals.iter().enumerate() {
                let Some(v) = v else { continue };
                let best = candidates
                    .iter()
                    .filter_map(|(l, ts)| ts[i].map(|t| (t, *l)))
                    .max_by_key(|(t, _)| *t)
                    .map(|(_, l)| l);
                let labels = match best {
                    Some(il) => {
                        let mut lb = s.labels.clone();
                        for x in il.iter() {
                            if x.name == METRIC_NAME || x.name == "instance" || x.name == "job" {
                                continue;
                            }
                            if !data_names.is_empty() && !data_names.contains(&x.name.as_str()) {
                                continue;
                            }
                            if lb.get(&x.name).is_none() {
                                set_label(&mut lb, &x.name, &x.value);
                            }
                        }
                        lb
                    }
                    None if drop_without_info => continue,
                    None => s.labels.clone(),
                };
                let idx = coll.series_for(labels, s.drop_name);
                coll.put(idx, i, *v)?;
            }
        }
        Ok(Val::Vector(coll.finish()))
    }

    /// histogram_quantile, histogram_quantiles and histogram_fraction over classic buckets.
    fn classic_histogram(&mut self, name: &str, args: &[Box<Expr>], g: Grid) -> Result<Val> {
        let n = g.len();
        // (label value for histogram_quantiles, per-step parameters)
        let mut outputs: Vec<(Option<String>, Vec<f64>, Vec<f64>)> = Vec::new();
        let mut out_label = String::new();
        let vs = match name {
            "histogram_quantile" => {
                let q = self.scalar_arg(arg(args, 0)?, g)?;
                outputs.push((None, q, Vec::new()));
                self.vector_arg(arg(args, 1)?, g)?
            }
            "histogram_quantiles" => {
                let vs = self.vector_arg(arg(args, 0)?, g)?;
                out_label = self.string_arg(arg(args, 1)?, g)?;
                if !valid_label_name(&out_label) {
                    return Err(exec(format!("invalid label name {out_label:?}")));
                }
                for a in args.iter().skip(2) {
                    let q = self.scalar_arg(a, g)?;
                    let label = q.first().map(|v| quantile_label(*v)).unwrap_or_default();
                    outputs.push((Some(label), q, Vec::new()));
                }
                vs
            }
            _ => {
                let lo = self.scalar_arg(arg(args, 0)?, g)?;
                let hi = self.scalar_arg(arg(args, 1)?, g)?;
                outputs.push((None, lo, hi));
                self.vector_arg(arg(args, 2)?, g)?
            }
        };
        if name != "histogram_fraction" {
            for (_, q, _) in &outputs {
                for qv in q {
                    if !(0.0..=1.0).contains(qv) {
                        self.ann.warn(format!(
                            "quantile value should be between 0 and 1, got {}",
                            format_float(*qv)
                        ));
                    }
                }
            }
        }
        // Group bucket series by their labels without `le` and the metric name.
        let mut gindex: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        for (i, s) in vs.iter().enumerate() {
            let le = s.labels.get("le").and_then(parse_le);
            let Some(le) = le else {
                self.ann.warn(format!(
                    "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                    s.labels.get("le").unwrap_or(""),
                    metric_name(&s.labels)
                ));
                continue;
            };
            // Grouped per metric; the name goes at the end, so two histograms that differ
            // only by name collide there, as in Prometheus.
            let gl = labels_without(&s.labels, &["le".to_string()], false);
            let gi = *gindex.entry(gl.clone()).or_insert_with(|| {
                groups.push((gl, Vec::new()));
                groups.len() - 1
            });
            groups[gi].1.push((le, i));
        }
        let mut c = Collector::new(n);
        let mut buckets: Vec<Bucket> = Vec::new();
        for (gl, members) in &groups {
            for (label, p1, p2) in &outputs {
                let mut lb = gl.clone();
                if let Some(v) = label {
                    set_label(&mut lb, &out_label, v);
                }
                let mut idx = None;
                for i in 0..n {
                    buckets.clear();
                    buckets.extend(members.iter().filter_map(|(le, m)| {
                        vs[*m].vals[i].map(|c| Bucket { upper: *le, count: c })
                    }));
                    if buckets.is_empty() {
                        continue;
                    }
                    let r = if name == "histogram_fraction" {
                        bucket_fraction(p1[i], p2[i], &mut buckets)
                    } else {
                        bucket_quantile(p1[i], &mut buckets)
                    };
                    if r.forced_monotonicity {
                        self.ann.info(format!(
                            "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {:?}",
                            metric_name(&vs[members[0].1].labels)
                        ));
                    }
                    let id = match idx {
                        Some(x) => x,
                        None => {
                            let x = c.series_for(lb.clone(), true);
                            idx = Some(x);
                            x
                        }
                    };
                    c.put(id, i, r.value)?;
                }
            }
        }
        Ok(Val::Vector(c.finish()))
    }
}

/// The label value histogram_quantiles gives a quantile: `0.5`, and `1.0` for whole numbers.
fn quantile_label(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        format_float(q)
    }
}

fn parse_le(s: &str) -> Option<f64> {
    match s.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse::<f64>().ok(),
    }
}

fn arg(args: &[Box<Expr>], i: usize) -> Result<&Expr> {
    args.get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| QueryError::BadData("missing function argument".into()))
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        other => other,
    }
}

/// The labels `absent()` reports: the equality matchers of a plain selector argument.
fn absent_labels(e: &Expr) -> Labels {
    let vs = match unwrap_parens(e) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(m) => &m.vs,
        _ => return Labels::default(),
    };
    // Prometheus: a label matched once by equality is kept; any other matcher on it, or a
    // second one, removes it. The metric name is never reported.
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.op == PMatchOp::Equal && !seen.contains(&m.name) {
            pairs.push((m.name.clone(), m.value.clone()));
        } else {
            pairs.retain(|(n, _)| *n != m.name);
        }
        seen.push(m.name.clone());
    }
    Labels::from_pairs(pairs)
}

/// Compares strings so that embedded numbers order by value (`a2` < `a10`), as
/// Prometheus's sort_by_label does.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        if ab[i].is_ascii_digit() && bb[j].is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ab[i] != bb[j] {
                return ab[i].cmp(&bb[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}
