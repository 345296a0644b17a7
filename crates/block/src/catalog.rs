//! The blocks a reader knows about: opened once (footers cached), found by listing the bucket
//! and by being told of fresh uploads, and queried as a [`Queryable`] and [`SeriesReader`].
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::ObjectStore;
use strata_model::{
    merge_series, Labels, Matcher, MetricMetadata, Queryable, RawSeries, SeriesReader, TenantId,
};

use crate::{paths, read_meta, BlockId, BlockMeta, BlockReader, Result};

type TenantBlocks = BTreeMap<BlockId, Arc<BlockReader>>;

/// Blocks by tenant.
#[derive(Debug)]
pub struct Catalog {
    store: Arc<dyn ObjectStore>,
    blocks: RwLock<HashMap<String, TenantBlocks>>,
}

/// What the bucket holds for one tenant, from one listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Blocks with a `meta.json`.
    pub complete: BTreeSet<BlockId>,
    /// Blocks with a deletion mark.
    pub marked: BTreeSet<BlockId>,
    /// Folders of blocks with neither (an upload that has not finished, or never will), each
    /// with the time its newest object was written, in Unix milliseconds.
    pub partial: BTreeMap<BlockId, i64>,
}

/// Lists the tenants that have a folder in the bucket.
pub async fn list_tenants(store: &Arc<dyn ObjectStore>) -> Result<Vec<String>> {
    let res = store.list_with_delimiter(None).await?;
    // Folder names are escaped tenant names (`a*b` is stored as `a%2Ab`).
    Ok(res
        .common_prefixes
        .iter()
        .filter_map(|p| p.parts().next_back())
        .filter_map(|p| paths::tenant_of(&p))
        .collect())
}

/// Lists one tenant's blocks with one recursive listing.
pub async fn list_blocks(store: &Arc<dyn ObjectStore>, tenant: &str) -> Result<Listing> {
    let objects: Vec<_> = store.list(Some(&paths::tenant(tenant))).try_collect().await?;
    let mut l = Listing::default();
    let mut newest: BTreeMap<BlockId, i64> = BTreeMap::new();
    for o in objects {
        let parts: Vec<_> = o.location.parts().collect();
        let [.., dir, file] = parts.as_slice() else { continue };
        let Some(id) = BlockId::parse(dir.as_ref()) else { continue };
        let t = newest.entry(id).or_insert(i64::MIN);
        *t = (*t).max(o.last_modified.timestamp_millis());
        match file.as_ref() {
            paths::META => {
                l.complete.insert(id);
            }
            paths::DELETION_MARK => {
                l.marked.insert(id);
            }
            _ => {}
        }
    }
    l.partial = newest
        .into_iter()
        .filter(|(id, _)| !l.complete.contains(id) && !l.marked.contains(id))
        .collect();
    Ok(l)
}

