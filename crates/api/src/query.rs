//! PromQL over HTTP: `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/parse_query` and `/api/v1/query_exemplars`, with Prometheus's parameters, checks
//! (in its order, with its messages) and JSON.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use promql_parser::parser::Expr;
use serde_json::Value;
use strata_model::TenantId;
use strata_promql::{Engine, QueryError, QueryOpts, QueryOutput, QueryValue};

use crate::params::{parse_duration, Params, MAX_TIME, MIN_TIME};
use crate::promjson::{query_body, Timings};
use crate::push::tenant;
use crate::response::{json_text, success, ApiError};
use crate::ApiState;

/// Prometheus refuses range queries with more points than this per series.
const MAX_POINTS: i128 = 11_000;
const TRUNCATED: &str = "results truncated due to limit";

type ApiResult<T> = std::result::Result<T, ApiError>;

fn invalid_param(key: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::bad_data(format!("invalid parameter {key:?}: {msg}"))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(MAX_TIME))
        .unwrap_or(0)
}

/// What `/query` and `/query_range` share after their own parameters.
struct Prepared {
    tenant: TenantId,
    limit: usize,
    timeout: Duration,
    opts: QueryOpts,
    expr: Expr,
    stats: bool,
}

/// `timeout` (capped by the server's), `lookback_delta`, `stats` and finally `query`.
/// `step` and `range` (ms) are the query's, for duration expressions such as `[step()*2]`;
/// 0 for instant queries.
fn prepare(
    st: &ApiState,
    p: &Params,
    tenant: TenantId,
    limit: usize,
    step: i64,
    range: i64,
) -> ApiResult<Prepared> {
    let mut timeout = st.query_timeout;
    if let Some(s) = p.get("timeout").filter(|s| !s.is_empty()) {
        let ns = parse_duration(s).map_err(|e| invalid_param("timeout", e))?;
        timeout = timeout.min(Duration::from_nanos(u64::try_from(ns).unwrap_or(0)));
    }
    let mut opts = QueryOpts::default();
    if let Some(s) = p.get("lookback_delta").filter(|s| !s.is_empty()) {
        let ns = parse_duration(s).map_err(|e| {
            ApiError::bad_data(format!("error parsing lookback delta duration: {e}"))
        })?;
        // Zero (or less) means the engine's default, as in Prometheus.
        if ns > 0 {
            opts.lookback_delta_ms = Some((ns / 1_000_000).max(1));
        }
    }
    let stats = p.get("stats").is_some_and(|s| !s.is_empty());
    let expr = Engine::parse_with(p.get("query").unwrap_or(""), step, range)
        .map_err(|e| invalid_param("query", e))?;
    Ok(Prepared { tenant, limit, timeout, opts, expr, stats })
}

/// When a prepared query is evaluated (ms).
enum Eval {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

impl Prepared {
    /// Evaluates on the blocking pool (see [`off_worker`]) and renders the answer.
    async fn evaluate(&self, st: &ApiState, started: Instant, at: Eval) -> ApiResult<Response> {
        let (prepared_at, opts) = (Instant::now(), self.opts());
        let (engine, store, tenant, expr) =
            (st.engine.clone(), Arc::clone(&st.queryable), self.tenant.clone(), self.expr.clone());
        let run = off_worker(async move {
            match at {
                Eval::Instant(t) => engine.instant_expr(&*store, &tenant, &expr, t, &opts).await,
                Eval::Range { start, end, step } => {
                    engine.range_expr(&*store, &tenant, &expr, start, end, step, &opts).await
                }
            }
        });
        self.finish(started, prepared_at, run).await
    }

    /// The engine's options with the deadline set from now.
    fn opts(&self) -> QueryOpts {
        let mut opts = self.opts.clone();
        // No deadline only when the timeout is too long to represent (the timer still runs).
        opts.deadline = Instant::now().checked_add(self.timeout);
        opts
    }

    /// Awaits the engine under a timer as well as the deadline the engine checks itself (the
    /// timer covers waits the engine cannot see, such as a slow store), then renders the answer.
    async fn finish(
        &self,
        started: Instant,
        prepared_at: Instant,
        run: impl std::future::Future<Output = Result<QueryOutput, QueryError>>,
    ) -> ApiResult<Response> {
        let out = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r?,
            Err(_) => return Err(QueryError::Timeout("expression evaluation").into()),
        };
        let QueryOutput { mut value, mut annotations, stats } = out;
        let evaluated_at = Instant::now();
        if self.limit > 0 {
            let truncated = match &mut value {
                QueryValue::Vector(v) if v.len() > self.limit => {
                    v.truncate(self.limit);
                    true
                }
                QueryValue::Matrix(m) if m.len() > self.limit => {
                    m.truncate(self.limit);
                    true
                }
                _ => false,
            };
            if truncated {
                annotations.warnings.push(TRUNCATED.into());
            }
        }
        let timings = Timings {
            prepare: (prepared_at - started).as_secs_f64(),
            eval: (evaluated_at - prepared_at).as_secs_f64(),
            total: started.elapsed().as_secs_f64(),
        };
        let stats = self.stats.then_some((&stats, &timings));
        Ok(json_text(query_body(&value, stats, &annotations)))
    }
}

