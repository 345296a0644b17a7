//! Flushing closed ranges of the heads into blocks in the object store.
//!
//! For each shard it leads, the flusher waits until the head's oldest unflushed range of
//! `block_range` is closed (the head holds samples half a range past its end), then:
//!
//! 1. proposes `Seal{before: end}` through the shard's log: from its apply on, every replica
//!    refuses samples before `end`, so the range cannot change any more;
//! 2. cuts each tenant's samples in `[flushed, end)` from the head, a row group at a time, into a
//!    block whose id is derived from (tenant, shard, range), and uploads it, retrying with
//!    backoff until the store confirms;
//! 3. tells the block catalog (queries see the block from now on) and proposes
//!    `Flushed{before: end}`: on apply every replica drops that range from its head;
//! 4. asks for a Raft snapshot, so the log up to there can be purged.
//!
//! A crash before step 1 changes nothing. A crash between 1 and 3 leaves the range sealed but
//! in the head (rebuilt from the log); the next leader repeats 2 and 3, overwriting the same
//! block ids. A crash after 3 finds the range flushed. Readers merge head and blocks by
//! timestamp, so the overlap while both hold a range never shows twice.
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use strata_block::{
    label_names, series_order, BlockBuilder, BlockDesc, BlockId, BlockMeta, BlockOptions, Catalog,
    Compaction,
};
use strata_model::{Labels, SeriesRef};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::shard::{Control, ShardState};
use crate::Ingester;

/// How and how often heads are flushed.
#[derive(Debug, Clone)]
pub struct FlushConfig {
    /// Length of a level-1 block, ms.
    pub block_range_ms: i64,
    pub block: BlockOptions,
    /// How often shards are checked.
    pub check_interval: Duration,
    /// Identifies this data directory's life: part of every block id it flushes, so a node
    /// that lost its data directory never overwrites blocks of its previous life, while a
    /// flush repeated after a crash overwrites its own.
    pub incarnation: u64,
}

impl FlushConfig {
    pub fn new(block_range_ms: i64) -> Self {
        let check = Duration::from_millis((block_range_ms / 4).clamp(1000, 60_000) as u64);
        FlushConfig {
            block_range_ms,
            block: BlockOptions::default(),
            check_interval: check,
            incarnation: 0,
        }
    }
}

/// Flush counters for `/metrics`.
#[derive(Clone, Debug)]
pub struct FlushMetrics {
    blocks: Counter,
    failures: Counter,
    seconds: Histogram,
}

impl FlushMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = FlushMetrics {
            blocks: Counter::default(),
            failures: Counter::default(),
            seconds: Histogram::new([0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0]),
        };
        registry.register("strata_flush_blocks", "Blocks flushed from heads", m.blocks.clone());
        registry.register(
            "strata_flush_failures",
            "Flush attempts that failed (retried)",
            m.failures.clone(),
        );
        registry.register(
            "strata_flush_duration_seconds",
            "Time to cut, upload and commit one shard's range",
            m.seconds.clone(),
        );
        m
    }
}

/// Flushes a node's shards.
pub struct Flusher {
    ingester: Arc<Ingester>,
    store: Arc<dyn ObjectStore>,
    catalog: Arc<Catalog>,
    cfg: FlushConfig,
    metrics: FlushMetrics,
}

impl Flusher {
    pub fn new(
        ingester: Arc<Ingester>,
        store: Arc<dyn ObjectStore>,
        catalog: Arc<Catalog>,
        cfg: FlushConfig,
        metrics: FlushMetrics,
    ) -> Self {
        Flusher { ingester, store, catalog, cfg, metrics }
    }

