//! Strata's PromQL engine.
//!
//! Queries are parsed with `promql-parser`, then evaluated in two phases: every selector's
//! series are fetched from a [`Queryable`](strata_model::Queryable) (asynchronously, only the
//! time range each selector needs), then the expression is evaluated over all steps at once,
//! synchronously and without further I/O. An instant query is a range query with one step.

mod durexpr;
mod engine;
mod eval;
mod extsel;
pub mod functions;
pub mod guard;
mod infosel;
pub mod mem;
pub mod script;
mod value;

pub use engine::{Engine, EngineOpts, QueryOpts};
pub use value::{
    Annotations, MatrixSeries, QueryError, QueryOutput, QueryStats, QueryValue, VectorSample,
};