/// Runs a query on Tokio's blocking pool: evaluation is CPU-bound and synchronous, and must
/// not hold up the workers that accept pushes and other requests. If the caller's timer fires
/// first, the query still stops at its deadline, which the engine checks.
async fn off_worker<F>(fut: F) -> Result<QueryOutput, QueryError>
where
    F: std::future::Future<Output = Result<QueryOutput, QueryError>> + Send + 'static,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(fut))
        .await
        .map_err(|e| QueryError::Execution(format!("query evaluation failed: {e}")))?
}

fn respond(r: ApiResult<Response>) -> Response {
    r.unwrap_or_else(|e| e.into_response())
}

/// `GET|POST /api/v1/query`: `query`, `time` (default now), `timeout`, `limit`,
/// `lookback_delta`, `stats`.
pub(crate) async fn query(State(st): State<ApiState>, headers: HeaderMap, p: Params) -> Response {
    let started = Instant::now();
    respond(
        async {
            let tenant = tenant(&headers)?;
            let limit = p.limit()?;
            let t = p.time("time", now_ms())?;
            let q = prepare(&st, &p, tenant, limit, 0, 0)?;
            q.evaluate(&st, started, Eval::Instant(t)).await
        }
        .await,
    )
}

/// `GET|POST /api/v1/query_range`: `query`, `start`, `end`, `step` (float seconds or a
/// duration), `timeout`, `limit`, `lookback_delta`, `stats`.
pub(crate) async fn query_range(
    State(st): State<ApiState>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let started = Instant::now();
    respond(
        async {
            let tenant = tenant(&headers)?;
            let limit = p.limit()?;
            let start = p.required_time("start")?;
            let end = p.required_time("end")?;
            if end < start {
                return Err(invalid_param("end", "end timestamp must not be before start time"));
            }
            let step_ns = parse_duration(p.get("step").unwrap_or(""))
                .map_err(|e| invalid_param("step", e))?;
            if step_ns <= 0 {
                return Err(invalid_param(
                    "step",
                    "zero or negative query resolution step widths are not accepted. \
                     Try a positive integer",
                ));
            }
            // For safety, limit the number of returned points per series (as Prometheus).
            if (i128::from(end) - i128::from(start)) * 1_000_000 / i128::from(step_ns) > MAX_POINTS
            {
                return Err(ApiError::bad_data(
                    "exceeded maximum resolution of 11,000 points per timeseries. \
                     Try decreasing the query resolution (?step=XX)",
                ));
            }
            // The engine steps in milliseconds; a sub-millisecond step becomes one.
            let step = (step_ns / 1_000_000).max(1);
            let q = prepare(&st, &p, tenant, limit, step, end.saturating_sub(start))?;
            q.evaluate(&st, started, Eval::Range { start, end, step }).await
        }
        .await,
    )
}

fn parsed_query(p: &Params) -> ApiResult<Expr> {
    Engine::parse(p.get("query").unwrap_or("")).map_err(|e| invalid_param("query", e))
}

/// `GET|POST /api/v1/format_query`: the query pretty-printed (promql-parser's `prettify`,
/// which follows Prometheus's `Pretty` rules: one line when it fits in 100 columns).
pub(crate) async fn format_query(p: Params) -> Response {
    respond(parsed_query(&p).map(|e| success(Value::String(e.prettify()), Vec::new())))
}

/// `GET|POST /api/v1/parse_query`: the syntax tree as JSON. promql-parser's serializer writes
/// the shape of Prometheus's `translateAST` (`{"type":"vectorSelector","name":...,
/// "matchers":[{"type":"=","name":...,"value":...}],"offset":0,...}`,
/// `{"type":"binaryExpr","op":...,"lhs":...,"rhs":...}` and so on); the UI's explain view
/// reads it. Small differences from Prometheus in rarely used fields are possible.
pub(crate) async fn parse_query(p: Params) -> Response {
    respond(parsed_query(&p).and_then(|e| {
        serde_json::to_value(&e)
            .map(|v| success(v, Vec::new()))
            .map_err(|err| ApiError::internal(format!("encoding the syntax tree: {err}")))
    }))
}

/// `GET|POST /api/v1/query_exemplars`: parameters are checked as Prometheus checks them;
/// exemplars are not stored yet, so the answer is always an empty list.
pub(crate) async fn query_exemplars(headers: HeaderMap, p: Params) -> Response {
    respond((|| {
        tenant(&headers)?;
        let start = p.time("start", MIN_TIME)?;
        let end = p.time("end", MAX_TIME)?;
        if end < start {
            return Err(ApiError::bad_data("end timestamp must not be before start timestamp"));
        }
        Engine::parse(p.get("query").unwrap_or("")).map_err(ApiError::from)?;
        Ok(success(Value::Array(Vec::new()), Vec::new()))
    })())
}
