//! Scrape targets: the label sets Prometheus builds for each discovered address
//! (`scrape.PopulateLabels`), target relabeling, and the URL a target is scraped at.
//!
//! For each address of a [`TargetGroup`] the labels start as `__address__` plus the group's
//! labels, then gain `job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
//! `__scrape_timeout__` and `__param_<name>` where not already set. `relabel_configs` run on
//! that set; a survivor loses its `__meta_*` labels and gets `instance` = `__address__` if
//! it has none. Its series carry the labels without a `__` prefix ([`Target::public_labels`]).

mod file_sd;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use strata_model::Labels;

use crate::config::{format_duration, parse_duration, ScrapeConfig};
use crate::relabel::{process, Builder};

pub use file_sd::{
    expand_pattern, is_valid_file_sd_pattern, load_file_sd, parse_file_sd, read_file_sd,
    FileGroups, FileSdConfig, FileSdError, FILEPATH_LABEL,
};

pub const ADDRESS_LABEL: &str = "__address__";
pub const SCHEME_LABEL: &str = "__scheme__";
pub const METRICS_PATH_LABEL: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL_LABEL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT_LABEL: &str = "__scrape_timeout__";
pub const PARAM_LABEL_PREFIX: &str = "__param_";
pub const META_LABEL_PREFIX: &str = "__meta_";
pub const RESERVED_LABEL_PREFIX: &str = "__";
pub const JOB_LABEL: &str = "job";
pub const INSTANCE_LABEL: &str = "instance";

/// Addresses sharing labels: a `static_configs` entry or a group from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: Labels,
    /// Where the group came from (`<index>` for static configs, `<file>:<index>` for files).
    pub source: String,
}

/// What became of one discovered address.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Active(Target),
    /// Dropped by relabeling; the labels it had before (Prometheus' "discovered labels").
    Dropped(Labels),
}

/// A target to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The labels after relabeling, `__address__`, `__scheme__`, ... included, `__meta_*`
    /// removed.
    pub labels: Labels,
    /// The labels before relabeling.
    pub discovered_labels: Labels,
    params: BTreeMap<String, Vec<String>>,
    interval: Duration,
    timeout: Duration,
}

/// Why a discovered address gives no target (Prometheus' messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance {index} in group {group}: {message}")]
pub struct TargetError {
    pub index: usize,
    pub group: String,
    pub message: String,
}

impl Target {
    /// The labels its series get: those without a `__` prefix.
    pub fn public_labels(&self) -> Labels {
        Labels(
            self.labels
                .iter()
                .filter(|l| !l.name.starts_with(RESERVED_LABEL_PREFIX))
                .cloned()
                .collect(),
        )
    }

    pub fn address(&self) -> &str {
        self.labels.get(ADDRESS_LABEL).unwrap_or_default()
    }

    /// `__scrape_interval__` after relabeling.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// `__scrape_timeout__` after relabeling.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The URL to scrape, as Prometheus' `Target.URL`: `__scheme__://__address__` +
    /// `__metrics_path__`, the config's `params` with each `__param_<name>` replacing the
    /// first value of `<name>` (or adding it), keys sorted.
    pub fn url(&self) -> String {
        let mut params = self.params.clone();
        for l in self.labels.iter() {
            if let Some(key) = l.name.strip_prefix(PARAM_LABEL_PREFIX) {
                match params.get_mut(key) {
                    Some(values) if !values.is_empty() => values[0] = l.value.clone(),
                    _ => {
                        params.insert(key.to_string(), vec![l.value.clone()]);
                    }
                }
            }
        }
        let get = |n| self.labels.get(n).unwrap_or_default();
        let (host, path) = (get(ADDRESS_LABEL), get(METRICS_PATH_LABEL));
        let mut url = format!("{}://", get(SCHEME_LABEL));
        escape_into(&mut url, host, Mode::Host);
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            url.push('/');
        }
        escape_into(&mut url, path, Mode::Path);
        let mut first = true;
        for (k, values) in &params {
            for v in values {
                url.push(if first { '?' } else { '&' });
                first = false;
                escape_into(&mut url, k, Mode::Query);
                url.push('=');
                escape_into(&mut url, v, Mode::Query);
            }
        }
        url
    }
}

