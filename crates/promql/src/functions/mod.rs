//! The numeric kernels of PromQL functions and aggregations: pure functions over samples
//! and floats, with no knowledge of labels or the AST (the evaluator applies them).

pub mod agg;
pub mod extended;
pub mod range;
pub mod simple;
