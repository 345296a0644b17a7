//! Compaction: a pure planner (which blocks to merge, which to delete) and the steps that carry
//! a plan out against the bucket.
//!
//! The planner merges the blocks of each closed, aligned window of `range` (24h by default) into
//! one block once the window holds more than one, and marks blocks past retention for deletion.
//! Merging unions the series and drops repeated timestamps, so blocks that overlap (a flush
//! repeated after a crash, a shard flushing late) become one copy of the data.
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use strata_model::{merge_samples, Labels, Sample};

use crate::meta::{BlockMeta, Compaction, DeletionMark};
use crate::{
    paths, series_order, upload, BlockBuilder, BlockDesc, BlockId, BlockOptions, BlockReader,
    BuiltBlock, Result,
};

/// What the planner is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannerConfig {
    /// Length of a compacted block (and alignment of its window), ms.
    pub range_ms: i64,
    /// A window is merged only once `now` is this far past its end (late flushes still land).
    pub grace_ms: i64,
    /// Blocks entirely older than `now - retention` are deleted; `None` keeps everything.
    pub retention_ms: Option<i64>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Merge `sources` into one block covering `[min_time, max_time)`.
    Merge { min_time: i64, max_time: i64, sources: Vec<BlockId> },
    /// Mark a block for deletion.
    Delete { id: BlockId, reason: &'static str },
}

/// Plans one tenant's compaction from its live blocks (not marked for deletion). Pure.
pub fn plan(cfg: &PlannerConfig, blocks: &[BlockMeta], now_ms: i64) -> Vec<Action> {
    let mut actions = Vec::new();
    let mut deleted = BTreeSet::new();
    if let Some(ret) = cfg.retention_ms {
        for b in blocks {
            if b.max_time <= now_ms.saturating_sub(ret) {
                deleted.insert(b.ulid);
                actions.push(Action::Delete { id: b.ulid, reason: "retention" });
            }
        }
    }
    let range = cfg.range_ms.max(1);
    let mut windows: BTreeMap<i64, Vec<&BlockMeta>> = BTreeMap::new();
    for b in blocks.iter().filter(|b| !deleted.contains(&b.ulid)) {
        let w = b.min_time.div_euclid(range).saturating_mul(range);
        // A block crossing the window's end is left alone.
        if b.max_time <= w.saturating_add(range) {
            windows.entry(w).or_default().push(b);
        }
    }
    for (w, list) in windows {
        let end = w.saturating_add(range);
        if list.len() < 2 || now_ms < end.saturating_add(cfg.grace_ms) {
            continue;
        }
        let mut sources: Vec<BlockId> = list.iter().map(|b| b.ulid).collect();
        sources.sort();
        actions.push(Action::Merge { min_time: w, max_time: end, sources });
    }
    actions
}

