//! What one scrape turns into, without I/O: target labels merged into the scraped series
//! (Prometheus' `mutateSampleLabels`), `metric_relabel_configs`, the limits, the series
//! that went stale since the previous scrape, and the five report series.
//!
//! Like Prometheus' scrape cache, a loop remembers what each scraped label set became (its
//! final labels, already encoded for remote write, or "dropped by relabeling"), so a series
//! seen before costs one hash lookup per scrape instead of merging, relabeling, checking and
//! encoding its labels again.
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::time::Duration;

use strata_model::{Labels, METRIC_NAME, STALE_NAN_BITS};

use crate::config::Limits;
#[cfg(doc)]
use crate::expfmt::RawKey;
use crate::expfmt::{Exemplar, Sample};
use crate::relabel::{relabel, Builder, RelabelConfig};

/// A series as it is written: the `labels` fields of a `prometheus.TimeSeries` message,
/// encoded once when the series is first seen.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Series {
    pub encoded: Box<[u8]>,
}

impl Series {
    fn new(labels: &Labels) -> Self {
        let mut buf =
            Vec::with_capacity(labels.iter().map(|l| l.name.len() + l.value.len() + 6).sum());
        for l in labels.iter() {
            let inner = field_len(l.name.len()) + field_len(l.value.len());
            buf.push(0x0a); // TimeSeries.labels, length-delimited
            prost::encoding::encode_varint(inner as u64, &mut buf);
            buf.push(0x0a); // Label.name
            prost::encoding::encode_varint(l.name.len() as u64, &mut buf);
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0x12); // Label.value
            prost::encoding::encode_varint(l.value.len() as u64, &mut buf);
            buf.extend_from_slice(l.value.as_bytes());
        }
        Series { encoded: buf.into_boxed_slice() }
    }

    /// The labels back from their encoding.
    #[cfg(test)]
    pub fn labels(&self) -> Labels {
        use prost::Message;
        let ts =
            strata_proto::prometheus::TimeSeries::decode(&self.encoded[..]).unwrap_or_default();
        Labels::from_pairs(ts.labels.iter().map(|l| {
            (
                String::from_utf8_lossy(&l.name).into_owned(),
                String::from_utf8_lossy(&l.value).into_owned(),
            )
        }))
    }
}

/// Bytes of a length-delimited field of `len` bytes with a one-byte key.
fn field_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// One sample to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Out {
    pub series: Arc<Series>,
    pub t: i64,
    pub v: f64,
    pub exemplar: Option<Exemplar>,
}

impl Out {
    pub(crate) fn new(labels: &Labels, t: i64, v: f64) -> Self {
        Out { series: Arc::new(Series::new(labels)), t, v, exemplar: None }
    }
}

/// How scraped samples are turned into series.
#[derive(Debug, Clone)]
pub(crate) struct AppendRules {
    /// The target's public labels.
    pub target: Labels,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub metric_relabel: Vec<RelabelConfig>,
    pub limits: Limits,
}

/// Counts for the report series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Samples in the body (`scrape_samples_scraped`).
    pub total: u64,
    /// Samples left after metric relabeling (`scrape_samples_post_metric_relabeling`).
    pub added: u64,
    /// Series not seen in the previous scrape (`scrape_series_added`).
    pub series_added: u64,
}

/// A hasher that passes through the one `u64` written to it: keys hash themselves with xxh3.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached through `[u8]`'s `Hash`, which first writes the length (below).
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<PassThrough>>;

/// The cache key of a sample: its text-format series bytes (see [`RawKey::write`]), or else
/// its scraped label set flattened to `0 name 0xff value 0xff ...`.
fn sample_key(s: &Sample, body: &[u8], out: &mut Vec<u8>) {
    if let Some(raw) = s.raw {
        raw.write(body, out);
        return;
    }
    let labels = &s.labels;
    out.clear();
    out.push(0);
    for l in labels.iter() {
        out.extend_from_slice(l.name.as_bytes());
        out.push(0xff);
        out.extend_from_slice(l.value.as_bytes());
        out.push(0xff);
    }
}

/// What a scraped label set became.
#[derive(Debug, Clone, Copy)]
enum Cached {
    /// Dropped by `metric_relabel_configs`.
    Dropped,
    /// Written as the series in this slot.
    Series(usize),
}