/// The targets of one group: [`populate_labels`] for each address.
pub fn targets_from_group(
    cfg: &ScrapeConfig,
    group: &TargetGroup,
) -> (Vec<Outcome>, Vec<TargetError>) {
    let mut out = Vec::with_capacity(group.targets.len());
    let mut errors = Vec::new();
    for (index, address) in group.targets.iter().enumerate() {
        let target = Labels::from_pairs([(ADDRESS_LABEL, address.as_str())]);
        match populate_labels(cfg, &target, &group.labels) {
            Ok(o) => out.push(o),
            Err(message) => {
                errors.push(TargetError { index, group: group.source.clone(), message })
            }
        }
    }
    (out, errors)
}

/// Prometheus' `PopulateLabels`: the labels of one address before relabeling, relabeling,
/// and the checks after it. `target` labels win over `group` labels.
pub fn populate_labels(
    cfg: &ScrapeConfig,
    target: &Labels,
    group: &Labels,
) -> Result<Outcome, String> {
    let mut merged: BTreeMap<&str, &str> =
        group.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
    merged.extend(target.iter().map(|l| (l.name.as_str(), l.value.as_str())));
    let mut b =
        Builder::new(&Labels::from_pairs(merged.into_iter().filter(|(_, v)| !v.is_empty())));
    let defaults = [
        (JOB_LABEL, cfg.job_name.clone()),
        (SCRAPE_INTERVAL_LABEL, format_duration(cfg.scrape_interval)),
        (SCRAPE_TIMEOUT_LABEL, format_duration(cfg.scrape_timeout)),
        (METRICS_PATH_LABEL, cfg.metrics_path.clone()),
        (SCHEME_LABEL, cfg.scheme.clone()),
    ];
    for (name, value) in defaults {
        if b.get(name).is_empty() {
            b.set(name, value);
        }
    }
    for (key, values) in &cfg.params {
        let name = format!("{PARAM_LABEL_PREFIX}{key}");
        if let Some(first) = values.first() {
            if b.get(&name).is_empty() {
                b.set(&name, first.clone());
            }
        }
    }
    let discovered = b.labels();
    if !process(&mut b, &cfg.relabel_configs) {
        return Ok(Outcome::Dropped(discovered));
    }
    let address = b.get(ADDRESS_LABEL).to_string();
    if address.is_empty() {
        return Err("no address".into());
    }
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    let scheme = b.get(SCHEME_LABEL);
    if scheme != "http" && scheme != "https" {
        return Err(format!("invalid scheme: {scheme:?}"));
    }
    let interval_text = b.get(SCRAPE_INTERVAL_LABEL).to_string();
    let interval = parse_duration(&interval_text)
        .map_err(|e| format!("error parsing scrape interval: {e}"))?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    let timeout_text = b.get(SCRAPE_TIMEOUT_LABEL).to_string();
    let timeout =
        parse_duration(&timeout_text).map_err(|e| format!("error parsing scrape timeout: {e}"))?;
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({timeout_text:?} > {interval_text:?})"
        ));
    }
    for l in b.snapshot() {
        if l.name.starts_with(META_LABEL_PREFIX) {
            b.del(&l.name);
        }
    }
    if b.get(INSTANCE_LABEL).is_empty() {
        b.set(INSTANCE_LABEL, address);
    }
    Ok(Outcome::Active(Target {
        labels: b.labels(),
        discovered_labels: discovered,
        params: cfg.params.clone(),
        interval,
        timeout,
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Host,
    Path,
    Query,
}

/// Go's `url.shouldEscape` for the three parts a scrape URL is built from.
fn should_escape(c: u8, mode: Mode) -> bool {
    if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
        return false;
    }
    match mode {
        Mode::Host => !matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        ),
        Mode::Path => !matches!(c, b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'@'),
        Mode::Query => true,
    }
}

fn escape_into(out: &mut String, s: &str, mode: Mode) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in s.as_bytes() {
        if mode == Mode::Query && c == b' ' {
            out.push('+');
        } else if should_escape(c, mode) {
            out.push('%');
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        } else {
            out.push(char::from(c));
        }
    }
}
