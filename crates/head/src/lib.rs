//! The in-memory head of one Raft shard: the recent samples of many tenants.
//!
//! Each tenant has its own string interner, series table, series-by-hash map and inverted index
//! (label name → value → sorted series ids). A series is named by its key, its label set in
//! one canonical byte form ([`strata_model::encode_key`]), which is what appends carry: finding
//! a series is one hash probe and one comparison of two byte strings. Samples live in Prometheus's XOR chunk encoding
//! ([`chunk`]), 120 to a chunk by default, with a small sorted buffer per series for samples that
//! arrive out of order inside [`HeadConfig::ooo_window_ms`]. Appends follow Prometheus's rules:
//! a sample at the newest timestamp with identical value bits is a duplicate and ignored, with
//! other bits it is rejected; an older sample is rejected unless it is within the out-of-order
//! window. Staleness markers are stored like any other value.
//!
//! The head does no I/O and no locking; callers wrap it in a lock.
//!
//! ```
//! use strata_head::{Head, HeadConfig};
//! use strata_model::{encode_key, key_hash, ApplyReport, MatchOp, Matcher};
//!
//! let mut head = Head::new(HeadConfig::default());
//! let mut key = Vec::new();
//! encode_key([(&b"__name__"[..], &b"up"[..]), (b"job", b"node")], &mut key);
//! let mut report = ApplyReport::default();
//! head.append("tenant-a", key_hash(&key), &key, &[1000, 2000], &[1.0, 0.0], &mut report);
//! assert_eq!((report.appended, report.series_created), (2, 1));
//!
//! let m = Matcher::new(MatchOp::Equal, "job", "node").unwrap();
//! let refs = head.select("tenant-a", &[m], 0, 5000);
//! assert_eq!(refs.len(), 1);
//! let samples = head.samples("tenant-a", refs[0], 1500, 5000);
//! assert_eq!((samples[0].t, samples[0].v), (2000, 0.0));
//! assert!(head.select("tenant-b", &[], 0, 5000).is_empty());
//! ```

pub mod chunk;
mod error;
mod postings;
mod series;
mod symbols;
mod tenant;

use std::collections::BTreeMap;
use std::mem::size_of;

pub use error::{Error, Result};
use strata_model::{key_hash, labels_key, ApplyReport, Labels, Matcher, Sample, SeriesRef};

use crate::symbols::ALLOC_OVERHEAD;
use crate::tenant::TenantHead;

/// How the head stores samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadConfig {
    /// How far behind a tenant's newest sample an out-of-order sample may be and still be kept.
    /// 0 (the default) rejects every out-of-order sample, as Prometheus does.
    pub ooo_window_ms: i64,
    /// Samples per XOR chunk before a new one is cut; clamped to `1..=65535`.
    pub samples_per_chunk: usize,
    /// When positive, a chunk is also cut where time crosses a multiple of this (the block
    /// range), so flushing a range drops whole chunks.
    pub chunk_range_ms: i64,
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig { ooo_window_ms: 0, samples_per_chunk: 120, chunk_range_ms: 0 }
    }
}

/// Sizes of the head, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadStats {
    pub tenants: usize,
    pub series: usize,
    pub samples: u64,
    pub chunks: usize,
    /// An estimate of the heap bytes the head uses, including allocator overhead.
    pub bytes: usize,
}

/// The in-memory store of recent samples. See the crate docs.
#[derive(Debug, Default)]
pub struct Head {
    cfg: HeadConfig,
    /// Samples older than this are refused as out of bounds (their range was flushed).
    min_valid_t: i64,
    tenants: BTreeMap<String, TenantHead>,
}

impl Head {
    pub fn new(mut cfg: HeadConfig) -> Self {
        cfg.samples_per_chunk = cfg.samples_per_chunk.clamp(1, chunk::MAX_SAMPLES);
        cfg.ooo_window_ms = cfg.ooo_window_ms.max(0);
        Head { cfg, min_valid_t: i64::MIN, tenants: BTreeMap::new() }
    }

    pub fn config(&self) -> &HeadConfig {
        &self.cfg
    }

    /// Changes the out-of-order window (negative: none) for samples appended from now on.
    pub fn set_ooo_window(&mut self, ms: i64) {
        self.cfg.ooo_window_ms = ms.max(0);
    }

    /// Appends samples of one series.
    ///
    /// `key` is the series' label set as a series key ([`strata_model::encode_key`], names in
    /// order) and `hash` its [`key_hash`]; the hash is trusted for the lookup, and the keys are
    /// compared on every hit, so colliding hashes are fine. A new series is created from its
    /// first sample. Keys that are empty, malformed, not UTF-8, with an empty name or with
    /// names not sorted and unique are skipped whole, with an entry in `report.examples`.
    /// Extra timestamps or values beyond the shorter of `ts`/`vs` are ignored.
    pub fn append(
        &mut self,
        tenant: &str,
        hash: u64,
        key: &[u8],
        ts: &[i64],
        vs: &[f64],
        report: &mut ApplyReport,
    ) {
        self.append_all(tenant, [(hash, key, ts, vs)], report);
    }

