//! The querier's view of the data: recent samples from the ingesters' heads and older ones from
//! blocks in the object store, merged into one [`Queryable`] and [`SeriesReader`].
//!
//! A series can be in both for the span around a flush (a head keeps a chunk that straddles the
//! flushed boundary, and a block is announced before its range leaves the head), so samples are
//! merged by timestamp and a timestamp present in both is returned once.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use strata_model::{
    Labels, Matcher, MetricMetadata, Queryable, RawSeries, Result, Sample, SeriesReader, TenantId,
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

/// Merges two ascending sample lists; a timestamp in both is taken from `a`.
pub fn merge_samples(a: Vec<Sample>, b: Vec<Sample>) -> Vec<Sample> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].t.cmp(&b[j].t) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Merges two series lists by label set.
pub fn merge_series(a: Vec<RawSeries>, b: Vec<RawSeries>) -> Vec<RawSeries> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut by: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for s in a {
        by.insert(s.labels, s.samples);
    }
    for s in b {
        match by.remove(&s.labels) {
            Some(first) => by.insert(s.labels, merge_samples(first, s.samples)),
            None => by.insert(s.labels, s.samples),
        };
    }
    by.into_iter().map(|(labels, samples)| RawSeries { labels, samples }).collect()
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
        Ok(merge_series(h?, b?))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    #[test]
    fn samples_merge_without_gaps_or_duplicates() {
        let a = vec![s(3, 3.0), s(4, 4.0), s(6, 6.0)];
        let b = vec![s(1, 1.0), s(3, 3.0), s(5, 5.0)];
        let m = merge_samples(a, b);
        assert_eq!(m.iter().map(|x| x.t).collect::<Vec<_>>(), vec![1, 3, 4, 5, 6]);
    }

    #[test]
    fn series_merge_by_labels() {
        let l1 = Labels::from_pairs([("__name__", "a")]);
        let l2 = Labels::from_pairs([("__name__", "b")]);
        let head = vec![RawSeries { labels: l1.clone(), samples: vec![s(10, 1.0)] }];
        let blocks = vec![
            RawSeries { labels: l2.clone(), samples: vec![s(1, 2.0)] },
            RawSeries { labels: l1.clone(), samples: vec![s(5, 0.5), s(10, 1.0)] },
        ];
        let m = merge_series(head, blocks);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].labels, l1);
        assert_eq!(m[0].samples, vec![s(5, 0.5), s(10, 1.0)]);
        assert_eq!(m[1].labels, l2);
    }
}
