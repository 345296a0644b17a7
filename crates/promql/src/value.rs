//! Query results, errors and annotations.

use strata_model::{Labels, Sample};

/// The value a query evaluates to, shaped as the Prometheus HTTP API shapes it.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    /// A scalar at the evaluation time (ms).
    Scalar { t: i64, v: f64 },
    /// A string at the evaluation time (ms).
    String { t: i64, v: String },
    /// An instant vector: one sample per series, at the evaluation time.
    Vector(Vec<VectorSample>),
    /// A range vector or a range query's result: series sorted by labels.
    Matrix(Vec<MatrixSeries>),
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One series of a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixSeries {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Warnings and infos collected while evaluating, full texts with their
/// `PromQL warning: ` / `PromQL info: ` prefixes, deduplicated, in order of appearance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, msg: impl AsRef<str>) {
        let s = format!("PromQL warning: {}", msg.as_ref());
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }

    pub fn info(&mut self, msg: impl AsRef<str>) {
        let s = format!("PromQL info: {}", msg.as_ref());
        if !self.infos.contains(&s) {
            self.infos.push(s);
        }
    }

    pub fn merge(&mut self, other: Annotations) {
        for w in other.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        for i in other.infos {
            if !self.infos.contains(&i) {
                self.infos.push(i);
            }
        }
    }
}

/// Statistics of one query, for the `stats` parameter of the HTTP API.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    /// Samples read from storage into memory.
    pub samples_loaded: u64,
    /// The largest number of samples held at once while evaluating.
    pub peak_samples: u64,
    /// Series returned by storage.
    pub series_loaded: u64,
}

/// What a query returns: its value, annotations and statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub value: QueryValue,
    pub annotations: Annotations,
    pub stats: QueryStats,
}

/// Why a query failed. `error_type` is the Prometheus API's `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or does not type-check (HTTP 400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// The query failed while being evaluated (HTTP 422, `execution`).
    #[error("{0}")]
    Execution(String),
    /// Evaluating would hold more samples in memory than allowed (HTTP 422, `execution`).
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// The query ran longer than the timeout (HTTP 503, `timeout`).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The query was canceled (HTTP 499-ish, `canceled`).
    #[error("query was canceled in {0}")]
    Canceled(&'static str),
    /// Storage failed (HTTP 500/503, `internal`/`unavailable`).
    #[error("{0}")]
    Storage(String),
}

impl QueryError {
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Execution(_) | QueryError::TooManySamples => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Canceled(_) => "canceled",
            QueryError::Storage(_) => "internal",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::BadData(_) => 400,
            QueryError::Execution(_) | QueryError::TooManySamples => 422,
            QueryError::Timeout(_) => 503,
            QueryError::Canceled(_) => 499,
            QueryError::Storage(_) => 500,
        }
    }
}

impl From<strata_model::Error> for QueryError {
    fn from(e: strata_model::Error) -> Self {
        match e {
            strata_model::Error::Invalid(m) => QueryError::BadData(m),
            other => QueryError::Storage(other.to_string()),
        }
    }
}
