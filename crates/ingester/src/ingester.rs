//! The ingester: owns a node's shard groups and their state, takes pushes and answers
//! series and label reads from the heads.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;
use strata_head::HeadConfig;
use strata_model::{
    ApplyReport, Error, Labels, Matcher, MetricMetadata, PushOutcome, PushRequest, PushSink,
    Queryable, RawSeries, Result, SeriesReader, ShardId, TenantId,
};
use strata_raft::Group;
use tracing::{debug, warn};

use crate::metrics::IngesterMetrics;
use crate::route::{decompress, route, DecodeLimits};
use crate::shard::ShardState;

/// Settings of the ingester (validated by the server's config layer).
#[derive(Debug, Clone)]
pub struct IngesterConfig {
    /// Number of shards; fixed when the data directory is created.
    pub shards: u32,
    pub head: HeadConfig,
    pub limits: DecodeLimits,
}

/// A node's shards: their replicated state and Raft groups.
pub struct Ingester {
    config: IngesterConfig,
    states: Vec<Arc<ShardState>>,
    groups: Vec<Group>,
    metrics: IngesterMetrics,
}

impl Ingester {
    /// Wraps started groups; `states[i]` must be the applier of `groups[i]`.
    pub fn new(
        config: IngesterConfig,
        states: Vec<Arc<ShardState>>,
        groups: Vec<Group>,
        metrics: IngesterMetrics,
    ) -> Self {
        Ingester { config, states, groups, metrics }
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The shards' replicated state, indexed like [`Ingester::groups`].
    pub fn states(&self) -> &[Arc<ShardState>] {
        &self.states
    }

    /// Puts the configured out-of-order window into every shard's log, at each start: entries
    /// after it are applied (and replayed after a restart with another setting) with it.
    pub async fn pin_ooo_window(&self, ms: i64) -> std::result::Result<(), strata_raft::Error> {
        for group in &self.groups {
            group.propose(crate::Control::OooWindow { ms }.encode()).await?;
        }
        Ok(())
    }

    /// Updates the head gauges; called before `/metrics` is rendered.
    pub fn refresh_gauges(&self) {
        let (mut series, mut samples, mut bytes) = (0u64, 0u64, 0u64);
        for s in &self.states {
            let st = s.head().stats();
            series += st.series as u64;
            samples += st.samples;
            bytes += st.bytes as u64;
        }
        self.metrics.head_series.set(series as i64);
        self.metrics.head_samples.set(samples as i64);
        self.metrics.head_bytes.set(bytes as i64);
    }

    async fn propose_all(&self, batches: Vec<(ShardId, Bytes)>) -> Result<ApplyReport> {
        let futs = batches.into_iter().map(|(shard, payload)| async move {
            let group = self
                .groups
                .get(shard.0 as usize)
                .ok_or_else(|| Error::Internal(format!("no group for shard {shard}")))?;
            group.propose(payload).await.map_err(|e| {
                warn!(error = %e, shard = %shard, "proposal failed");
                Error::Unavailable(format!("shard {shard}: {e}"))
            })
        });
        let mut total = ApplyReport::default();
        let mut first_err = None;
        for r in join_all(futs).await {
            match r {
                Ok(rep) => total.merge(rep),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Runs `f` on every shard's head for every matcher set (once with no matchers when
    /// `sets` is empty) and returns the sorted union of what it yields.
    fn union<T: Ord>(
        &self,
        sets: &[Vec<Matcher>],
        f: impl Fn(&strata_head::Head, &[Matcher]) -> Vec<T>,
    ) -> Vec<T> {
        let mut out = BTreeSet::new();
        for st in &self.states {
            let head = st.head();
            if sets.is_empty() {
                out.extend(f(&head, &[]));
            }
            for set in sets {
                out.extend(f(&head, set));
            }
        }
        out.into_iter().collect()
    }
}

#[async_trait]
impl PushSink for Ingester {
    async fn push(
        &self,
        req: PushRequest,
    ) -> std::result::Result<PushOutcome, (Error, PushOutcome)> {
        let started = Instant::now();
        let tenant = req.tenant.as_str();
        let mut outcome = PushOutcome::default();
        let routed = decompress(&req.body, &self.config.limits).and_then(|body| {
            route(req.version, tenant, body, self.config.shards, &self.config.limits)
        });
        let routed = match routed {
            Ok(r) => r,
            Err(e) => {
                self.metrics.request("bad_request");
                return Err((e, outcome));
            }
        };
        let m = &self.metrics;
        m.samples_received.inc_by(
            routed.samples
                + routed.invalid_samples
                + routed.future_samples
                + routed.ancient_samples,
        );
        m.rejected("invalid_series", routed.invalid_samples);
        m.rejected("too_far_in_future", routed.future_samples);
        m.rejected("too_far_in_past", routed.ancient_samples);
        m.rejected("native_histogram_unsupported", routed.histograms_dropped);
        m.rejected("exemplar_unsupported", routed.exemplars_dropped);
        if routed.histograms_dropped + routed.exemplars_dropped > 0 {
            debug!(
                tenant,
                histograms = routed.histograms_dropped,
                exemplars = routed.exemplars_dropped,
                "native histograms and exemplars are not stored yet; dropped"
            );
        }
        let report = match self.propose_all(routed.batches).await {
            Ok(r) => r,
            Err(e) => {
                m.request("unavailable");
                return Err((e, outcome));
            }
        };
        m.commit_seconds.observe(started.elapsed().as_secs_f64());
        m.samples_appended.inc_by(report.appended);
        m.series_created.inc_by(report.series_created);
        for (reason, n) in &report.rejected {
            m.rejected(reason.as_str(), *n);
        }
        outcome.samples_written = report.appended + report.duplicates_ignored;
        let mut problems: Vec<String> = routed.errors;
        if report.rejected_total() > 0 {
            let counts: Vec<String> =
                report.rejected.iter().map(|(r, n)| format!("{n} {}", r.message())).collect();
            problems.push(format!("rejected samples: {}", counts.join(", ")));
        }
        // Examples also name what no counter covers (a series the head could not create):
        // never answered as if all was stored.
        problems.extend(report.examples);
        if problems.is_empty() {
            m.request("ok");
            Ok(outcome)
        } else {
            m.request("partial");
            if routed.invalid_series > 0 {
                problems.insert(0, format!("{} series refused", routed.invalid_series));
            }
            outcome.partial_error = Some(problems.join("; "));
            Ok(outcome)
        }
    }
}

#[async_trait]
impl SeriesReader for Ingester {
    async fn series(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>> {
        let t = tenant.as_str();
        Ok(self.union(sets, |head, set| {
            head.select(t, set, mint, maxt)
                .into_iter()
                .filter_map(|r| head.series_labels(t, r))
                .collect()
        }))
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        Ok(self.union(sets, |head, set| head.label_names(tenant.as_str(), set, mint, maxt)))
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        Ok(self.union(sets, |head, set| head.label_values(tenant.as_str(), name, set, mint, maxt)))
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<(String, Vec<MetricMetadata>)>> {
        let mut out: std::collections::BTreeMap<String, Vec<MetricMetadata>> = Default::default();
        for st in &self.states {
            let md = st.metadata();
            let Some(families) = md.get(tenant.as_str()) else { continue };
            for (name, list) in families {
                if metric.is_some_and(|m| m != name) {
                    continue;
                }
                let e = out.entry(name.clone()).or_default();
                for m in list {
                    if !e.contains(m) {
                        e.push(m.clone());
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// What the PromQL engine reads: the heads' series and samples. A series lives in one shard
/// (routing hashes tenant and series key) as long as the shard count and the routing hash stay
/// the same; after a change of either, samples of a series from before it may still be in
/// another shard's head, so the shards' series are merged as blocks' are.
#[async_trait]
impl Queryable for Ingester {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        let t = tenant.as_str();
        let mut parts = Vec::with_capacity(self.states.len());
        for st in &self.states {
            let head = st.head();
            let mut part = Vec::new();
            for r in head.select(t, matchers, mint, maxt) {
                let Some(labels) = head.series_labels(t, r) else { continue };
                let samples = head.samples(t, r, mint, maxt);
                if !samples.is_empty() {
                    part.push(RawSeries { labels, samples });
                }
            }
            parts.push(part);
        }
        let mut out = strata_model::merge_series(parts);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

#[cfg(test)]
#[path = "ingester_tests.rs"]
mod tests;
