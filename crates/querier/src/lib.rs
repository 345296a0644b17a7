//! The querier's view of the data: recent samples from the ingesters' heads and older ones from
//! blocks in the object store, merged into one [`Queryable`] and [`SeriesReader`].
//!
//! A series can be in both for the span around a flush (a head keeps a chunk that straddles the
//! flushed boundary, and a block is announced before its range leaves the head), so samples are
//! merged by timestamp and a timestamp present in both is returned once.
//!
//! The head is read before the blocks are looked up, always: a flush announces its block to
//! the catalog first and drops the range from the head after, so a read of the head and then
//! of the catalog finds a range racing a flush in one or both, never in neither. (Reading them
//! concurrently could look up the blocks before the announcement and read the head after
//! the drop: a gap.) This holds on the node that flushed, which adds its blocks to its catalog
//! itself; another replica of the shard drops the range when it applies the flush and sees the
//! blocks at its next bucket sync (multi-node ingesters are not built yet).
use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use strata_model::{
    merge_series, Labels, Matcher, MetricMetadata, Queryable, RawSeries, Result, SeriesReader,
    TenantId,
};

/// Reads head and blocks together.
pub struct Merged {
    head: Arc<dyn Queryable>,
    head_reader: Arc<dyn SeriesReader>,
    blocks: Arc<dyn Queryable>,
    blocks_reader: Arc<dyn SeriesReader>,
}

impl Merged {
    pub fn new(
        head: Arc<dyn Queryable>,
        head_reader: Arc<dyn SeriesReader>,
        blocks: Arc<dyn Queryable>,
        blocks_reader: Arc<dyn SeriesReader>,
    ) -> Self {
        Merged { head, head_reader, blocks, blocks_reader }
    }
}

fn union<T: Ord>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    let mut s: BTreeSet<T> = a.into_iter().collect();
    s.extend(b);
    s.into_iter().collect()
}

#[async_trait]
impl Queryable for Merged {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        // Head first (see the module's doc).
        let h = self.head.select(tenant, matchers, mint, maxt).await?;
        let b = self.blocks.select(tenant, matchers, mint, maxt).await?;
        Ok(merge_series(vec![h, b]))
    }
}

#[async_trait]
impl SeriesReader for Merged {
    async fn series(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>> {
        let h = self.head_reader.series(tenant, sets, mint, maxt).await?;
        let b = self.blocks_reader.series(tenant, sets, mint, maxt).await?;
        Ok(union(h, b))
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let h = self.head_reader.label_names(tenant, sets, mint, maxt).await?;
        let b = self.blocks_reader.label_names(tenant, sets, mint, maxt).await?;
        Ok(union(h, b))
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let h = self.head_reader.label_values(tenant, name, sets, mint, maxt).await?;
        let b = self.blocks_reader.label_values(tenant, name, sets, mint, maxt).await?;
        Ok(union(h, b))
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<(String, Vec<MetricMetadata>)>> {
        self.head_reader.metadata(tenant, metric).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use strata_model::{Label, Sample};

    use super::*;

    /// A flush racing the query: the block appears in the catalog, then the range leaves the
    /// head. `flushed` says how far it got.
    #[derive(Default)]
    struct Race {
        flushed: Mutex<u8>,
    }

    fn series() -> Vec<RawSeries> {
        let labels = Labels(vec![Label { name: "__name__".into(), value: "up".into() }]);
        vec![RawSeries { labels, samples: vec![Sample { t: 1, v: 1.0 }] }]
    }

    /// The head: gives the other side a chance to run first (as any await may), then reads;
    /// the range is gone from it once the flush is complete.
    struct Head(Arc<Race>);
    #[async_trait]
    impl Queryable for Head {
        async fn select(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
        ) -> Result<Vec<RawSeries>> {
            tokio::task::yield_now().await;
            Ok(if *self.0.flushed.lock().unwrap() < 2 { series() } else { vec![] })
        }
    }

    /// The catalog: a snapshot at the first poll; the block is in it once announced.
    struct Blocks(Arc<Race>);
    #[async_trait]
    impl Queryable for Blocks {
        async fn select(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
        ) -> Result<Vec<RawSeries>> {
            let mut flushed = self.0.flushed.lock().unwrap();
            let got = if *flushed >= 1 { series() } else { vec![] };
            // The flush announces its block and drops the range from the head right after.
            *flushed = 2;
            Ok(got)
        }
    }

    struct NoSeries;
    #[async_trait]
    impl SeriesReader for NoSeries {
        async fn series(
            &self,
            _: &TenantId,
            _: &[Vec<Matcher>],
            _: i64,
            _: i64,
        ) -> Result<Vec<Labels>> {
            Ok(vec![])
        }
        async fn label_names(
            &self,
            _: &TenantId,
            _: &[Vec<Matcher>],
            _: i64,
            _: i64,
        ) -> Result<Vec<String>> {
            Ok(vec![])
        }
        async fn label_values(
            &self,
            _: &TenantId,
            _: &str,
            _: &[Vec<Matcher>],
            _: i64,
            _: i64,
        ) -> Result<Vec<String>> {
            Ok(vec![])
        }
        async fn metadata(
            &self,
            _: &TenantId,
            _: Option<&str>,
        ) -> Result<Vec<(String, Vec<MetricMetadata>)>> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn a_range_flushed_during_a_query_is_found_in_the_head_or_the_blocks() {
        let race = Arc::new(Race::default());
        let m = Merged::new(
            Arc::new(Head(Arc::clone(&race))),
            Arc::new(NoSeries),
            Arc::new(Blocks(Arc::clone(&race))),
            Arc::new(NoSeries),
        );
        let got = m.select(&TenantId("t".into()), &[], 0, 10).await.unwrap();
        assert_eq!(got.len(), 1, "the sample was in neither: {got:?}");
        assert_eq!(got[0].samples.len(), 1);
    }
}