    /// [`Head::append`] for each `(hash, key, timestamps, values)` of one tenant, finding
    /// the tenant once rather than per series.
    pub fn append_all<'s, I>(&mut self, tenant: &str, series: I, report: &mut ApplyReport)
    where
        I: IntoIterator<Item = (u64, &'s [u8], &'s [i64], &'s [f64])>,
    {
        let (cfg, min_valid) = (&self.cfg, self.min_valid_t);
        let mut created = None;
        let t = match self.tenants.get_mut(tenant) {
            Some(t) => t,
            None => created.insert(TenantHead::default()),
        };
        // Every hash index probe first, then every series' memory (see `TenantHead::warm`).
        let series: Vec<_> = series.into_iter().map(|s| (s, t.first_id(s.0))).collect();
        t.warm(series.iter().filter_map(|s| s.1));
        for ((hash, key, ts, vs), hint) in series {
            if !ts.is_empty() && !vs.is_empty() {
                t.append(cfg, min_valid, (hash, key, hint), ts, vs, report);
            }
        }
        if let Some(t) = created.filter(|t| !t.is_empty()) {
            self.tenants.insert(tenant.to_owned(), t);
        }
    }

    /// [`Head::append`] for a [`Labels`] value, computing its key and hash.
    pub fn append_labels(
        &mut self,
        tenant: &str,
        labels: &Labels,
        ts: &[i64],
        vs: &[f64],
        report: &mut ApplyReport,
    ) {
        let key = labels_key(labels);
        self.append(tenant, key_hash(&key), &key, ts, vs, report);
    }

    /// Series matching all `matchers` (all series when empty) with at least one sample in
    /// `[mint, maxt]`, in creation order.
    pub fn select(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<SeriesRef> {
        match self.tenants.get(tenant) {
            Some(t) if mint <= maxt => {
                t.select(matchers, mint, maxt).into_iter().map(SeriesRef).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn series_labels(&self, tenant: &str, s: SeriesRef) -> Option<Labels> {
        self.tenants.get(tenant)?.labels(s.0)
    }

    /// Whether series `s` of `tenant` has exactly `labels` (compared in place).
    pub fn series_has_labels(&self, tenant: &str, s: SeriesRef, labels: &Labels) -> bool {
        self.tenants.get(tenant).is_some_and(|t| t.has_labels(s.0, labels))
    }

    /// Samples of a series in `[mint, maxt]`, ascending; out-of-order ones merged in.
    pub fn samples(&self, tenant: &str, s: SeriesRef, mint: i64, maxt: i64) -> Vec<Sample> {
        match self.tenants.get(tenant) {
            Some(t) if mint <= maxt => t.samples(s.0, mint, maxt),
            _ => Vec::new(),
        }
    }

    /// Label names of matching series (all when `matchers` is empty) with data in range; sorted.
    pub fn label_names(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        match self.tenants.get(tenant) {
            Some(t) if mint <= maxt => t.label_names(matchers, mint, maxt),
            _ => Vec::new(),
        }
    }

    /// Values of label `name` among matching series with data in range; sorted.
    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        match self.tenants.get(tenant) {
            Some(t) if mint <= maxt => t.label_values(name, matchers, mint, maxt),
            _ => Vec::new(),
        }
    }

    /// Calls `f` with every series of every tenant and all its samples, decoded. Tenants come
    /// in name order, series in creation order.
    #[cfg(test)]
    pub(crate) fn for_each_series(&self, mut f: impl FnMut(&str, &Labels, &[Sample])) {
        for (name, t) in &self.tenants {
            for s in t.series() {
                let labels = t.labels_of(s);
                f(name, &labels, &s.samples(i64::MIN, i64::MAX));
            }
        }
    }

    /// Calls `f` with every series of every tenant as it is stored: its key, its XOR chunks,
    /// oldest first, and its out-of-order samples (sorted; they may fall between the chunks'
    /// samples). What a Raft snapshot copies while it holds the head: nothing is decoded or
    /// allocated per series.
    pub fn for_each_series_chunks(&self, mut f: impl FnMut(&str, &[u8], &[&[u8]], &[Sample])) {
        let mut chunks = Vec::new();
        for (name, t) in &self.tenants {
            for s in t.series() {
                chunks.clear();
                chunks.extend(s.chunk_bytes());
                f(name, &s.key, &chunks, &s.out_of_order());
            }
        }
    }

    /// The oldest time a sample may have; older ones are refused as out of bounds.
    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_t
    }

    /// Refuses samples older than `t` from now on (it never moves back).
    pub fn set_min_valid_time(&mut self, t: i64) {
        self.min_valid_t = self.min_valid_t.max(t);
    }

    /// Drops the samples before `t` of every tenant, once they are safe in a block: whole
    /// chunks, so a chunk that straddles `t` stays (readers merge by timestamp), and series
    /// left without samples. Tenants left empty go too.
    pub fn truncate_before(&mut self, t: i64) {
        for th in self.tenants.values_mut() {
            th.truncate_before(t);
        }
        self.tenants.retain(|_, th| !th.is_empty());
    }

    /// Names of the tenants holding data, sorted.
    pub fn tenants(&self) -> impl Iterator<Item = &str> + '_ {
        self.tenants.keys().map(String::as_str)
    }

    /// Counts and an estimate of heap bytes; walks every series.
    pub fn stats(&self) -> HeadStats {
        let mut st = HeadStats { tenants: self.tenants.len(), ..HeadStats::default() };
        for (name, t) in &self.tenants {
            let (samples, chunks, bytes) = t.usage();
            st.series += t.series_count();
            st.samples += samples;
            st.chunks += chunks;
            // Plus the tenant's name and its share of a B-tree node.
            st.bytes += bytes + name.capacity() + ALLOC_OVERHEAD + size_of::<String>();
        }
        st
    }

    /// The oldest and newest sample time of a tenant, `None` when it has no data.
    pub fn min_max_time(&self, tenant: &str) -> Option<(i64, i64)> {
        self.tenants.get(tenant)?.min_max_time()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
