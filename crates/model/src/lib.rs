//! Strata's shared vocabulary: labels, samples, matchers, ids, and the traits the
//! layers meet through (a push sink and a series reader), so that `api` never has to
//! know `ingester`.
//!
//! ```
//! use strata_model::{Matcher, MatchOp};
//! let m = Matcher::new(MatchOp::Regex, "job", "node|prom").unwrap();
//! assert!(m.matches("node"));
//! assert!(!m.matches("nodes"));
//! ```

mod duration;
mod error;
mod ids;
mod key;
mod labels;
mod matcher;
mod merge;
mod service;

pub use duration::{parse_duration_ms, rfc3339, DURATION_UNITS};
pub use error::{Error, Result};
pub use ids::{NodeId, SeriesRef, ShardId, TenantId, DEFAULT_TENANT};
pub use key::{check_key, encode_key, key_hash, key_pairs, labels_key, KeyPairs};
pub use labels::{label_hash, Label, Labels, METRIC_NAME};
pub use matcher::{MatchOp, Matcher};
pub use merge::{merge_samples, merge_series};
pub use service::{
    ApplyReport, MetricMetadata, PushOutcome, PushRequest, PushSink, Queryable, RawSeries,
    RejectReason, SeriesReader, WireVersion,
};

/// The bit pattern Prometheus uses for a staleness marker (a special NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is exactly the staleness-marker NaN (not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: milliseconds since the epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}
