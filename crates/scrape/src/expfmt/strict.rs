//! The OpenMetrics 1.0 rules beyond syntax, which Prometheus does not enforce: metadata
//! before samples and once per family, family names that do not clash, contiguous metric
//! points, per-type suffixes, labels and value ranges, histogram bucket order and totals,
//! exemplars only where allowed, and timestamps that never go back.

use std::collections::{HashMap, HashSet};

use super::lex;
use super::{MetricType, ParseError, RawSample, Result};

#[derive(Default)]
pub(crate) struct Strict {
    family: Option<Family>,
    /// Every family name so far, and every sample name those families may use.
    family_names: HashSet<String>,
    claimed: HashSet<String>,
}

#[derive(Default)]
struct Family {
    name: String,
    kind: MetricType,
    seen: HashSet<&'static str>,
    unit: String,
    has_samples: bool,
    closed: HashSet<Vec<(String, String)>>,
    group: Option<Group>,
}

/// One metric point: the samples sharing labels other than `le`/`quantile`.
#[derive(Default)]
struct Group {
    key: Vec<(String, String)>,
    line: usize,
    /// (le, value) in order.
    buckets: Vec<(f64, f64)>,
    inf_bucket: Option<f64>,
    count: Option<f64>,
    sum: Option<f64>,
    past_buckets: bool,
    last_ts: HashMap<Vec<(String, String)>, Option<i64>>,
}

fn suffixes(kind: MetricType) -> &'static [&'static str] {
    match kind {
        MetricType::Counter => &["_total", "_created"],
        MetricType::Gauge | MetricType::Unknown => &[""],
        MetricType::StateSet => &[""],
        MetricType::Info => &["_info"],
        MetricType::Summary => &["", "_count", "_sum", "_created"],
        MetricType::Histogram => &["_bucket", "_count", "_sum", "_created"],
        MetricType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
    }
}

impl Strict {
    fn start_family(&mut self, line: usize, name: &str) -> Result<()> {
        self.close_family()?;
        if self.family_names.contains(name) || self.claimed.contains(name) {
            return Err(ParseError::at(
                line,
                format!("metric family {name:?} clashes with an earlier family"),
            ));
        }
        self.family_names.insert(name.to_string());
        self.family = Some(Family { name: name.to_string(), ..Family::default() });
        Ok(())
    }

    fn close_family(&mut self) -> Result<()> {
        if let Some(mut f) = self.family.take() {
            if let Some(g) = f.group.take() {
                g.close(f.kind)?;
            }
            self.claim(&f.name, f.kind);
        }
        Ok(())
    }

    fn claim(&mut self, name: &str, kind: MetricType) {
        for s in suffixes(kind) {
            self.claimed.insert(format!("{name}{s}"));
        }
    }

    pub fn meta(&mut self, line: usize, what: &'static str, name: &str, text: &[u8]) -> Result<()> {
        let same = self.family.as_ref().is_some_and(|f| f.name == name);
        if !same {
            self.start_family(line, name)?;
        }
        let Some(f) = self.family.as_mut() else { return Ok(()) };
        if f.has_samples {
            return Err(ParseError::at(line, format!("{what} for {name:?} after its samples")));
        }
        if !f.seen.insert(what) {
            return Err(ParseError::at(line, format!("repeated {what} for {name:?}")));
        }
        match what {
            "TYPE" => {
                f.kind = MetricType::from_openmetrics(text).unwrap_or_default();
                for s in suffixes(f.kind) {
                    let n = format!("{name}{s}");
                    if n != name && self.family_names.contains(&n) {
                        return Err(ParseError::at(
                            line,
                            format!("metric family {name:?} clashes with {n:?}"),
                        ));
                    }
                }
            }
            "UNIT" => f.unit = String::from_utf8_lossy(text).into_owned(),
            _ => {}
        }
        if !f.unit.is_empty() && matches!(f.kind, MetricType::Info | MetricType::StateSet) {
            return Err(ParseError::at(
                line,
                format!("{} metric {name:?} cannot have a unit", f.kind.as_str()),
            ));
        }
        Ok(())
    }

