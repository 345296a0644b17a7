//! Evaluation (being written).

use std::time::Instant;

use promql_parser::parser::Expr;
use strata_model::{Queryable, TenantId};

use crate::value::{QueryError, QueryOutput};

pub(crate) struct Params {
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub lookback: i64,
    pub subquery_step: i64,
    pub max_samples: usize,
    pub deadline: Option<Instant>,
}

pub(crate) async fn run(
    store: &dyn Queryable,
    tenant: &TenantId,
    expr: &Expr,
    p: &Params,
    instant: bool,
) -> Result<QueryOutput, QueryError> {
    let _ = (store, tenant, expr, p, instant);
    Err(QueryError::Execution("engine under construction".into()))
}
