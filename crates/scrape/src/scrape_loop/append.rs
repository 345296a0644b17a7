//! What one scrape turns into, without I/O: target labels merged into the scraped series
//! (Prometheus' `mutateSampleLabels`), `metric_relabel_configs`, the limits, the series
//! that went stale since the previous scrape, and the five report series.
use std::collections::HashMap;
use std::time::Duration;

use strata_model::{Labels, METRIC_NAME, STALE_NAN_BITS};

use crate::config::Limits;
use crate::expfmt::{Exemplar, Sample};
use crate::relabel::{relabel, Builder, RelabelConfig};

/// One sample to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Out {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
    pub exemplar: Option<Exemplar>,
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

/// The series remembered from the previous scrape, for staleness and `scrape_series_added`.
#[derive(Debug, Default)]
pub(crate) struct SeriesMemory {
    /// Every series of the previous successful scrape; `true` when it is tracked for
    /// staleness (it had no explicit timestamp, or `track_timestamps_staleness` is set).
    prev: HashMap<Labels, bool>,
}

fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

impl SeriesMemory {
    /// Appends a successful scrape's samples and the markers of the tracked series it no
    /// longer has to `out`. On error (a limit, a series without a name) `out` is left as it
    /// was and the memory is untouched; the caller then calls [`SeriesMemory::stale_all`].
    pub fn append(
        &mut self,
        rules: &AppendRules,
        samples: Vec<Sample>,
        ts: i64,
        out: &mut Vec<Out>,
    ) -> Result<Counts, (String, Counts)> {
        let start = out.len();
        let mut counts = Counts { total: samples.len() as u64, ..Counts::default() };
        let mut cur: HashMap<Labels, bool> = HashMap::with_capacity(self.prev.len());
        let mut limit_exceeded = false;
        let fail = |msg: String, counts: Counts, out: &mut Vec<Out>| {
            out.truncate(start);
            Err((msg, counts))
        };
        for s in samples {
            let Some(labels) = mutate(&s.labels, rules) else {
                continue;
            };
            if labels.get(METRIC_NAME).is_none() {
                return fail("__name__ label is mandatory".into(), counts, out);
            }
            if let Err(msg) = check_label_limits(&labels, &rules.limits) {
                return fail(msg, counts, out);
            }
            // Counted even when refused below, as Prometheus does.
            counts.added += 1;
            let limit = rules.limits.sample_limit;
            if limit > 0 && counts.added > limit {
                // Keep counting so the report says how many samples there were.
                limit_exceeded = true;
                continue;
            }
            if limit_exceeded || cur.contains_key(&labels) {
                // A duplicate series in one scrape: the first sample wins.
                continue;
            }
            let explicit = s.explicit_timestamp && rules.honor_timestamps;
            let t = if explicit { s.timestamp_ms } else { ts };
            let tracked = !explicit || rules.track_timestamps_staleness;
            if !self.prev.contains_key(&labels) {
                counts.series_added += 1;
            }
            let exemplar = s.exemplar.map(|mut e| {
                e.timestamp_ms = e.timestamp_ms.or(Some(t));
                e
            });
            cur.insert(labels.clone(), tracked);
            out.push(Out { labels, t, v: s.value, exemplar });
        }
        if limit_exceeded {
            return fail("sample limit exceeded".into(), counts, out);
        }
        for (labels, tracked) in self.prev.drain() {
            if tracked && cur.get(&labels) != Some(&true) {
                out.push(Out { labels, t: ts, v: stale_nan(), exemplar: None });
            }
        }
        self.prev = cur;
        Ok(counts)
    }

    /// Markers at `ts` for every tracked series of the previous scrape, which is forgotten:
    /// what a failed scrape or a stopped target writes.
    pub fn stale_all(&mut self, ts: i64, out: &mut Vec<Out>) {
        for (labels, tracked) in self.prev.drain() {
            if tracked {
                out.push(Out { labels, t: ts, v: stale_nan(), exemplar: None });
            }
        }
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

/// The report series' labels: the name plus the target's labels (never relabeled).
fn report_labels(name: &str, target: &Labels) -> Labels {
    let mut v = Vec::with_capacity(target.len() + 1);
    v.push((METRIC_NAME, name));
    v.extend(target.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    Labels::from_pairs(v.into_iter().filter(|(_, v)| !v.is_empty()))
}

/// The five series Prometheus writes after every scrape.
pub(crate) fn report(
    target: &Labels,
    ts: i64,
    up: bool,
    duration: Duration,
    counts: Counts,
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
        out.push(Out { labels: report_labels(name, target), t: ts, v, exemplar: None });
    }
}

/// Markers for the report series, written when the target goes away.
pub(crate) fn report_stale(target: &Labels, ts: i64, out: &mut Vec<Out>) {
    for name in [UP, DURATION, SAMPLES_SCRAPED, POST_RELABEL, SERIES_ADDED] {
        out.push(Out {
            labels: report_labels(name, target),
            t: ts,
            v: stale_nan(),
            exemplar: None,
        });
    }
}