    pub fn sample(&mut self, s: &RawSample) -> Result<()> {
        let line = s.line;
        let err = |msg: String| ParseError::at(line, msg);
        let belongs = self.family.as_ref().is_some_and(|f| {
            suffixes(f.kind).iter().any(|suf| s.name.strip_suffix(suf) == Some(f.name.as_str()))
        });
        if !belongs {
            self.start_family(line, &s.name)?;
        }
        let Some(f) = self.family.as_mut() else { return Ok(()) };
        f.has_samples = true;
        let suffix = s.name.get(f.name.len()..).unwrap_or_default();
        let label = |n: &str| s.labels.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        let v = s.value;
        let exemplar_ok = match f.kind {
            MetricType::Counter => suffix == "_total",
            MetricType::Histogram | MetricType::GaugeHistogram => suffix == "_bucket",
            _ => false,
        };
        if s.exemplar.is_some() && !exemplar_ok {
            return Err(err(format!("exemplar not allowed on {:?}", s.name)));
        }
        let counter_like = |what: &str| -> Result<()> {
            if v.is_nan() || v < 0.0 {
                return Err(err(format!(
                    "{what} {:?} must be a non-negative number, got {v}",
                    s.name
                )));
            }
            Ok(())
        };
        let drop_label = match f.kind {
            MetricType::Histogram | MetricType::GaugeHistogram => "le",
            MetricType::Summary => "quantile",
            _ => "",
        };
        let mut key: Vec<(String, String)> =
            s.labels.iter().filter(|(k, _)| k != drop_label).cloned().collect();
        key.sort();
        if f.group.as_ref().is_none_or(|g| g.key != key) {
            if let Some(g) = f.group.take() {
                let k = g.key.clone();
                g.close(f.kind)?;
                f.closed.insert(k);
            }
            if f.closed.contains(&key) {
                return Err(err(format!("metric point of {:?} is not contiguous", f.name)));
            }
            f.group = Some(Group { key, line, ..Group::default() });
        }
        let Some(g) = f.group.as_mut() else { return Ok(()) };
        let mut series: Vec<(String, String)> = s.labels.clone();
        series.push((String::new(), s.name.clone()));
        series.sort();
        if let Some(prev) = g.last_ts.get(&series) {
            match (prev, s.ts) {
                (Some(p), Some(t)) if t < *p => return Err(err("timestamp went backwards".into())),
                (Some(_), Some(_)) => {}
                _ => return Err(err("series repeated with and without timestamps".into())),
            }
        }
        g.last_ts.insert(series, s.ts);
        match (f.kind, suffix) {
            (MetricType::Counter, "_total") => counter_like("counter")?,
            (MetricType::Info, _) if v != 1.0 => {
                return Err(err(format!("info value must be 1, got {v}")))
            }
            (MetricType::StateSet, _) => {
                if label(&f.name).is_none() {
                    return Err(err(format!("stateset sample needs a {:?} label", f.name)));
                }
                if v != 0.0 && v != 1.0 {
                    return Err(err(format!("stateset value must be 0 or 1, got {v}")));
                }
            }
            (MetricType::Summary, "") => {
                let q = label("quantile")
                    .ok_or_else(|| err("summary sample without quantile".into()))?;
                let qv = lex::parse_go_float(q).filter(|q| (0.0..=1.0).contains(q));
                if qv.is_none() {
                    return Err(err(format!("invalid quantile {q:?}")));
                }
                if v < 0.0 {
                    return Err(err(format!("negative quantile value {v}")));
                }
            }
            (MetricType::Summary, "_count" | "_sum") => counter_like("summary")?,
            (MetricType::Histogram | MetricType::GaugeHistogram, "_bucket") => {
                counter_like("bucket")?;
                let le = label("le").ok_or_else(|| err("bucket without le".into()))?;
                let bound = lex::parse_go_float(le)
                    .filter(|b| !b.is_nan())
                    .ok_or_else(|| err(format!("invalid le {le:?}")))?;
                if g.past_buckets {
                    return Err(err("bucket after count or sum".into()));
                }
                if let Some(&(pb, pv)) = g.buckets.last() {
                    if bound <= pb {
                        return Err(err(format!("buckets out of order at le={le:?}")));
                    }
                    if v < pv {
                        return Err(err(format!("bucket counts decrease at le={le:?}")));
                    }
                }
                g.buckets.push((bound, v));
                if le == "+Inf" {
                    g.inf_bucket = Some(v);
                }
            }
            (MetricType::Histogram, "_count") | (MetricType::GaugeHistogram, "_gcount") => {
                counter_like("count")?;
                g.count = Some(v);
                g.past_buckets = true;
            }
            (MetricType::Histogram, "_sum") | (MetricType::GaugeHistogram, "_gsum") => {
                if v.is_nan() {
                    return Err(err("histogram sum is NaN".into()));
                }
                g.sum = Some(v);
                g.past_buckets = true;
            }
            (_, "_created") => g.past_buckets = true,
            _ => {}
        }
        Ok(())
    }

    pub fn finish(&mut self, _line: usize) -> Result<()> {
        self.close_family()
    }
}

impl Group {
    fn close(self, kind: MetricType) -> Result<()> {
        let err = |msg: &str| ParseError::at(self.line, msg.to_string());
        if !matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram) {
            return Ok(());
        }
        let Some(inf) = self.inf_bucket else {
            return Err(err("histogram without le=\"+Inf\" bucket"));
        };
        if self.count.is_some() != self.sum.is_some() {
            return Err(err("histogram has only one of count and sum"));
        }
        if self.count.is_some_and(|c| c != inf) {
            return Err(err("histogram count differs from the +Inf bucket"));
        }
        let negative_buckets = self.buckets.iter().any(|&(le, _)| le < 0.0);
        match (kind, self.sum) {
            (MetricType::Histogram, Some(_)) if negative_buckets => {
                Err(err("histogram with negative buckets cannot have a sum"))
            }
            (_, Some(sum)) if sum < 0.0 && !negative_buckets => Err(err("negative histogram sum")),
            _ => Ok(()),
        }
    }
}
