//! One tenant's part of the head: symbols, series, the series-by-hash map and postings.

use std::mem::size_of;

use strata_model::{
    check_key, key_hash, key_pairs, ApplyReport, Label, Labels, MatchOp, Matcher, RejectReason,
    Sample,
};

use crate::postings::{intersect, subtract, union, Postings};
use crate::series::{OooPolicy, Outcome, Series};
use crate::symbols::{vec_heap_bytes, HashIndex, Interner};
use crate::HeadConfig;

#[derive(Debug)]
pub(crate) struct TenantHead {
    symbols: Interner,
    /// Indexed by series id (`SeriesRef.0`).
    series: Vec<Series>,
    by_hash: HashIndex,
    postings: Postings,
    /// Oldest and newest sample of any series; `(i64::MAX, i64::MIN)` while empty.
    min_t: i64,
    max_t: i64,
}

impl Default for TenantHead {
    fn default() -> Self {
        TenantHead {
            symbols: Interner::default(),
            series: Vec::new(),
            by_hash: HashIndex::default(),
            postings: Postings::default(),
            min_t: i64::MAX,
            max_t: i64::MIN,
        }
    }
}

impl TenantHead {
    pub(crate) fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub(crate) fn series_count(&self) -> usize {
        self.series.len()
    }

    pub(crate) fn min_max_time(&self) -> Option<(i64, i64)> {
        (!self.series.is_empty()).then_some((self.min_t, self.max_t))
    }