/// Carries out a merge of `sources` (one tenant's blocks) into one block over
/// `[min_time, max_time)`: streams them row group by row group, merging series in block order,
/// writes and uploads the merged block, then marks the sources for deletion. Returns the new
/// block's meta. Memory holds one row group of each source (encoded), one series' samples and
/// the encoded output, not the decoded window.
pub async fn merge(
    store: &Arc<dyn ObjectStore>,
    sources: &[BlockMeta],
    (min_time, max_time): (i64, i64),
    opts: &BlockOptions,
    now_s: i64,
) -> Result<BlockMeta> {
    let Some(tenant) = sources.first().map(|b| b.tenant.clone()) else {
        return Err(crate::Error::Invalid("nothing to merge".into()));
    };
    let mut readers = Vec::new();
    let mut level = 0;
    let mut all_sources = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut key = format!("compact/{tenant}/{min_time}/{max_time}");
    for meta in sources {
        if meta.tenant != tenant {
            return Err(crate::Error::Invalid("blocks of different tenants".into()));
        }
        level = level.max(meta.compaction.level);
        all_sources.extend(meta.compaction.sources.iter().copied());
        if meta.compaction.sources.is_empty() {
            all_sources.insert(meta.ulid);
        }
        names.extend(meta.parquet.label_names.iter().cloned());
        key.push_str(&format!("/{}", meta.ulid));
        readers.push(BlockReader::open(Arc::clone(store), meta.clone()).await?);
    }
    let desc = BlockDesc {
        id: BlockId::derived(min_time, key.as_bytes()),
        tenant: tenant.clone(),
        min_time,
        max_time,
        compaction: Compaction { level: level + 1, sources: all_sources.into_iter().collect() },
        shard: None,
    };
    // Decoding and encoding are CPU work: off the async workers, reading through the runtime.
    let runtime = tokio::runtime::Handle::current();
    let opts = opts.clone();
    let built = tokio::task::spawn_blocking(move || {
        merge_streams(&runtime, readers, desc, names.into_iter().collect(), &opts)
    })
    .await
    .map_err(|e| crate::Error::Invalid(format!("block merge panicked: {e}")))??;
    upload(store, &built).await?;
    // The sources go only once the new block reads back: both files there, footers sound,
    // as many rows as it has series.
    if let Err(e) = BlockReader::open(Arc::clone(store), built.meta.clone()).await {
        // Gone again, meta.json first, or every later run would take it for a source and fail
        // on it; the sources stay.
        let id = built.meta.ulid.to_string();
        for file in [paths::META, paths::LABELS, paths::CHUNKS] {
            let _ = store.delete(&paths::block_file(&tenant, &id, file)).await;
        }
        return Err(crate::Error::Invalid(format!("merged block {id} does not read back: {e}")));
    }
    for meta in sources {
        mark_deleted(store, &tenant, meta.ulid, "compacted", now_s).await?;
    }
    Ok(built.meta)
}

/// One source of a merge: its rows in block order, a row group at a time.
struct Cursor {
    reader: BlockReader,
    next_rg: usize,
    rows: std::vec::IntoIter<(Labels, Vec<(usize, Bytes)>)>,
    head: Option<(Labels, Vec<(usize, Bytes)>)>,
}

impl Cursor {
    /// The next row's labels, reading the next row group when this one is used up.
    fn peek(&mut self, runtime: &tokio::runtime::Handle) -> Result<Option<&Labels>> {
        while self.head.is_none() {
            if let Some(row) = self.rows.next() {
                self.head = Some(row);
            } else if self.next_rg < self.reader.num_row_groups() {
                let rg = self.next_rg;
                self.next_rg += 1;
                self.rows = runtime.block_on(self.reader.read_row_group_cells(rg))?.into_iter();
            } else {
                return Ok(None);
            }
        }
        Ok(self.head.as_ref().map(|(l, _)| l))
    }
}

/// Merges sources that are each in [`series_order`] into one block: a series in several
/// sources gets their samples united, a timestamp in several taken from the earliest source.
fn merge_streams(
    runtime: &tokio::runtime::Handle,
    readers: Vec<BlockReader>,
    desc: BlockDesc,
    names: Vec<String>,
    opts: &BlockOptions,
) -> Result<BuiltBlock> {
    let mut cursors: Vec<Cursor> = readers
        .into_iter()
        .map(|reader| Cursor { reader, next_rg: 0, rows: Vec::new().into_iter(), head: None })
        .collect();
    let mut b = BlockBuilder::new(desc, names, opts)?;
    loop {
        let mut next: Option<Labels> = None;
        for c in &mut cursors {
            if let Some(l) = c.peek(runtime)? {
                if next.as_ref().is_none_or(|n| series_order(l, n) == Ordering::Less) {
                    next = Some(l.clone());
                }
            }
        }
        let Some(labels) = next else { break };
        let mut samples: Vec<Sample> = Vec::new();
        for c in &mut cursors {
            if c.head.as_ref().is_some_and(|(l, _)| *l == labels) {
                let Some((_, cells)) = c.head.take() else { continue };
                let mut more = Vec::new();
                for (_, cell) in &cells {
                    crate::cell::decode(cell, i64::MIN, i64::MAX, &mut more)?;
                }
                samples = merge_samples(samples, more);
            }
        }
        b.push_row(&labels, &samples)?;
    }
    b.finish()
}

