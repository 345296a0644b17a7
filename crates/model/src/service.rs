//! The traits the HTTP layer calls, implemented by the ingester (and later the querier).
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{Labels, Matcher, Result, TenantId};

/// Why a sample was refused after it reached the head. Mirrors Prometheus's append errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// Older than the series' newest sample and outside the out-of-order window.
    OutOfOrder,
    /// Same timestamp as an existing sample but a different value.
    DuplicateTimestamp,
    /// Older than the out-of-order window allows.
    TooOld,
    /// Older than the head's lower bound: that time range was already flushed to a block.
    OutOfBounds,
}

impl RejectReason {
    /// The message Prometheus uses for this rejection.
    pub fn message(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out of order sample",
            RejectReason::DuplicateTimestamp => "duplicate sample for timestamp",
            RejectReason::TooOld => "too old sample",
            RejectReason::OutOfBounds => "out of bounds",
        }
    }

    /// A short label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::DuplicateTimestamp => "duplicate_timestamp",
            RejectReason::TooOld => "too_old",
            RejectReason::OutOfBounds => "out_of_bounds",
        }
    }
}

/// What applying one log entry did. Deterministic for a given log, so every replica agrees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// Samples appended to the head.
    pub appended: u64,
    /// Samples whose timestamp and value were already stored (ignored, as Prometheus does).
    pub duplicates_ignored: u64,
    /// Series created by this entry.
    pub series_created: u64,
    /// Rejected sample counts by reason.
    pub rejected: Vec<(RejectReason, u64)>,
    /// The first few rejections, as `reason for series {labels}` strings for the user.
    pub examples: Vec<String>,
}

impl ApplyReport {
    /// Total number of rejected samples.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|(_, n)| n).sum()
    }

    /// Adds one rejection, keeping at most a few examples.
    pub fn reject(&mut self, reason: RejectReason, n: u64, example: impl FnOnce() -> String) {
        if let Some(e) = self.rejected.iter_mut().find(|(r, _)| *r == reason) {
            e.1 += n;
        } else {
            self.rejected.push((reason, n));
        }
        if self.examples.len() < 3 {
            self.examples.push(example());
        }
    }

    /// Folds another report into this one.
    pub fn merge(&mut self, other: ApplyReport) {
        self.appended += other.appended;
        self.duplicates_ignored += other.duplicates_ignored;
        self.series_created += other.series_created;
        for (r, n) in other.rejected {
            if let Some(e) = self.rejected.iter_mut().find(|(x, _)| *x == r) {
                e.1 += n;
            } else {
                self.rejected.push((r, n));
            }
        }
        for e in other.examples {
            if self.examples.len() < 3 {
                self.examples.push(e);
            }
        }
    }
}

/// Which remote-write protocol a body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireVersion {
    V1,
    V2,
}

/// A raw remote-write request as it came off the wire.
#[derive(Debug, Clone)]
pub struct PushRequest {
    pub tenant: TenantId,
    pub version: WireVersion,
    /// Snappy block-compressed protobuf.
    pub body: Bytes,
}

/// What a push did; on success the samples are durable.
#[derive(Debug, Clone, Default)]
pub struct PushOutcome {
    pub samples_written: u64,
    pub histograms_written: u64,
    pub exemplars_written: u64,
    /// Set when part of the request was refused; the rest is stored (HTTP 400).
    pub partial_error: Option<String>,
}

/// Where pushes go. Implemented by the ingester.
#[async_trait]
pub trait PushSink: Send + Sync + 'static {
    /// Decodes, validates, replicates and applies a push. Returns after the accepted
    /// samples are committed to a quorum of durable logs, or an error for the whole request
    /// (in which case `outcome` counts, if any, are in the error message).
    async fn push(
        &self,
        req: PushRequest,
    ) -> std::result::Result<PushOutcome, (crate::Error, PushOutcome)>;
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMetadata {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`, `stateset`, `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Reads series and labels. Time bounds are inclusive milliseconds.
#[async_trait]
pub trait SeriesReader: Send + Sync + 'static {
    /// Series that match any of the matcher sets and have samples in `[mint, maxt]`, sorted.
    async fn series(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>>;
    /// Label names of matching series (all series when `sets` is empty), sorted.
    async fn label_names(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>>;
    /// Values of label `name` among matching series, sorted.
    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>>;
    /// Metric metadata by metric family name, optionally filtered to one metric.
    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<(String, Vec<MetricMetadata>)>>;
}

/// One series and its float samples in a time range, as a query engine reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub labels: Labels,
    /// Ascending by timestamp, no duplicates. Staleness markers included.
    pub samples: Vec<crate::Sample>,
}

/// What the PromQL engine reads: series matching all `matchers` with their samples in
/// `[mint, maxt]` (inclusive milliseconds). Series without samples in the range may be
/// left out. Order is not significant.
#[async_trait]
pub trait Queryable: Send + Sync {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>>;
}