    /// Runs until `stop` turns true.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(self.cfg.check_interval) => {}
                    _ = stop.changed() => return,
                }
                if *stop.borrow() {
                    return;
                }
                if let Err(e) = self.flush_once(&stop).await {
                    self.metrics.failures.inc();
                    warn!(error = %e, "flush failed; retrying later");
                }
            }
        })
    }

    /// Flushes every closed range of the shards this node leads; returns the blocks written.
    pub async fn flush_once(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<usize> {
        let mut written = 0;
        for shard in 0..self.ingester.states().len() {
            // A head that fell behind (a backfill, a long outage) has several closed ranges.
            while let Some(n) = self.flush_range(shard, stop).await? {
                written += n;
                if *stop.borrow() {
                    return Ok(written);
                }
            }
        }
        Ok(written)
    }

    /// Flushes the oldest closed range of one shard, if it leads it and there is one; returns
    /// the blocks written.
    async fn flush_range(
        &self,
        shard: usize,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<Option<usize>> {
        let (Some(st), Some(group)) =
            (self.ingester.states().get(shard), self.ingester.groups().get(shard))
        else {
            return Ok(None);
        };
        if !group.metrics().is_leader {
            return Ok(None);
        }
        let range = self.cfg.block_range_ms.max(1);
        let (sealed, flushed) = (st.sealed_before(), st.flushed_before());
        let end = if sealed > flushed {
            sealed
        } else {
            let Some((min, max)) = head_bounds(st, flushed) else { return Ok(None) };
            let end = min.div_euclid(range).saturating_mul(range).saturating_add(range);
            // A range closes once samples `grace` past its end arrived, and not before
            // that time has come: one sample stamped in the future (a wrong clock) must not
            // close the ranges up to it, which would refuse every current sample as out of
            // bounds. Such samples wait in the head until their time.
            let ooo_window = st.head().config().ooo_window_ms;
            if !range_closed(end, range, ooo_window, max, crate::now_ms()) {
                return Ok(None);
            }
            group.propose(Control::Seal { before: end }.encode()).await?;
            failpoint("flush-after-seal");
            end
        };
        let started = std::time::Instant::now();
        let metas = self.cut(shard as u32, st, flushed, end, stop).await?;
        failpoint("flush-after-upload");
        let ids: Vec<String> = metas.iter().map(|m| m.ulid.to_string()).collect();
        for m in metas {
            self.catalog.add(m).await?;
        }
        group.propose(Control::Flushed { before: end, blocks: ids.clone() }.encode()).await?;
        failpoint("flush-after-commit");
        if let Err(e) = group.trigger_snapshot().await {
            warn!(shard, error = %e, "snapshot after flush failed");
        }
        self.metrics.seconds.observe(started.elapsed().as_secs_f64());
        self.metrics.blocks.inc_by(ids.len() as u64);
        info!(shard, before = end, blocks = ?ids, "flushed");
        Ok(Some(ids.len()))
    }

    /// Builds and uploads one block per tenant with samples in `[from, end)`.
    async fn cut(
        &self,
        shard: u32,
        st: &Arc<ShardState>,
        from: i64,
        end: i64,
        stop: &watch::Receiver<bool>,
    ) -> anyhow::Result<Vec<BlockMeta>> {
        let tenants: Vec<String> = st.head().tenants().map(str::to_string).collect();
        let mut metas = Vec::new();
        for tenant in tenants {
            let (st2, opts, range) =
                (Arc::clone(st), self.cfg.block.clone(), self.cfg.block_range_ms.max(1));
            let t2 = tenant.clone();
            let key = Cut { shard, from, end, range, incarnation: self.cfg.incarnation };
            let built =
                tokio::task::spawn_blocking(move || cut_tenant(&st2, &t2, key, &opts)).await??;
            let Some(built) = built else { continue };
            let mut backoff = Duration::from_millis(500);
            loop {
                match strata_block::upload(&self.store, &built).await {
                    Ok(()) => break,
                    Err(e) => {
                        self.metrics.failures.inc();
                        warn!(%tenant, shard, error = %e, retry_in = ?backoff, "block upload failed");
                        if *stop.borrow() {
                            anyhow::bail!("stopping with an unfinished flush: {e}");
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            metas.push(built.meta);
        }
        Ok(metas)
    }
}

/// For crash tests: with `STRATA_FAILPOINT=<name>` in the environment, the process aborts at
/// that point of a flush, as abruptly as `kill -9`.
/// Whether the range ending at `end` can be cut, given the shard's newest sample `max` and the
/// clock `now`: once samples half a range past its end arrived, or the out-of-order window
/// past it when that is longer (so the samples the window lets in still find their range in
/// the head: a sealed range refuses samples as out of bounds), and not before that time has
/// come (one sample stamped in the future must not close the ranges up to it). The window is
/// measured against the shard's newest sample, over all its tenants; a tenant lagging behind
/// the others gets less of it.
fn range_closed(end: i64, range_ms: i64, ooo_window_ms: i64, max: i64, now: i64) -> bool {
    let grace = (range_ms / 2).max(ooo_window_ms);
    max.min(now) >= end.saturating_add(grace)
}

fn failpoint(name: &str) {
    if std::env::var("STRATA_FAILPOINT").is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "aborting at failpoint");
        std::process::abort();
    }
}

/// The oldest sample time at or after `flushed` and the newest, over all tenants.
fn head_bounds(st: &ShardState, flushed: i64) -> Option<(i64, i64)> {
    let head = st.head();
    let mut out: Option<(i64, i64)> = None;
    for t in head.tenants() {
        let Some((min, max)) = head.min_max_time(t) else { continue };
        if max < flushed {
            continue;
        }
        let min = min.max(flushed);
        out = Some(match out {
            Some((a, b)) => (a.min(min), b.max(max)),
            None => (min, max),
        });
    }
    out
}

/// What one cut covers.
#[derive(Debug, Clone, Copy)]
struct Cut {
    shard: u32,
    from: i64,
    end: i64,
    range: i64,
    incarnation: u64,
}

/// Encodes one tenant's samples in `[from, end)` into a block, reading the head one row group
/// at a time so appends wait at most for one row group's copy.
fn cut_tenant(
    st: &ShardState,
    tenant: &str,
    cut: Cut,
    opts: &BlockOptions,
) -> anyhow::Result<Option<strata_block::BuiltBlock>> {
    let Cut { shard, from, end, range, incarnation } = cut;
    let (lo, hi) = (from, end - 1);
    // A `Flushed` applied during the cut (an earlier proposal for this range that timed out
    // but still committed) truncates the head under it; what is left would make a block that
    // lacks samples and overwrites the complete one under the same id. Checked under each
    // head lock taken, since `Flushed` moves `flushed_before` under the head's write lock.
    let truncated = |st: &ShardState| st.flushed_before() > from;
    let mut rows: Vec<(Labels, SeriesRef)> = {
        let head = st.head();
        if truncated(st) {
            anyhow::bail!("the range of {tenant} before {end} was flushed meanwhile");
        }
        head.select(tenant, &[], lo, hi)
            .into_iter()
            .filter_map(|r| Some((head.series_labels(tenant, r)?, r)))
            .collect()
    };
    if rows.is_empty() {
        return Ok(None);
    }
    rows.sort_by(|a, b| series_order(&a.0, &b.0));
    // The tenant's oldest sample bounds the rows' (a chunk older than `from` is cut off).
    let oldest = st.head().min_max_time(tenant).map_or(lo, |(min, _)| min.max(lo));
    let min_time = oldest.div_euclid(range) * range;
    let key = format!("flush/{incarnation}/{tenant}/{shard}/{min_time}/{end}");
    let desc = BlockDesc {
        id: BlockId::derived(min_time, key.as_bytes()),
        tenant: tenant.to_string(),
        min_time,
        max_time: end,
        compaction: Compaction { level: 1, sources: Vec::new() },
        shard: Some(shard),
    };
    let names = label_names(rows.iter().map(|(l, _)| l));
    let mut b = BlockBuilder::new(desc, names, opts)?;
    for group in rows.chunks(b.row_group_rows()) {
        let started = std::time::Instant::now();
        let data: Vec<Vec<strata_model::Sample>> = {
            let head = st.head();
            if truncated(st) {
                anyhow::bail!("the range of {tenant} before {end} was flushed meanwhile");
            }
            let mut data = Vec::with_capacity(group.len());
            for (labels, r) in group {
                // Series ids only change when a flush is applied (ruled out just above).
                if !head.series_has_labels(tenant, *r, labels) {
                    anyhow::bail!("the head changed under the flush of {tenant}");
                }
                data.push(head.samples(tenant, *r, lo, hi));
            }
            data
        };
        // Encoded with the head let go.
        b.add_row_group(group.iter().map(|(l, _)| l).zip(data.iter().map(Vec::as_slice)))?;
        // Ingestion comes first: a flush takes at most 40% of one core, resting one and a
        // half times as long as it worked (on two cores, a fifth of the machine). It has a
        // whole block range to finish. This runs on a blocking thread (`spawn_blocking`),
        // never on a tokio worker.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(started.elapsed().mul_f64(1.5).min(Duration::from_millis(1500)));
    }
    if b.num_series() == 0 {
        return Ok(None);
    }
    Ok(Some(b.finish()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use prost::Message;
    use strata_head::HeadConfig;
    use strata_proto::raft_v1::ShardBatch;
    use strata_raft::Applier;

    use super::*;
    use crate::shard::tests::series_samples;

    #[test]
    fn a_range_stays_open_for_the_whole_out_of_order_window() {
        const H: i64 = 3_600_000;
        let now = 100 * H;
        // Without a window (or a short one), half a range past the end.
        assert!(!range_closed(2 * H, 2 * H, 0, 3 * H - 1, now));
        assert!(range_closed(2 * H, 2 * H, 0, 3 * H, now));
        assert!(range_closed(2 * H, 2 * H, 30 * 60_000, 3 * H, now));
        // With a 2h window, [0, 2h) stays open until samples reach 4h: at 3h30 a sample at
        // 1h30 (2h behind) is still inside the window, and its range must take it.
        assert!(!range_closed(2 * H, 2 * H, 2 * H, 3 * H + H / 2, now));
        assert!(range_closed(2 * H, 2 * H, 2 * H, 4 * H, now));
        // Never before its time, whatever samples claim.
        assert!(!range_closed(2 * H, 2 * H, 0, 50 * H, 3 * H - 1));
        assert!(!range_closed(2 * H, 2 * H, i64::MAX, i64::MAX, i64::MAX - 1));
        // The head takes that sample while the range is open.
        let cfg = HeadConfig { ooo_window_ms: 2 * H, ..HeadConfig::default() };
        let st = ShardState::new(cfg);
        let push = |t: i64| {
            let series = vec![series_samples(&[("__name__", "up")], &[(t, 1.0)])];
            let entry = ShardBatch { tenant: "t".into(), series, metadata: vec![] };
            st.apply(&entry.encode_to_vec()).appended
        };
        assert_eq!(push(3 * H + H / 2), 1);
        assert_eq!(push(H + H / 2), 1);
    }

    #[test]
    fn a_cut_overtaken_by_an_applied_flush_fails_rather_than_cut_what_is_left() {
        let st = ShardState::new(HeadConfig::default());
        // 300 s at 1 s: chunks of 120 samples, so a flush before 200 s drops the first.
        let samples: Vec<(i64, f64)> = (0..300).map(|k| (k * 1000, k as f64)).collect();
        let series = vec![series_samples(&[("__name__", "up"), ("job", "a")], &samples)];
        let entry = ShardBatch { tenant: "t".into(), series, metadata: vec![] }.encode_to_vec();
        assert_eq!(st.apply(&entry).appended, 300);
        let (from, end) = (st.flushed_before(), 200_000);
        let cut = Cut { shard: 0, from, end, range: 100_000, incarnation: 0 };
        let opts = BlockOptions::default();
        let built = cut_tenant(&st, "t", cut, &opts).unwrap().unwrap();
        assert_eq!(built.meta.stats.num_samples, 200);
        // An earlier proposal for the same range commits while this cut runs: what the head
        // still holds of the range (80 samples) must not become the block.
        st.apply(&Control::Flushed { before: end, blocks: vec![] }.encode());
        let e = cut_tenant(&st, "t", cut, &opts).unwrap_err();
        assert!(e.to_string().contains("flushed meanwhile"), "{e}");
    }
}
