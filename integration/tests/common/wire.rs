//! Building remote-write requests and reading Prometheus API answers.
use std::collections::{BTreeMap, BTreeSet};

use prost::bytes::Bytes;
use serde_json::Value;
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_proto::write_v2;

use super::Resp;

/// One series' labels.
pub type LabelSet = BTreeMap<String, String>;

/// `/api/v1/series` data as a set of label sets.
pub fn series_set(data: &Value) -> BTreeSet<LabelSet> {
    data.as_array()
        .expect("series data is an array")
        .iter()
        .map(|s| {
            s.as_object()
                .expect("series is an object")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("label value is a string").to_string()))
                .collect()
        })
        .collect()
}

/// A string array (labels, label values) as a Vec.
pub fn strings(data: &Value) -> Vec<String> {
    data.as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

pub fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(raw).expect("snappy compress")
}

pub fn label(name: &str, value: &str) -> Label {
    Label {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

/// A 1.0 series; `labels` are used as given (order and duplicates kept, for bad-input tests).
pub fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        ..Default::default()
    }
}

pub fn write_request(series: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest { timeseries: series, ..Default::default() }
}

/// Builds a remote-write 2.0 request with its symbols table (`symbols[0]` is "").
#[derive(Default)]
pub struct V2Builder {
    symbols: Vec<String>,
    index: BTreeMap<String, u32>,
    pub series: Vec<write_v2::TimeSeries>,
}

impl V2Builder {
    pub fn new() -> Self {
        let mut b = V2Builder::default();
        b.sym("");
        b
    }

    /// The reference of `s`, adding it to the table when new.
    pub fn sym(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.symbols.len() as u32;
        self.symbols.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }

    /// Label references for `labels` (sorted by name, as the spec asks).
    pub fn refs(&mut self, labels: &[(&str, &str)]) -> Vec<u32> {
        let mut sorted = labels.to_vec();
        sorted.sort();
        sorted.iter().flat_map(|(n, v)| [self.sym(n), self.sym(v)]).collect()
    }

    pub fn add(
        &mut self,
        labels: &[(&str, &str)],
        samples: &[(i64, f64)],
    ) -> &mut write_v2::TimeSeries {
        let labels_refs = self.refs(labels);
        self.series.push(write_v2::TimeSeries {
            labels_refs,
            samples: samples
                .iter()
                .map(|&(timestamp, value)| write_v2::Sample {
                    value,
                    timestamp,
                    start_timestamp: 0,
                })
                .collect(),
            ..Default::default()
        });
        self.series.last_mut().expect("just pushed")
    }

    pub fn build(&self) -> write_v2::Request {
        write_v2::Request {
            symbols: self.symbols.iter().map(|s| Bytes::from(s.clone())).collect(),
            timeseries: self.series.clone(),
        }
    }
}

/// Sum of every sample of `metric` in a Prometheus text exposition whose labels contain all of
/// `label_parts` (substrings such as `reason="x"`); None when the metric is absent.
pub fn metric_sum(text: &str, metric: &str, label_parts: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let (labels, value) = match rest.rfind('}') {
            Some(i) => (&rest[..=i], rest[i + 1..].trim()),
            None => ("", rest.trim()),
        };
        if !label_parts.iter().all(|p| labels.contains(p)) {
            continue;
        }
        let v: f64 = value.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
        *found.get_or_insert(0.0) += v;
    }
    found
}

/// The metric names of a series set, in order.
pub fn names(set: &BTreeSet<LabelSet>) -> Vec<String> {
    set.iter().map(|s| s["__name__"].clone()).collect()
}

/// Asserts the status of a refused request and that its message names each of `needles`.
pub fn assert_refused(r: &Resp, status: u16, needles: &[&str], what: &str) {
    assert_eq!(r.status, status, "{what}: expected {status}, got {} {:?}", r.status, r.body);
    let body = r.body.to_lowercase();
    for n in needles {
        assert!(
            body.contains(&n.to_lowercase()),
            "{what}: message {:?} does not name {n:?}",
            r.body
        );
    }
}
