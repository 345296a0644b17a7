//! An in-memory [`Queryable`] for tests, the `.test` script runner and benchmarks.
//!
//! Series live in a `Vec`, each with its samples sorted by time; a map from label set to
//! series and a metric-name index make appends and `name`-equality selects cheap. Appends
//! follow the reference storage of Prometheus' test scripts: per series only samples newer
//! than the last one are accepted, except that re-appending the newest sample with the same
//! value is a no-op. The tenant is ignored.

use std::collections::HashMap;

use async_trait::async_trait;
use strata_model::{
    Error, Labels, MatchOp, Matcher, Queryable, RawSeries, RejectReason, Result, Sample, TenantId,
    METRIC_NAME,
};

/// In-memory float series. See the module docs.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: Vec<MemSeries>,
    by_labels: HashMap<Labels, usize>,
    /// Metric name ("" for series without one) to indexes into `series`.
    by_name: HashMap<String, Vec<usize>>,
}

#[derive(Debug, Clone)]
struct MemSeries {
    labels: Labels,
    samples: Vec<Sample>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of samples over all series.
    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// Appends one sample. Fails with [`Error::Invalid`] (and changes nothing) when `t` is
    /// older than the series' newest sample, or equal to it with a different value (values
    /// are compared bit for bit, so a repeated NaN is accepted).
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<()> {
        let idx = self.series_index(labels);
        push(&mut self.series[idx].samples, labels, Sample { t, v })
    }

    /// Appends samples of one series in order (one series lookup for all of them); stops
    /// at the first rejected one.
    pub fn append_all(
        &mut self,
        labels: &Labels,
        samples: impl IntoIterator<Item = Sample>,
    ) -> Result<()> {
        let idx = self.series_index(labels);
        let series = &mut self.series[idx].samples;
        samples.into_iter().try_for_each(|s| push(series, labels, s))
    }

    fn series_index(&mut self, labels: &Labels) -> usize {
        if let Some(&idx) = self.by_labels.get(labels) {
            return idx;
        }
        let idx = self.series.len();
        self.series.push(MemSeries { labels: labels.clone(), samples: Vec::new() });
        self.by_labels.insert(labels.clone(), idx);
        let name = labels.get(METRIC_NAME).unwrap_or("").to_string();
        self.by_name.entry(name).or_default().push(idx);
        idx
    }

    /// The series matching all `matchers` with their samples in `[mint, maxt]`; series
    /// without samples in the range are left out. In insertion order.
    pub fn select_sync(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<RawSeries> {
        let name_eq = matchers.iter().find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal);
        let candidates: Box<dyn Iterator<Item = &MemSeries>> = match name_eq {
            Some(m) => {
                Box::new(self.by_name.get(&m.value).into_iter().flatten().map(|&i| &self.series[i]))
            }
            None => Box::new(self.series.iter()),
        };
        candidates
            .filter(|s| matchers.iter().all(|m| m.matches(s.labels.get(&m.name).unwrap_or(""))))
            .filter_map(|s| {
                let lo = s.samples.partition_point(|x| x.t < mint);
                let hi = s.samples.partition_point(|x| x.t <= maxt);
                (lo < hi).then(|| RawSeries {
                    labels: s.labels.clone(),
                    samples: s.samples[lo..hi].to_vec(),
                })
            })
            .collect()
    }
}

fn push(samples: &mut Vec<Sample>, labels: &Labels, s: Sample) -> Result<()> {
    if let Some(last) = samples.last() {
        if s.t < last.t {
            return Err(reject(RejectReason::OutOfOrder, labels, s.t));
        }
        if s.t == last.t {
            if last.v.to_bits() == s.v.to_bits() {
                return Ok(());
            }
            return Err(reject(RejectReason::DuplicateTimestamp, labels, s.t));
        }
    }
    samples.push(s);
    Ok(())
}

fn reject(reason: RejectReason, labels: &Labels, t: i64) -> Error {
    let pairs: Vec<String> = labels.iter().map(|l| format!("{}={:?}", l.name, l.value)).collect();
    Error::Invalid(format!("{} for series {{{}}} at t={t}", reason.message(), pairs.join(", ")))
}

#[async_trait]
impl Queryable for MemStorage {
    async fn select(
        &self,
        _tenant: &TenantId,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<RawSeries>> {
        Ok(self.select_sync(matchers, mint, maxt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn append_rules() {
        let mut m = MemStorage::new();
        let a = l(&[("__name__", "a")]);
        m.append(&a, 10, 1.0).unwrap();
        m.append(&a, 10, 1.0).unwrap();
        assert!(m.append(&a, 10, 2.0).is_err());
        assert!(m.append(&a, 5, 2.0).is_err());
        m.append(&a, 20, f64::NAN).unwrap();
        m.append(&a, 20, f64::NAN).unwrap();
        // Other series are independent.
        m.append(&l(&[("__name__", "b")]), 0, 1.0).unwrap();
        assert_eq!(m.series_count(), 2);
        assert_eq!(m.sample_count(), 3);
        let c = l(&[("__name__", "c")]);
        let samples = [(1, 1.0), (2, 2.0), (2, 2.0), (1, 0.0), (3, 3.0)];
        let err = m.append_all(&c, samples.map(|(t, v)| Sample { t, v })).unwrap_err();
        assert!(err.to_string().starts_with("out of order sample"), "{err}");
        assert_eq!(m.sample_count(), 5);
    }

    #[test]
    fn select_by_matchers_and_range() {
        let mut m = MemStorage::new();
        let a1 = l(&[("__name__", "a"), ("job", "x")]);
        let a2 = l(&[("__name__", "a")]);
        let nameless = l(&[("job", "x")]);
        for t in 0..10 {
            m.append(&a1, t * 10, t as f64).unwrap();
            m.append(&a2, t * 10, t as f64).unwrap();
            m.append(&nameless, t * 10, t as f64).unwrap();
        }
        let eq = |n: &str, v: &str| Matcher::new(MatchOp::Equal, n, v).unwrap();
        let got = m.select_sync(&[eq("__name__", "a")], 20, 40);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples.iter().map(|s| s.t).collect::<Vec<_>>(), vec![20, 30, 40]);
        // Absent labels match as "".
        let got = m.select_sync(&[eq("__name__", "a"), eq("job", "")], 0, 100);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels, a2);
        let re = Matcher::new(MatchOp::Regex, "job", "x").unwrap();
        assert_eq!(m.select_sync(&[re], 0, 100).len(), 2);
        // Empty ranges leave series out.
        assert!(m.select_sync(&[eq("__name__", "a")], 91, 200).is_empty());
        assert!(m.select_sync(&[eq("__name__", "nope")], 0, 100).is_empty());
    }
}
