//! The engine's entry points: instant and range queries over a `Queryable`.

use std::time::Instant;

use promql_parser::parser::Expr;
use strata_model::{Queryable, TenantId};

use crate::eval;
use crate::value::{QueryError, QueryOutput};

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineOpts {
    /// How far back an instant selector looks for a sample (Prometheus: 5m).
    pub lookback_delta_ms: i64,
    /// The step of a subquery written without one (`x[1h:]`) (Prometheus: 1m).
    pub default_subquery_step_ms: i64,
    /// The most samples a query may hold in memory at once (Prometheus: 50,000,000).
    pub max_samples: usize,
}

impl Default for EngineOpts {
    fn default() -> Self {
        EngineOpts {
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            max_samples: 50_000_000,
        }
    }
}

/// Per-query settings.
#[derive(Debug, Clone, Default)]
pub struct QueryOpts {
    /// Overrides the engine's lookback delta for this query.
    pub lookback_delta_ms: Option<i64>,
    /// The query fails with [`QueryError::Timeout`] when evaluation passes this instant.
    pub deadline: Option<Instant>,
}

/// Evaluates PromQL. Cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOpts,
}

impl Engine {
    pub fn new(opts: EngineOpts) -> Self {
        Engine { opts }
    }

    pub fn opts(&self) -> &EngineOpts {
        &self.opts
    }

    /// Parses a query, mapping parse errors to [`QueryError::BadData`].
    pub fn parse(query: &str) -> Result<Expr, QueryError> {
        crate::guard::parse(query).map_err(QueryError::BadData)
    }

    /// Parses a query whose duration expressions (`x[5m+1m]`, `offset step()`) are folded
    /// with the query's `step` and `range` (ms) first, and whose extended selectors
    /// (`x[5m] anchored`, `x[5m] smoothed`) are rewritten for the parser (see `extsel`).
    /// Both pre-passes run only when the query does not parse as it is.
    pub fn parse_with(query: &str, step: i64, range: i64) -> Result<Expr, QueryError> {
        // The bound on nesting also bounds the rewriters' recursion below.
        crate::guard::check_nesting(query).map_err(QueryError::BadData)?;
        let first = match crate::guard::parse(query) {
            Ok(e) => return Ok(e),
            Err(first) => first,
        };
        // When the text cannot be folded either, the parser's own message is the better one.
        let folded = crate::durexpr::rewrite(query, step, range).unwrap_or(None);
        let text = folded.as_deref().unwrap_or(query);
        let extended = crate::extsel::rewrite(text);
        if extended.is_some() {
            crate::extsel::register().map_err(QueryError::BadData)?;
        }
        let text = match (extended, folded) {
            (Some(q), _) | (None, Some(q)) => q,
            (None, None) => query.to_string(),
        };
        match crate::guard::parse(&text) {
            Ok(e) => Ok(e),
            Err(e) => match crate::infosel::rewrite(&text) {
                Some(q) => crate::guard::parse(&q).map_err(QueryError::BadData),
                None if text == query => Err(QueryError::BadData(first)),
                None => Err(QueryError::BadData(e)),
            },
        }
    }

    /// Evaluates `query` at `t` (ms).
    pub async fn instant(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        query: &str,
        t: i64,
        opts: &QueryOpts,
    ) -> Result<QueryOutput, QueryError> {
        let expr = Self::parse_with(query, 0, 0)?;
        self.instant_expr(store, tenant, &expr, t, opts).await
    }

    /// Evaluates a parsed expression at `t` (ms).
    pub async fn instant_expr(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        t: i64,
        opts: &QueryOpts,
    ) -> Result<QueryOutput, QueryError> {
        let params = self.params(t, t, 0, opts);
        eval::run(store, tenant, expr, &params, true).await
    }

    /// Evaluates `query` at every `step` (ms) from `start` to `end` (ms, inclusive).
    #[allow(clippy::too_many_arguments)]
    pub async fn range(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOpts,
    ) -> Result<QueryOutput, QueryError> {
        let expr = Self::parse_with(query, step, end.saturating_sub(start))?;
        self.range_expr(store, tenant, &expr, start, end, step, opts).await
    }

    /// Evaluates a parsed expression as a range query.
    #[allow(clippy::too_many_arguments)]
    pub async fn range_expr(
        &self,
        store: &dyn Queryable,
        tenant: &TenantId,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOpts,
    ) -> Result<QueryOutput, QueryError> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData("end timestamp must not be before start time".into()));
        }
        let params = self.params(start, end, step, opts);
        eval::run(store, tenant, expr, &params, false).await
    }

    fn params(&self, start: i64, end: i64, step: i64, opts: &QueryOpts) -> eval::Params {
        eval::Params {
            start,
            end,
            step,
            lookback: opts.lookback_delta_ms.unwrap_or(self.opts.lookback_delta_ms),
            subquery_step: self.opts.default_subquery_step_ms,
            max_samples: self.opts.max_samples,
            deadline: opts.deadline,
        }
    }
}