#[derive(Debug)]
struct CacheEntry {
    what: Cached,
    /// The last scrape (iteration) that had it.
    seen: u64,
}

/// A distinct written series and its staleness state.
#[derive(Debug)]
struct Slot {
    series: Arc<Series>,
    /// The last scrape that wrote it.
    seen: u64,
    /// Whether that write tracks it for staleness (it had no explicit timestamp, or
    /// `track_timestamps_staleness` is set).
    tracked: bool,
    /// Whether the scrape before `seen` wrote it, tracked (so a failed scrape that already
    /// updated the slot still knows what the last good scrape left).
    prev_tracked: bool,
}

impl Slot {
    /// Whether scrape `last_ok` (the last that succeeded; 0 for none) wrote it, tracked, even
    /// when a later scrape has already updated the slot.
    fn tracked_by(&self, last_ok: u64) -> bool {
        if self.seen > last_ok {
            self.prev_tracked
        } else {
            last_ok > 0 && self.seen == last_ok && self.tracked
        }
    }
}

/// The series remembered from the previous scrape, for staleness and `scrape_series_added`,
/// and the cache of what scraped label sets become.
#[derive(Debug, Default)]
pub(crate) struct SeriesMemory {
    /// Scrapes appended so far; the number of the current one while appending.
    iter: u64,
    /// The last scrape that succeeded.
    last_ok: u64,
    cache: Map<Box<[u8]>, CacheEntry>,
    /// Slot of each distinct series, by its encoding.
    by_series: Map<Box<[u8]>, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// After failed scrapes: the series of the last good one, which the next good scrape
    /// does not count as added (Prometheus keeps its series cache over a failure).
    before_failure: std::collections::HashSet<Box<[u8]>>,
}

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

impl SeriesMemory {
    /// The slot of `labels` (final, checked), creating it.
    fn slot_of(&mut self, labels: &Labels) -> usize {
        let series = Series::new(labels);
        if let Some(&i) = self.by_series.get(&series.encoded[..]) {
            return i;
        }
        let key = series.encoded.clone();
        let slot = Slot { series: Arc::new(series), seen: 0, tracked: false, prev_tracked: false };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.by_series.insert(key, i);
        i
    }

    /// Whether the cache knows this key (see [`crate::expfmt::parse_cached`]).
    pub fn knows(&self, key: &[u8]) -> bool {
        self.cache.contains_key(key)
    }