/// Writes a block's deletion mark.
pub async fn mark_deleted(
    store: &Arc<dyn ObjectStore>,
    tenant: &str,
    id: BlockId,
    reason: &str,
    now_s: i64,
) -> Result<()> {
    let mark = DeletionMark { id, deletion_time: now_s, reason: reason.to_string() };
    let path = paths::block_file(tenant, &id.to_string(), paths::DELETION_MARK);
    store.put(&path, PutPayload::from(Bytes::from(serde_json::to_vec(&mark)?))).await?;
    Ok(())
}

/// Settings of the compactor role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactorConfig {
    pub range_ms: i64,
    pub grace_ms: i64,
    /// `None` keeps data forever.
    pub retention_ms: Option<i64>,
    /// Per-tenant overrides of `retention_ms` (`None`: keep forever).
    pub tenant_retention_ms: BTreeMap<String, Option<i64>>,
    /// How long a marked block stays before it is deleted.
    pub deletion_delay_ms: i64,
    /// How long a block folder without `meta.json` may go unwritten before it is taken for an
    /// abandoned upload and deleted. Longer than any upload can take.
    pub partial_delay_ms: i64,
}

/// What one compactor run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    pub merged: usize,
    pub marked: usize,
    pub deleted: usize,
    /// Abandoned uploads removed.
    pub partial_deleted: usize,
    pub failures: usize,
}

/// The compactor: plans and carries out merges, retention and deletions for every tenant, and
/// rewrites each tenant's bucket index.
pub struct Compactor {
    store: Arc<dyn ObjectStore>,
    cfg: CompactorConfig,
    opts: BlockOptions,
    /// Block metas are immutable: read each once.
    metas: std::sync::Mutex<BTreeMap<BlockId, BlockMeta>>,
}

impl Compactor {
    pub fn new(store: Arc<dyn ObjectStore>, cfg: CompactorConfig, opts: BlockOptions) -> Self {
        Compactor { store, cfg, opts, metas: Default::default() }
    }

    /// One pass over all tenants at time `now_ms`. A failing tenant is logged and counted; the
    /// others go on.
    pub async fn run_once(&self, now_ms: i64) -> Result<RunReport> {
        let mut rep = RunReport::default();
        for tenant in crate::list_tenants(&self.store).await? {
            if let Err(e) = self.run_tenant(&tenant, now_ms, &mut rep).await {
                rep.failures += 1;
                tracing::warn!(%tenant, error = %e, "compaction failed");
            }
        }
        Ok(rep)
    }