impl Catalog {
    pub fn new(store: Arc<dyn ObjectStore>) -> Catalog {
        Catalog { store, blocks: RwLock::new(HashMap::new()) }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Adds a block just uploaded.
    pub async fn add(&self, meta: BlockMeta) -> Result<()> {
        let tenant = meta.tenant.clone();
        let id = meta.ulid;
        let r = Arc::new(BlockReader::open(Arc::clone(&self.store), meta).await?);
        self.write().entry(tenant).or_default().insert(id, r);
        Ok(())
    }

    /// Brings the catalog in line with the bucket: opens new complete blocks, forgets blocks
    /// that were deleted or marked for deletion. Returns the number of live blocks.
    ///
    /// Only what was known before the listing can be forgotten: a block the flusher adds
    /// while the refresh runs (uploaded after the listing) stays, or its range would be in
    /// neither the head nor the catalog until the next refresh. And when a new block cannot
    /// be opened, its tenant's marked blocks are not forgotten this time: it may replace them
    /// (compaction), and showing both (queries deduplicate samples) beats showing neither.
    /// Blocks no longer in the bucket are always forgotten.
    pub async fn refresh(&self) -> Result<usize> {
        let known_tenants: BTreeSet<String> = self.read().keys().cloned().collect();
        let tenants = list_tenants(&self.store).await?;
        for tenant in &tenants {
            let known: BTreeSet<BlockId> =
                self.read().get(tenant).map(|b| b.keys().copied().collect()).unwrap_or_default();
            let l = list_blocks(&self.store, tenant).await?;
            let live: BTreeSet<BlockId> = l.complete.difference(&l.marked).copied().collect();
            let mut failed = false;
            for id in live.difference(&known) {
                // A block can vanish between the listing and here (compactor); skip it then.
                match read_meta(&self.store, tenant, &id.to_string()).await {
                    // A block is served as the tenant whose folder holds it, never as
                    // another one its meta.json might name (a copied folder).
                    Ok(Some(meta)) if meta.tenant != *tenant || meta.ulid != *id => {
                        tracing::warn!(%tenant, block = %id, named = %meta.tenant, "block meta.json names another tenant or id; skipped");
                    }
                    Ok(Some(meta)) => {
                        if let Err(e) = self.add(meta).await {
                            tracing::warn!(%tenant, block = %id, error = %e, "cannot open block");
                            failed = true;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(%tenant, block = %id, error = %e, "cannot read block meta");
                        failed = true;
                    }
                }
            }
            // After a failure, blocks still in the bucket (marked, perhaps replaced by the one
            // that failed) stay; blocks gone from it are forgotten in any case.
            let keep = |id: &BlockId| {
                live.contains(id) || !known.contains(id) || (failed && l.complete.contains(id))
            };
            if let Some(blocks) = self.write().get_mut(tenant) {
                blocks.retain(|id, _| keep(id));
            }
        }
        let mut w = self.write();
        w.retain(|t, _| tenants.contains(t) || !known_tenants.contains(t));
        Ok(w.values().map(BTreeMap::len).sum())
    }

    /// Metas of a tenant's live blocks, oldest first.
    pub fn metas(&self, tenant: &str) -> Vec<BlockMeta> {
        let mut v: Vec<BlockMeta> = self
            .read()
            .get(tenant)
            .map(|b| b.values().map(|r| r.meta().clone()).collect())
            .unwrap_or_default();
        v.sort_by_key(|m| (m.min_time, m.ulid));
        v
    }

    pub fn tenants(&self) -> Vec<String> {
        let mut v: Vec<String> = self.read().keys().cloned().collect();
        v.sort();
        v
    }

    /// Blocks of `tenant` overlapping `[mint, maxt]`.
    pub fn overlapping(&self, tenant: &str, mint: i64, maxt: i64) -> Vec<Arc<BlockReader>> {
        self.read()
            .get(tenant)
            .map(|b| b.values().filter(|r| r.meta().overlaps(mint, maxt)).cloned().collect())
            .unwrap_or_default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TenantBlocks>> {
        self.blocks.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TenantBlocks>> {
        self.blocks.write().unwrap_or_else(PoisonError::into_inner)
    }

    async fn series_sets(
        &self,
        tenant: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>> {
        let mut out = BTreeSet::new();
        for b in self.overlapping(tenant, mint, maxt) {
            if sets.is_empty() {
                out.extend(b.series(&[]).await?);
            }
            for set in sets {
                out.extend(b.series(set).await?);
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// Blocks one query reads at the same time.
const BLOCKS_READ_AT_ONCE: usize = 4;

fn to_model(e: crate::Error) -> strata_model::Error {
    strata_model::Error::Unavailable(format!("reading blocks: {e}"))
}

#[async_trait]
impl Queryable for Catalog {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> strata_model::Result<Vec<RawSeries>> {
        // One task per block, so their decoding runs on all cores, but only a few reading at
        // once: a 90-day query over 24h blocks does not hold 90 blocks' label columns and
        // encoded chunks at the same time (their decoded results are all kept until merged).
        // Dropping the set (a query given up) stops them.
        let reading = Arc::new(tokio::sync::Semaphore::new(BLOCKS_READ_AT_ONCE));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, b) in self.overlapping(tenant.as_str(), mint, maxt).into_iter().enumerate() {
            let matchers = matchers.to_vec();
            let reading = Arc::clone(&reading);
            tasks.spawn(async move {
                let _permit = reading.acquire_owned().await;
                (i, b.select(&matchers, mint, maxt).await)
            });
        }
        let mut parts = Vec::with_capacity(tasks.len());
        while let Some(done) = tasks.join_next().await {
            let (i, part) =
                done.map_err(|e| strata_model::Error::Internal(format!("block read: {e}")))?;
            parts.push((i, part.map_err(to_model)?));
        }
        // In block order, whatever order they finished in.
        parts.sort_by_key(|(i, _)| *i);
        Ok(merge_series(parts.into_iter().map(|(_, p)| p).collect()))
    }
}

#[async_trait]
impl SeriesReader for Catalog {
    async fn series(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> strata_model::Result<Vec<Labels>> {
        self.series_sets(tenant.as_str(), sets, mint, maxt).await.map_err(to_model)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> strata_model::Result<Vec<String>> {
        if sets.is_empty() {
            let names: BTreeSet<String> = self
                .overlapping(tenant.as_str(), mint, maxt)
                .iter()
                .flat_map(|b| b.meta().parquet.label_names.clone())
                .collect();
            return Ok(names.into_iter().collect());
        }
        let series = self.series_sets(tenant.as_str(), sets, mint, maxt).await.map_err(to_model)?;
        let names: BTreeSet<String> =
            series.iter().flat_map(|l| l.iter().map(|l| l.name.clone())).collect();
        Ok(names.into_iter().collect())
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> strata_model::Result<Vec<String>> {
        let mut values = BTreeSet::new();
        for b in self.overlapping(tenant.as_str(), mint, maxt) {
            if sets.is_empty() {
                b.label_values(name, &[], &mut values).await.map_err(to_model)?;
            }
            for set in sets {
                b.label_values(name, set, &mut values).await.map_err(to_model)?;
            }
        }
        Ok(values.into_iter().collect())
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> strata_model::Result<Vec<(String, Vec<MetricMetadata>)>> {
        // Blocks keep no metric metadata; the ingesters answer it.
        Ok(Vec::new())
    }
}