    /// Appends a successful scrape's samples (parsed from `body`) and the markers of the
    /// tracked series it no longer has to `out`. On error (a limit, a series without a name)
    /// `out` is left as it was; the caller then calls [`SeriesMemory::stale_all`].
    pub fn append(
        &mut self,
        rules: &AppendRules,
        samples: Vec<Sample>,
        body: &[u8],
        ts: i64,
        out: &mut Vec<Out>,
    ) -> Result<Counts, (String, Counts)> {
        let start = out.len();
        self.iter += 1;
        let it = self.iter;
        let mut counts = Counts { total: samples.len() as u64, ..Counts::default() };
        let mut limit_exceeded = false;
        let fail = |msg: String, counts: Counts, out: &mut Vec<Out>| {
            out.truncate(start);
            Err((msg, counts))
        };
        let mut key = Vec::with_capacity(256);
        let (mut cache_seen, mut slots_seen) = (0usize, 0usize);
        for s in samples {
            sample_key(&s, body, &mut key);
            let what = match self.cache.get_mut(&key[..]) {
                Some(e) => {
                    if e.seen != it {
                        e.seen = it;
                        cache_seen += 1;
                    }
                    e.what
                }
                None if s.labels.is_empty() => {
                    // The parser skipped the labels because the cache had the series, and
                    // nothing is evicted in between: cannot happen, but never guess.
                    return fail("scrape cache lost a series during a scrape".into(), counts, out);
                }
                None => {
                    let what = match mutate(&s.labels, rules) {
                        None => Cached::Dropped,
                        Some(labels) => {
                            if labels.get(METRIC_NAME).is_none() {
                                return fail("__name__ label is mandatory".into(), counts, out);
                            }
                            if let Err(msg) = check_label_limits(&labels, &rules.limits) {
                                return fail(msg, counts, out);
                            }
                            Cached::Series(self.slot_of(&labels))
                        }
                    };
                    self.cache.insert(key.as_slice().into(), CacheEntry { what, seen: it });
                    cache_seen += 1;
                    what
                }
            };
            let Cached::Series(i) = what else { continue };
            // Counted even when refused below, as Prometheus does.
            counts.added += 1;
            let limit = rules.limits.sample_limit;
            if limit > 0 && counts.added > limit {
                // Keep counting so the report says how many samples there were.
                limit_exceeded = true;
                continue;
            }
            let Some(slot) = self.slots.get_mut(i).and_then(Option::as_mut) else { continue };
            if limit_exceeded || slot.seen == it {
                // A duplicate series in one scrape: the first sample wins.
                continue;
            }
            let explicit = s.explicit_timestamp && rules.honor_timestamps;
            let t = if explicit { s.timestamp_ms } else { ts };
            if self.last_ok > 0 && slot.seen == self.last_ok {
                slot.prev_tracked = slot.tracked;
            } else {
                if !self.before_failure.contains(&slot.series.encoded[..]) {
                    counts.series_added += 1;
                }
                slot.prev_tracked = false;
            }
            slot.seen = it;
            slot.tracked = !explicit || rules.track_timestamps_staleness;
            slots_seen += 1;
            let exemplar = s.exemplar.map(|mut e| {
                e.timestamp_ms = e.timestamp_ms.or(Some(t));
                e
            });
            out.push(Out { series: Arc::clone(&slot.series), t, v: s.value, exemplar });
        }
        if limit_exceeded {
            return fail("sample limit exceeded".into(), counts, out);
        }
        // Markers for what the previous scrape had, tracked, and this one does not.
        let prev = self.last_ok;
        for slot in self.slots.iter().flatten() {
            if slot.tracked_by(prev) && !(slot.seen == it && slot.tracked) {
                out.push(Out {
                    series: Arc::clone(&slot.series),
                    t: ts,
                    v: stale_nan(),
                    exemplar: None,
                });
            }
        }
        self.last_ok = it;
        self.before_failure = Default::default();
        // Forget what this scrape did not have.
        if slots_seen != self.by_series.len() {
            for (i, entry) in self.slots.iter_mut().enumerate() {
                if entry.as_ref().is_some_and(|s| s.seen != it) {
                    if let Some(s) = entry.take() {
                        self.by_series.remove(&s.series.encoded[..]);
                        self.free.push(i);
                    }
                }
            }
        }
        if cache_seen != self.cache.len() {
            self.cache.retain(|_, e| e.seen == it);
        }
        Ok(counts)
    }

    /// Markers at `ts` for every tracked series of the last successful scrape, which is
    /// forgotten: what a failed scrape or a stopped target writes.
    pub fn stale_all(&mut self, ts: i64, out: &mut Vec<Out>) {
        let prev = self.last_ok;
        for slot in self.slots.drain(..).flatten() {
            if slot.tracked_by(prev) {
                out.push(Out { series: slot.series, t: ts, v: stale_nan(), exemplar: None });
            }
        }
        // The first failure after a good scrape remembers that scrape's series.
        if prev > 0 {
            self.before_failure = self.by_series.drain().map(|(k, _)| k).collect();
        }
        self.by_series.clear();
        self.free.clear();
        self.cache.clear();
        // The next scrape starts afresh: nothing counts as seen in the previous one.
        self.last_ok = 0;
    }
}

/// The target's labels merged into a scraped label set, then `metric_relabel_configs`.
/// `None` when relabeling dropped the series.
fn mutate(scraped: &Labels, rules: &AppendRules) -> Option<Labels> {
    let mut b = Builder::new(scraped);
    if rules.honor_labels {
        for l in rules.target.iter() {
            if scraped.get(&l.name).is_none() {
                b.set(&l.name, l.value.clone());
            }
        }
    } else {
        let mut conflicts = Vec::new();
        for l in rules.target.iter() {
            if let Some(v) = scraped.get(&l.name).filter(|v| !v.is_empty()) {
                conflicts.push((l.name.as_str(), v));
            }
            b.set(&l.name, l.value.clone());
        }
        // Shorter names first, each renamed `exported_<name>` (more prefixes while taken).
        conflicts.sort_by_key(|(name, _)| name.len());
        for (name, value) in conflicts {
            let mut new_name = name.to_string();
            loop {
                new_name.insert_str(0, "exported_");
                if b.get(&new_name).is_empty() {
                    b.set(&new_name, value.to_string());
                    break;
                }
            }
        }
    }
    let labels = b.labels();
    if rules.metric_relabel.is_empty() {
        return Some(labels);
    }
    relabel(&labels, &rules.metric_relabel).filter(|l| !l.is_empty())
}