    pub(crate) fn series(&self) -> impl Iterator<Item = &Series> + '_ {
        self.series.iter()
    }

    /// `min_valid_t` is the head's, not part of `cfg`: it moves with flushes. `hint` is a
    /// series id that probably has this key (see [`TenantHead::first_id`]); it is checked like
    /// any other candidate.
    pub(crate) fn append(
        &mut self,
        cfg: &HeadConfig,
        min_valid_t: i64,
        (hash, key, hint): (u64, &[u8], Option<u32>),
        ts: &[i64],
        vs: &[f64],
        report: &mut ApplyReport,
    ) {
        let n = ts.len().min(vs.len());
        if n == 0 {
            return;
        }
        if min_valid_t > i64::MIN && ts[..n].iter().any(|&t| t < min_valid_t) {
            // Rare: samples for a range already flushed. Keep the rest.
            let (ts, vs): (Vec<i64>, Vec<f64>) =
                ts[..n].iter().zip(&vs[..n]).filter(|(&t, _)| t >= min_valid_t).unzip();
            let dropped = (n - ts.len()) as u64;
            report.reject(RejectReason::OutOfBounds, dropped, || {
                format!(
                    "{} for series {}: {dropped} samples older than {min_valid_t}, \
                     a time range already flushed to the object store",
                    RejectReason::OutOfBounds.message(),
                    labels_string(key)
                )
            });
            return self.append(cfg, i64::MIN, (hash, key, hint), &ts, &vs, report);
        }
        let hinted =
            hint.filter(|&id| self.series.get(id as usize).is_some_and(|s| *s.key == *key));
        let id = match hinted.or_else(|| self.lookup(hash, key)) {
            Some(id) => id,
            None => match self.create(hash, key, ts[0], vs[0]) {
                Ok(id) => {
                    report.series_created += 1;
                    report.appended += 1;
                    self.observe_time(ts[0]);
                    return self.append_to(cfg, id, key, &ts[1..n], &vs[1..n], report);
                }
                Err(why) => {
                    if report.examples.len() < 3 {
                        report.examples.push(format!(
                            "{why} for series {}; its {n} samples were dropped",
                            labels_string(key)
                        ));
                    }
                    return;
                }
            },
        };
        self.append_to(cfg, id, key, &ts[..n], &vs[..n], report);
    }

    fn append_to(
        &mut self,
        cfg: &HeadConfig,
        id: u32,
        key: &[u8],
        ts: &[i64],
        vs: &[f64],
        report: &mut ApplyReport,
    ) {
        for (&t, &v) in ts.iter().zip(vs) {
            let ooo = if cfg.ooo_window_ms > 0 {
                OooPolicy::From(self.max_t.saturating_sub(cfg.ooo_window_ms))
            } else {
                OooPolicy::Disabled
            };
            let Some(series) = self.series.get_mut(id as usize) else {
                return;
            };
            match series.append(t, v, cfg.samples_per_chunk, cfg.chunk_range_ms, ooo) {
                Outcome::Appended => {
                    report.appended += 1;
                    self.observe_time(t);
                }
                Outcome::Duplicate => report.duplicates_ignored += 1,
                Outcome::Rejected(reason) => report.reject(reason, 1, || {
                    format!("{} for series {}", reason.message(), labels_string(key))
                }),
            }
        }
    }

    /// The first series id stored under `hash`: the hint to pass to [`TenantHead::append`].
    #[inline]
    pub(crate) fn first_id(&self, hash: u64) -> Option<u32> {
        self.by_hash.first(hash)
    }

    /// Reads, for every series id, the memory its append will touch first (series, key, open
    /// chunk), all before any append. The loads do not depend on each other, so the CPU
    /// overlaps their cache misses, which one series at a time (each append waits on its own
    /// misses) it cannot. Changes nothing.
    pub(crate) fn warm(&self, ids: impl Iterator<Item = u32>) {
        let mut acc = 0u8;
        for id in ids {
            if let Some(s) = self.series.get(id as usize) {
                acc ^= s.touch();
            }
        }
        std::hint::black_box(acc);
    }

    /// Drops samples before `t` (whole chunks; one straddling `t` is kept) and the series left
    /// without any. Series ids change when a series goes, so the tenant is rebuilt then.
    pub(crate) fn truncate_before(&mut self, t: i64) {
        if self.min_t >= t {
            return;
        }
        let mut gone = 0usize;
        let mut live = Vec::with_capacity(self.series.len());
        for s in &mut self.series {
            let keep = s.truncate_before(t);
            gone += usize::from(!keep);
            live.push(keep);
        }
        if gone == 0 {
            self.recompute_times();
            return;
        }
        let old = std::mem::take(self);
        let mut series = old.series;
        for (s, keep) in series.drain(..).zip(live) {
            if !keep {
                continue;
            }
            let id = self.series.len() as u32;
            // The old interner held these strings, so the new one has room for them, and the
            // key was checked (UTF-8 included) when the series was created.
            self.index_pairs(&s.key, id);
            self.by_hash.insert(key_hash(&s.key), id);
            self.series.push(s);
        }
        self.recompute_times();
    }

    fn recompute_times(&mut self) {
        self.min_t = self.series.iter().map(|s| s.min_t).min().unwrap_or(i64::MAX);
        self.max_t = self.series.iter().map(|s| s.max_t).max().unwrap_or(i64::MIN);
    }

    fn observe_time(&mut self, t: i64) {
        self.min_t = self.min_t.min(t);
        self.max_t = self.max_t.max(t);
    }

    /// The series with exactly this key, checking every candidate of a shared hash.
    fn lookup(&self, hash: u64, key: &[u8]) -> Option<u32> {
        self.by_hash
            .get(hash)
            .find(|&id| self.series.get(id as usize).is_some_and(|s| *s.key == *key))
    }

    /// Adds series `id` to the postings of each of its key's pairs. `false` once the symbol
    /// space is used up (the pairs after that are left out).
    fn index_pairs(&mut self, key: &[u8], id: u32) -> bool {
        for (n, v) in key_pairs(key) {
            let (Ok(n), Ok(v)) = (std::str::from_utf8(n), std::str::from_utf8(v)) else {
                return false;
            };
            let (Some(n), Some(v)) = (self.symbols.intern(n), self.symbols.intern(v)) else {
                return false;
            };
            self.postings.add(n, v, id);
        }
        true
    }

    /// Validates the key and adds a series holding one sample.
    fn create(&mut self, hash: u64, key: &[u8], t: i64, v: f64) -> Result<u32, &'static str> {
        check_key(key)?;
        let id = u32::try_from(self.series.len()).map_err(|_| "too many series")?;
        if !self.index_pairs(key, id) {
            return Err("too many distinct label strings");
        }
        self.by_hash.insert(hash, id);
        self.series.push(Series::new(key.into(), t, v));
        Ok(id)
    }

    pub(crate) fn labels_of(&self, s: &Series) -> Labels {
        // Keys were checked to be UTF-8 when their series was created.
        let str = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Labels(key_pairs(&s.key).map(|(n, v)| Label { name: str(n), value: str(v) }).collect())
    }

    /// Whether series `id` has exactly `labels`.
    pub(crate) fn has_labels(&self, id: u32, labels: &Labels) -> bool {
        self.series.get(id as usize).is_some_and(|s| {
            key_pairs(&s.key).eq(labels.iter().map(|l| (l.name.as_bytes(), l.value.as_bytes())))
        })
    }

    pub(crate) fn labels(&self, id: u32) -> Option<Labels> {
        self.series.get(id as usize).map(|s| self.labels_of(s))
    }

    pub(crate) fn samples(&self, id: u32, mint: i64, maxt: i64) -> Vec<Sample> {
        self.series.get(id as usize).map(|s| s.samples(mint, maxt)).unwrap_or_default()
    }

    /// Ids of series matching every matcher and holding a sample in `[mint, maxt]`, sorted.
    pub(crate) fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<u32> {
        let mut ids = self.matching(matchers);
        ids.retain(|&id| self.series.get(id as usize).is_some_and(|s| s.has_sample_in(mint, maxt)));
        ids
    }

    /// Ids of series matching every matcher, regardless of time; sorted.
    fn matching(&self, matchers: &[Matcher]) -> Vec<u32> {
        let mut result: Option<Vec<u32>> = None;
        // First the matchers that only select series having the label.
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let set = self.postings_matching(m, true);
            result = Some(match result {
                None => set,
                Some(r) => intersect(&r, &set),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| (0..self.series.len() as u32).collect());
        // Then those that also match series lacking the label: remove the series that have
        // the label with a value that does not match.
        for m in matchers.iter().filter(|m| m.matches_empty()) {
            let remove = self.postings_matching(m, false);
            if !remove.is_empty() {
                result = subtract(&result, &remove);
            }
        }
        result
    }

    /// Series having label `m.name` with a value for which `m.matches` equals `want`.
    fn postings_matching(&self, m: &Matcher, want: bool) -> Vec<u32> {
        let Some(name) = self.symbols.get(&m.name) else {
            return Vec::new();
        };
        let exact = matches!((m.op, want), (MatchOp::Equal, true) | (MatchOp::NotEqual, false));
        if exact {
            // The values that qualify are exactly `m.value`.
            return match self.symbols.get(&m.value) {
                Some(value) => self.postings.get(name, value).to_vec(),
                None => Vec::new(),
            };
        }
        union(
            self.postings
                .values(name)
                .filter(|&(value, _)| m.matches(self.symbols.resolve(value)) == want)
                .map(|(_, ids)| ids),
        )
    }

    pub(crate) fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        if matchers.is_empty() {
            let mut names: Vec<u32> = self
                .postings
                .names()
                .filter(|&name| {
                    self.postings.values(name).any(|(_, ids)| self.any_in_range(ids, mint, maxt))
                })
                .collect();
            names.sort_unstable();
            names.dedup();
            return self.sorted_strings(names);
        }
        let mut names = Vec::new();
        for id in self.select(matchers, mint, maxt) {
            if let Some(s) = self.series.get(id as usize) {
                names.extend(key_pairs(&s.key).map(|(n, _)| n));
            }
        }
        byte_strings(names)
    }

    pub(crate) fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        let Some(sym) = self.symbols.get(name) else {
            return Vec::new();
        };
        if matchers.is_empty() {
            let mut values: Vec<u32> = self
                .postings
                .values(sym)
                .filter(|(_, ids)| self.any_in_range(ids, mint, maxt))
                .map(|(value, _)| value)
                .collect();
            values.sort_unstable();
            values.dedup();
            return self.sorted_strings(values);
        }
        let values = self
            .select(matchers, mint, maxt)
            .into_iter()
            .filter_map(|id| {
                let s = self.series.get(id as usize)?;
                key_pairs(&s.key).find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
            })
            .collect();
        byte_strings(values)
    }

    fn any_in_range(&self, ids: &[u32], mint: i64, maxt: i64) -> bool {
        ids.iter()
            .any(|&id| self.series.get(id as usize).is_some_and(|s| s.has_sample_in(mint, maxt)))
    }

    fn sorted_strings(&self, syms: Vec<u32>) -> Vec<String> {
        let mut out: Vec<String> =
            syms.into_iter().map(|s| self.symbols.resolve(s).to_owned()).collect();
        out.sort_unstable();
        out
    }

    /// (samples, chunks, heap bytes) of this tenant.
    pub(crate) fn usage(&self) -> (u64, usize, usize) {
        let mut samples = 0u64;
        let mut chunks = 0;
        let mut bytes = self.symbols.heap_bytes()
            + vec_heap_bytes(&self.series)
            + self.by_hash.heap_bytes()
            + self.postings.heap_bytes();
        for s in &self.series {
            samples += s.num_samples() as u64;
            chunks += s.num_chunks();
            bytes += s.heap_bytes();
        }
        (samples, chunks, bytes + size_of::<Self>())
    }
}

/// Distinct byte strings as sorted strings (byte order is UTF-8's code point order).
fn byte_strings(mut v: Vec<&[u8]>) -> Vec<String> {
    v.sort_unstable();
    v.dedup();
    v.into_iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
}

/// A series key in Prometheus's notation, `{__name__="up", job="node"}`; `…` marks where a
/// malformed one stops making sense.
pub(crate) fn labels_string(key: &[u8]) -> String {
    let mut out = String::from("{");
    let mut pairs = key_pairs(key);
    for (i, (name, value)) in pairs.by_ref().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let (name, value) = (String::from_utf8_lossy(name), String::from_utf8_lossy(value));
        out.push_str(&format!("{name}={value:?}"));
    }
    if !pairs.rest().is_empty() {
        out.push('…');
    }
    out.push('}');
    out
}