    async fn meta(&self, tenant: &str, id: BlockId) -> Result<Option<BlockMeta>> {
        if let Some(m) =
            self.metas.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&id)
        {
            return Ok(Some(m.clone()));
        }
        let m = crate::read_meta(&self.store, tenant, &id.to_string()).await?;
        if let Some(m) = &m {
            self.metas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id, m.clone());
        }
        Ok(m)
    }

    /// Deletes every object of a block's folder except `keep`.
    async fn delete_block(&self, tenant: &str, id: BlockId, keep: Option<&str>) -> Result<()> {
        let prefix = paths::block(tenant, &id.to_string());
        let objects: Vec<_> =
            futures::TryStreamExt::try_collect::<Vec<_>>(self.store.list(Some(&prefix))).await?;
        for o in objects.iter().filter(|o| keep.is_none() || o.location.filename() != keep) {
            self.store.delete(&o.location).await?;
        }
        Ok(())
    }

    /// Deletes an unfinished upload's folder, unless it came back to life since the listing:
    /// a flush repeated after a crash writes the same block id again, so the folder is listed
    /// once more just before deleting, and left alone when it now has a `meta.json` or any
    /// object younger than the delay. Returns whether it was deleted.
    pub(crate) async fn delete_abandoned(
        &self,
        tenant: &str,
        id: BlockId,
        now_ms: i64,
    ) -> Result<bool> {
        let prefix = paths::block(tenant, &id.to_string());
        let objects: Vec<_> =
            futures::TryStreamExt::try_collect::<Vec<_>>(self.store.list(Some(&prefix))).await?;
        let alive = objects.iter().any(|o| {
            o.location.filename() == Some(paths::META)
                || now_ms.saturating_sub(o.last_modified.timestamp_millis())
                    < self.cfg.partial_delay_ms
        });
        if alive {
            tracing::info!(%tenant, block = %id, "an unfinished upload is being written again; kept");
            return Ok(false);
        }
        tracing::warn!(%tenant, block = %id, "deleting an abandoned partial upload");
        for o in &objects {
            // Each object once more right before it goes: one written since the listing (the
            // same path, uploaded again) stops the delete.
            match self.store.head(&o.location).await {
                Ok(now) if now.last_modified == o.last_modified => {
                    self.store.delete(&o.location).await?;
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Ok(_) => {
                    tracing::info!(%tenant, block = %id, "an unfinished upload is being written again; kept");
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }

    async fn run_tenant(&self, tenant: &str, now_ms: i64, rep: &mut RunReport) -> Result<()> {
        let now_s = now_ms.div_euclid(1000);
        let listing = crate::list_blocks(&self.store, tenant).await?;
        let mut marks = Vec::new();
        for id in &listing.marked {
            let path = paths::block_file(tenant, &id.to_string(), paths::DELETION_MARK);
            let mark: DeletionMark = match self.store.get(&path).await {
                Ok(r) => {
                    let written = r.meta.last_modified.timestamp();
                    match serde_json::from_slice(&r.bytes().await?) {
                        Ok(mark) => mark,
                        // A mark that does not parse still marks: dated by its object.
                        Err(e) => {
                            tracing::warn!(%tenant, block = %id, error = %e, "unreadable deletion mark; dated by its object");
                            DeletionMark {
                                id: *id,
                                deletion_time: written,
                                reason: "unreadable mark".into(),
                            }
                        }
                    }
                }
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let waited_ms = now_s.saturating_sub(mark.deletion_time).saturating_mul(1000);
            if waited_ms >= self.cfg.deletion_delay_ms {
                // The mark goes last, so an interrupted delete is finished next time.
                self.delete_block(tenant, *id, Some(paths::DELETION_MARK)).await?;
                self.store.delete(&path).await?;
                self.metas.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
                rep.deleted += 1;
            } else {
                marks.push(mark);
            }
        }
        for (id, newest_ms) in &listing.partial {
            if now_ms.saturating_sub(*newest_ms) >= self.cfg.partial_delay_ms
                && self.delete_abandoned(tenant, *id, now_ms).await?
            {
                rep.partial_deleted += 1;
            }
        }
        // A block whose meta.json does not read, or names another tenant or id than its
        // folder, is left alone (logged and counted), as readers skip it: one bad object must
        // not stop retention and compaction of the rest.
        let mut live = Vec::new();
        for id in listing.complete.difference(&listing.marked) {
            match self.meta(tenant, *id).await {
                Ok(Some(m)) if m.tenant == tenant && m.ulid == *id => live.push(m),
                Ok(Some(m)) => {
                    rep.failures += 1;
                    tracing::warn!(%tenant, block = %id, meta_tenant = %m.tenant, meta_id = %m.ulid, "meta.json names another block; skipped");
                }
                Ok(None) => {}
                Err(e) => {
                    rep.failures += 1;
                    tracing::warn!(%tenant, block = %id, error = %e, "unreadable meta.json; skipped");
                }
            }
        }
        let retention =
            self.cfg.tenant_retention_ms.get(tenant).copied().unwrap_or(self.cfg.retention_ms);
        let pcfg = PlannerConfig {
            range_ms: self.cfg.range_ms,
            grace_ms: self.cfg.grace_ms,
            retention_ms: retention,
        };
        for action in plan(&pcfg, &live, now_ms) {
            match action {
                Action::Delete { id, reason } => {
                    mark_deleted(&self.store, tenant, id, reason, now_s).await?;
                    live.retain(|b| b.ulid != id);
                    marks.push(DeletionMark { id, deletion_time: now_s, reason: reason.into() });
                    rep.marked += 1;
                }
                Action::Merge { min_time, max_time, sources } => {
                    let src: Vec<BlockMeta> =
                        live.iter().filter(|b| sources.contains(&b.ulid)).cloned().collect();
                    // A window that fails to merge (a source that does not decode) stays as
                    // it is; later windows still merge.
                    let meta = match merge(
                        &self.store,
                        &src,
                        (min_time, max_time),
                        &self.opts,
                        now_s,
                    )
                    .await
                    {
                        Ok(meta) => meta,
                        Err(e) => {
                            rep.failures += 1;
                            tracing::warn!(%tenant, min_time, max_time, error = %e, "merge failed; its blocks are kept");
                            continue;
                        }
                    };
                    tracing::info!(%tenant, block = %meta.ulid, sources = src.len(), series = meta.stats.num_series, "compacted");
                    live.retain(|b| !sources.contains(&b.ulid));
                    for id in sources {
                        marks.push(DeletionMark {
                            id,
                            deletion_time: now_s,
                            reason: "compacted".into(),
                        });
                    }
                    self.metas
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(meta.ulid, meta.clone());
                    live.push(meta);
                    rep.merged += 1;
                }
            }
        }
        live.sort_by_key(|b| (b.min_time, b.ulid));
        let index = crate::BucketIndex {
            version: 1,
            blocks: live,
            deletion_marks: marks,
            updated_at: now_s,
        };
        self.store
            .put(
                &paths::bucket_index(tenant),
                PutPayload::from(Bytes::from(serde_json::to_vec(&index)?)),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::meta::{BlockStats, ParquetLayout};

    const H: i64 = 3_600_000;

    fn meta(min: i64, max: i64, key: &str) -> BlockMeta {
        BlockMeta {
            ulid: BlockId::derived(min, key.as_bytes()),
            version: 1,
            tenant: "t".into(),
            min_time: min,
            max_time: max,
            stats: BlockStats::default(),
            compaction: Compaction { level: 1, sources: vec![] },
            shard: Some(0),
            parquet: ParquetLayout {
                data_column_duration_ms: 8 * H,
                data_columns: 1,
                row_group_rows: 1,
                label_names: vec![],
            },
        }
    }

    fn cfg(retention: Option<i64>) -> PlannerConfig {
        PlannerConfig { range_ms: 24 * H, grace_ms: 2 * H, retention_ms: retention }
    }

    #[test]
    fn merges_closed_windows_with_several_blocks() {
        let day = 24 * H;
        let mut blocks: Vec<BlockMeta> =
            (0..12).map(|i| meta(i * 2 * H, (i + 1) * 2 * H, &format!("a{i}"))).collect();
        blocks.push(meta(0, 2 * H, "other-shard"));
        // The second day has one block so far.
        blocks.push(meta(day, day + 2 * H, "b"));
        // Not closed yet: nothing to do.
        assert!(plan(&cfg(None), &blocks, day + H).is_empty());
        let actions = plan(&cfg(None), &blocks, day + 2 * H);
        assert_eq!(actions.len(), 1);
        let Action::Merge { min_time, max_time, sources } = &actions[0] else { panic!() };
        assert_eq!((*min_time, *max_time), (0, day));
        assert_eq!(sources.len(), 13);
        // A window with a single block stays as it is, even when closed.
        assert_eq!(plan(&cfg(None), &blocks, 10 * day).len(), 1);
    }

    #[test]
    fn retention_deletes_whole_blocks_only() {
        let blocks = vec![meta(0, 2 * H, "a"), meta(2 * H, 4 * H, "b")];
        let actions = plan(&cfg(Some(H)), &blocks, 3 * H + 1);
        assert_eq!(actions, vec![Action::Delete { id: blocks[0].ulid, reason: "retention" }]);
        // Deleted blocks are not merged.
        let actions = plan(&cfg(Some(H)), &blocks, 30 * H);
        assert_eq!(actions.len(), 2);
        assert!(actions.iter().all(|a| matches!(a, Action::Delete { .. })));
    }

    #[test]
    fn blocks_crossing_a_window_are_left_alone() {
        let blocks = vec![meta(22 * H, 26 * H, "x"), meta(20 * H, 22 * H, "y")];
        assert!(plan(&cfg(None), &blocks, 100 * H).is_empty());
    }
}