/// `label_limit`, `label_name_length_limit` and `label_value_length_limit`, with
/// Prometheus' messages. Lengths are in bytes, as Go's `len`.
fn check_label_limits(labels: &Labels, limits: &Limits) -> Result<(), String> {
    let metric: String = labels.get(METRIC_NAME).unwrap_or_default().chars().take(50).collect();
    if limits.label_limit > 0 && labels.len() as u64 > limits.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            labels.len(),
            limits.label_limit
        ));
    }
    for l in labels.iter() {
        let (name_limit, value_limit) =
            (limits.label_name_length_limit, limits.label_value_length_limit);
        if name_limit > 0 && l.name.len() as u64 > name_limit {
            let name: String = l.name.chars().take(50).collect();
            return Err(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {}, limit: {name_limit})",
                l.name.len()
            ));
        }
        if value_limit > 0 && l.value.len() as u64 > value_limit {
            let value: String = l.value.chars().take(50).collect();
            return Err(format!(
                "label_value_length_limit exceeded (metric: {metric}, label value: {value}, length: {}, limit: {value_limit})",
                l.value.len()
            ));
        }
    }
    Ok(())
}

pub(crate) const UP: &str = "up";
pub(crate) const DURATION: &str = "scrape_duration_seconds";
pub(crate) const SAMPLES_SCRAPED: &str = "scrape_samples_scraped";
pub(crate) const POST_RELABEL: &str = "scrape_samples_post_metric_relabeling";
pub(crate) const SERIES_ADDED: &str = "scrape_series_added";
const TIMEOUT_SECONDS: &str = "scrape_timeout_seconds";
const SAMPLE_LIMIT: &str = "scrape_sample_limit";
const BODY_SIZE: &str = "scrape_body_size_bytes";

/// What `extra_scrape_metrics` adds to the report of one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ExtraReport {
    pub timeout: Duration,
    pub sample_limit: u64,
    /// The uncompressed body's size; -1 when the body size limit failed the scrape, 0 after
    /// any other failure.
    pub body_bytes: i64,
}

/// The report series' labels: the name plus the target's labels (never relabeled).
fn report_labels(name: &str, target: &Labels) -> Labels {
    let mut v = Vec::with_capacity(target.len() + 1);
    v.push((METRIC_NAME, name));
    v.extend(target.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    Labels::from_pairs(v.into_iter().filter(|(_, v)| !v.is_empty()))
}

/// The five series Prometheus writes after every scrape, and the three of
/// `extra_scrape_metrics` when it is on.
pub(crate) fn report(
    target: &Labels,
    ts: i64,
    up: bool,
    duration: Duration,
    counts: Counts,
    extra: Option<ExtraReport>,
    out: &mut Vec<Out>,
) {
    let values = [
        (UP, if up { 1.0 } else { 0.0 }),
        (DURATION, duration.as_secs_f64()),
        (SAMPLES_SCRAPED, counts.total as f64),
        (POST_RELABEL, counts.added as f64),
        (SERIES_ADDED, counts.series_added as f64),
    ];
    for (name, v) in values {
        out.push(Out::new(&report_labels(name, target), ts, v));
    }
    if let Some(x) = extra {
        for (name, v) in [
            (TIMEOUT_SECONDS, x.timeout.as_secs_f64()),
            (SAMPLE_LIMIT, x.sample_limit as f64),
            (BODY_SIZE, x.body_bytes as f64),
        ] {
            out.push(Out::new(&report_labels(name, target), ts, v));
        }
    }
}

/// Markers for the report series, written when the target goes away.
pub(crate) fn report_stale(target: &Labels, ts: i64, extra: bool, out: &mut Vec<Out>) {
    let extras = if extra { &[TIMEOUT_SECONDS, SAMPLE_LIMIT, BODY_SIZE][..] } else { &[] };
    for name in [UP, DURATION, SAMPLES_SCRAPED, POST_RELABEL, SERIES_ADDED].iter().chain(extras) {
        out.push(Out::new(&report_labels(name, target), ts, stale_nan()));
    }
}
