//! The scrape part of Strata's configuration: `global` and `scrape_configs`, in the syntax of
//! `prometheus.yml` so that a user can paste theirs.
//!
//! [`ScrapeSection`] holds the sections as written (unknown keys are rejected, and a bad
//! value fails with its path and line, e.g. `scrape_configs[0].scrape_interval: not a valid
//! duration string: "1x" at line 4 column 22`). [`ScrapeSection::validate`] then applies
//! Prometheus' defaults and cross-field checks and returns [`ScrapeConfigs`].
//!
//! # Embedding in the server's config
//!
//! `#[serde(flatten)]` cannot be combined with `deny_unknown_fields`, so the server's raw
//! config should name the two keys itself and rebuild the section to validate it:
//!
//! ```ignore
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! pub struct RawConfig {
//!     // ... the server's own keys ...
//!     pub global: strata_scrape::config::RawGlobal,
//!     pub scrape_configs: Vec<strata_scrape::config::RawScrapeConfig>,
//! }
//! let scrape = ScrapeSection { global: raw.global, scrape_configs: raw.scrape_configs }
//!     .validate(config_dir)?;
//! ```
//!
//! Strata validates label names the legacy way (`[a-zA-Z_][a-zA-Z0-9_]*`, Prometheus'
//! `metric_name_validation_scheme: legacy`), as its ingester does.

mod http;
mod units;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use strata_model::Labels;

use crate::expfmt::Format;
use crate::relabel::is_valid_label_name;

pub use http::{
    Auth, HttpClientConfig, RawAuthorization, RawBasicAuth, Refused, Secret, TlsConfig, TlsVersion,
};
pub use units::{
    format_duration, parse_byte_size, parse_duration, parse_scalar, ByteSize, PromDuration,
};

/// A configuration problem, naming the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// YAML that does not fit the schema; the message holds the key's path and line.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    /// A value that fits the schema but not the rules; `field` is a path such as
    /// `scrape_configs[2].scrape_timeout`.
    #[error("invalid value for {field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field: field.into(), message: message.into() }
}

/// `global:` and `scrape_configs:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeSection {
    pub global: RawGlobal,
    pub scrape_configs: Vec<RawScrapeConfig>,
}

/// A protocol offered in the scrape's `Accept` header (`scrape_protocols`), or assumed for
/// a response without a usable `Content-Type` (`fallback_scrape_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
}

impl ScrapeProtocol {
    const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
    ];

    /// Prometheus' default order (without native histograms).
    pub const DEFAULT: [ScrapeProtocol; 4] = [
        ScrapeProtocol::OpenMetricsText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::PrometheusText0_0_4,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// The `Accept` header Prometheus sends for `protocols` (in order of preference) and
    /// the name `escaping` scheme: weights falling from `q=0.6`, `escaping=` on the formats
    /// that take it, then `*/*`. Protobuf is left out: Strata does not parse it, so it
    /// never asks for it.
    pub fn accept_header(protocols: &[ScrapeProtocol], escaping: &str) -> String {
        let mut weight = ScrapeProtocol::ALL.len() + 1;
        let mut parts = Vec::new();
        for p in protocols.iter().filter(|p| **p != ScrapeProtocol::PrometheusProto) {
            let mut v = p.header().to_string();
            if matches!(
                p,
                ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
            ) {
                v.push_str(";escaping=");
                v.push_str(escaping);
            }
            parts.push(format!("{v};q=0.{weight}"));
            weight = weight.saturating_sub(1).max(1);
        }
        parts.push(format!("*/*;q=0.{weight}"));
        parts.join(",")
    }

    /// The `Accept` header entry Prometheus sends for it.
    pub fn header(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }

    /// The parser for it; `None` for protobuf, which Strata does not parse yet.
    pub fn format(self) -> Option<Format> {
        match self {
            ScrapeProtocol::PrometheusProto => None,
            ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
                Some(Format::PrometheusText)
            }
            ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
                Some(Format::OpenMetrics)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ScrapeProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_scalar(d, "a scrape protocol", |s| {
            let p = ScrapeProtocol::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
                let names: Vec<_> = ScrapeProtocol::ALL.iter().map(|p| p.name()).collect();
                format!("unknown scrape protocol {s}, supported: {names:?}")
            })?;
            if p == ScrapeProtocol::PrometheusProto {
                return Err(
                    "PrometheusProto is not supported by Strata yet (no protobuf parser)".into()
                );
            }
            Ok(p)
        })
    }
}

