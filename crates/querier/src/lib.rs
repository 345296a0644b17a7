//! The querier's view of the data: recent samples from the ingesters' heads and older ones from
//! blocks in the object store, merged into one [`Queryable`] and [`SeriesReader`].
//!
//! A series can be in both for the span around a flush (a head keeps a chunk that straddles the
//! flushed boundary, and a block is announced before its range leaves the head), so samples are
//! merged by timestamp and a timestamp present in both is returned once.
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
        let (h, b) = futures::future::join(
            self.head.select(tenant, matchers, mint, maxt),
            self.blocks.select(tenant, matchers, mint, maxt),
        )
        .await;
        Ok(merge_series(vec![h?, b?]))
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
        let (h, b) = futures::future::join(
            self.head_reader.series(tenant, sets, mint, maxt),
            self.blocks_reader.series(tenant, sets, mint, maxt),
        )
        .await;
        Ok(union(h?, b?))
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let (h, b) = futures::future::join(
            self.head_reader.label_names(tenant, sets, mint, maxt),
            self.blocks_reader.label_names(tenant, sets, mint, maxt),
        )
        .await;
        Ok(union(h?, b?))
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        sets: &[Vec<Matcher>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<String>> {
        let (h, b) = futures::future::join(
            self.head_reader.label_values(tenant, name, sets, mint, maxt),
            self.blocks_reader.label_values(tenant, name, sets, mint, maxt),
        )
        .await;
        Ok(union(h?, b?))
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<(String, Vec<MetricMetadata>)>> {
        self.head_reader.metadata(tenant, metric).await
    }
}
