//! The ingester: remote-write intake (1.0 and 2.0), validation, routing of series to
//! shards, replication through each shard's Raft group, and the per-shard state (head and
//! metric metadata) that committed entries are applied to. It implements the
//! [`strata_model::PushSink`] and [`strata_model::SeriesReader`] traits the HTTP API calls.
//!
//! ```
//! use strata_ingester::route::{shard_of, tenant_hash};
//! let shard = shard_of(tenant_hash("anonymous"), 42, 16);
//! assert!(shard.0 < 16);
//! ```

mod batch;
pub mod flush;
mod ingester;
pub mod metrics;
pub mod route;
mod shard;
mod validate;
mod wire;

pub use ingester::{Ingester, IngesterConfig};
pub use metrics::IngesterMetrics;
pub use shard::{Control, ShardState};

/// Now, in Unix milliseconds (the receiver's and the flusher's clock; applies never read it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