/// Label names and values from YAML, where a value may be written as a number or a boolean
/// (`rack: 1`) and is then read as its text, as Go's YAML does.
fn label_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    use serde::de::{Error, MapAccess, Visitor};
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of label names to values")
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        // Checked inside the visitor so that the error names this mapping and its line.
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, value)) = map.next_entry::<String, serde_yaml_ng::Value>()? {
                if !is_valid_label_name(&name) {
                    return Err(A::Error::custom(format!("{name:?} is not a valid label name")));
                }
                let value = scalar_text(&value).ok_or_else(|| {
                    A::Error::custom(format!("the value of label {name:?} must be a string"))
                })?;
                out.insert(name, value);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

pub(crate) fn scalar_text(v: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value;
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

pub(crate) fn labels_from_map(m: BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.into_iter().filter(|(_, v)| !v.is_empty()))
}

/// `global:` as written. Zero durations mean "not set", as in Prometheus.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGlobal {
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    /// Read here for the ruler, which shares the `global` section.
    pub evaluation_interval: Option<PromDuration>,
    pub rule_query_offset: Option<PromDuration>,
    #[serde(deserialize_with = "label_map")]
    pub external_labels: BTreeMap<String, String>,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub metric_name_validation_scheme: Option<String>,
    pub metric_name_escaping_scheme: Option<String>,
    pub scrape_native_histograms: Option<bool>,
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    pub extra_scrape_metrics: Option<bool>,
    #[serde(deserialize_with = "refuse_log_file")]
    pub query_log_file: Refused,
    #[serde(deserialize_with = "refuse_log_file")]
    pub scrape_failure_log_file: Refused,
}

fn refuse_log_file<'de, D: Deserializer<'de>>(d: D) -> Result<Refused, D::Error> {
    http::refuse("log files are not supported by Strata; it logs through its own logger", d)
}

/// The validated `global` section.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalConfig {
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub evaluation_interval: Duration,
    pub rule_query_offset: Duration,
    /// With `$VAR`/`${VAR}` expanded from the environment, as Prometheus does.
    pub external_labels: Labels,
    pub limits: Limits,
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    /// `metric_name_escaping_scheme`, when set.
    pub metric_name_escaping_scheme: Option<String>,
    pub extra_scrape_metrics: bool,
}

/// Per-scrape limits; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub body_size_limit: u64,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
}

impl Limits {
    /// Each limit left at 0 takes `global`'s.
    fn or(self, global: Limits) -> Limits {
        let pick = |a: u64, b: u64| if a == 0 { b } else { a };
        Limits {
            body_size_limit: pick(self.body_size_limit, global.body_size_limit),
            sample_limit: pick(self.sample_limit, global.sample_limit),
            target_limit: pick(self.target_limit, global.target_limit),
            label_limit: pick(self.label_limit, global.label_limit),
            label_name_length_limit: pick(
                self.label_name_length_limit,
                global.label_name_length_limit,
            ),
            label_value_length_limit: pick(
                self.label_value_length_limit,
                global.label_value_length_limit,
            ),
            keep_dropped_targets: pick(self.keep_dropped_targets, global.keep_dropped_targets),
        }
    }
}

pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);

fn set(d: Option<PromDuration>) -> Option<Duration> {
    d.map(|d| d.0).filter(|d| !d.is_zero())
}

fn check_protocols(field: &str, ps: &[ScrapeProtocol]) -> Result<(), ConfigError> {
    if ps.is_empty() {
        return Err(invalid(field, "scrape_protocols cannot be empty"));
    }
    let mut seen = HashSet::new();
    if !ps.iter().all(|p| seen.insert(*p)) {
        let names: Vec<_> = ps.iter().map(|p| p.name()).collect();
        return Err(invalid(
            field,
            format!("duplicated protocol in scrape_protocols, got {names:?}"),
        ));
    }
    Ok(())
}

/// Strata stores legacy names only, so it refuses what would ask for UTF-8 ones.
fn check_name_schemes(
    prefix: &str,
    validation: Option<&str>,
    escaping: Option<&str>,
) -> Result<(), ConfigError> {
    match validation {
        None | Some("") | Some("legacy") => {}
        Some(v) => {
            return Err(invalid(
                format!("{prefix}metric_name_validation_scheme"),
                format!(
                    "{v:?} is not supported: Strata accepts legacy label and metric names only"
                ),
            ))
        }
    }
    match escaping {
        None | Some("") | Some("underscores") | Some("dots") | Some("values") => Ok(()),
        Some(v) => Err(invalid(
            format!("{prefix}metric_name_escaping_scheme"),
            format!("{v:?} is not supported: use underscores, dots or values"),
        )),
    }
}

fn check_histograms(
    prefix: &str,
    native: Option<bool>,
    nhcb: Option<bool>,
) -> Result<(), ConfigError> {
    if native == Some(true) {
        return Err(invalid(
            format!("{prefix}scrape_native_histograms"),
            "native histograms are not supported by Strata yet",
        ));
    }
    if nhcb == Some(true) {
        return Err(invalid(
            format!("{prefix}convert_classic_histograms_to_nhcb"),
            "native histograms are not supported by Strata yet",
        ));
    }
    Ok(())
}

impl RawGlobal {
    fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> Result<GlobalConfig, ConfigError> {
        let interval = set(self.scrape_interval).unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        let timeout = match set(self.scrape_timeout) {
            Some(t) if t > interval => {
                return Err(invalid(
                    "global.scrape_timeout",
                    format!(
                        "global scrape timeout greater than scrape interval ({} > {})",
                        format_duration(t),
                        format_duration(interval)
                    ),
                ))
            }
            Some(t) => t,
            None => DEFAULT_SCRAPE_TIMEOUT.min(interval),
        };
        if let Some(ps) = &self.scrape_protocols {
            check_protocols("global.scrape_protocols", ps)?;
        }
        check_name_schemes(
            "global.",
            self.metric_name_validation_scheme.as_deref(),
            self.metric_name_escaping_scheme.as_deref(),
        )?;
        check_histograms(
            "global.",
            self.scrape_native_histograms,
            self.convert_classic_histograms_to_nhcb,
        )?;
        let external = self.external_labels.into_iter().map(|(k, v)| (k, expand_env(&v, env)));
        Ok(GlobalConfig {
            scrape_interval: interval,
            scrape_timeout: timeout,
            evaluation_interval: set(self.evaluation_interval)
                .unwrap_or(DEFAULT_EVALUATION_INTERVAL),
            rule_query_offset: self.rule_query_offset.map(|d| d.0).unwrap_or_default(),
            external_labels: labels_from_map(external.collect()),
            limits: Limits {
                body_size_limit: self.body_size_limit.0,
                sample_limit: self.sample_limit,
                target_limit: self.target_limit,
                label_limit: self.label_limit,
                label_name_length_limit: self.label_name_length_limit,
                label_value_length_limit: self.label_value_length_limit,
                keep_dropped_targets: self.keep_dropped_targets,
            },
            scrape_protocols: self.scrape_protocols,
            metric_name_escaping_scheme: self.metric_name_escaping_scheme.filter(|s| !s.is_empty()),
            extra_scrape_metrics: self.extra_scrape_metrics.unwrap_or(false),
        })
    }
}

/// Go's `os.Expand` with Prometheus' mapping: `$VAR` and `${VAR}` from the environment
/// (unset is empty), `$$` is `$`.
fn expand_env(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let (name, used) = shell_name(after);
        // A `$` followed by no name stays; `$$` is Prometheus' escape for `$`.
        if (name.is_empty() && used == 0) || name == "$" {
            out.push('$');
        } else if !name.is_empty() {
            out.push_str(&env(name).unwrap_or_default());
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// Go's `getShellName`: the variable name after a `$` and the bytes it takes.
fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    match b.first() {
        None => ("", 0),
        Some(b'{') => {
            if b.len() > 2 && is_shell_special(b[1]) && b[2] == b'}' {
                return (&s[1..2], 3);
            }
            match s[1..].find('}') {
                Some(0) => ("", 2),
                Some(end) => (&s[1..1 + end], end + 2),
                None => ("", 1),
            }
        }
        Some(&c) if is_shell_special(c) => (&s[..1], 1),
        Some(_) => {
            let n = b.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
            (&s[..n], n)
        }
    }
}

fn is_shell_special(c: u8) -> bool {
    matches!(c, b'*' | b'#' | b'$' | b'@' | b'!' | b'?' | b'-' | b'0'..=b'9')
}

/// One `static_configs` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(deserialize_with = "label_map")]
    pub labels: BTreeMap<String, String>,
}

/// One `file_sd_configs` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawFileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Option<PromDuration>,
}

mod scrape;
pub use scrape::{RawScrapeConfig, ScrapeConfig, ScrapeConfigs};
