//! `scrape_configs` entries: the raw form, Prometheus' defaults and checks, the validated form.
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::http::{self, RawAuthorization, RawBasicAuth, RawHttp, Refused};
use super::{
    check_histograms, check_name_schemes, check_protocols, format_duration, invalid,
    labels_from_map, set, ByteSize, ConfigError, GlobalConfig, HttpClientConfig, Limits,
    PromDuration, RawFileSdConfig, ScrapeProtocol, ScrapeSection, StaticConfig, TlsConfig,
    DEFAULT_FILE_SD_REFRESH,
};
use crate::relabel::RelabelConfig;
use crate::targets::{FileSdConfig, TargetGroup};

/// One `scrape_configs` entry as written, with Prometheus' defaults for what is left out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScrapeConfig {
    pub job_name: Option<String>,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Option<PromDuration>,
    pub scrape_timeout: Option<PromDuration>,
    pub scrape_protocols: Option<Vec<ScrapeProtocol>>,
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    pub scrape_native_histograms: Option<bool>,
    pub always_scrape_classic_histograms: Option<bool>,
    pub convert_classic_histograms_to_nhcb: Option<bool>,
    pub extra_scrape_metrics: Option<bool>,
    pub native_histogram_bucket_limit: u64,
    pub native_histogram_min_bucket_factor: f64,
    pub metrics_path: String,
    pub scheme: String,
    pub enable_compression: bool,
    pub body_size_limit: ByteSize,
    pub sample_limit: u64,
    pub target_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub keep_dropped_targets: u64,
    pub metric_name_validation_scheme: Option<String>,
    pub metric_name_escaping_scheme: Option<String>,

    // The inlined HTTP client config.
    pub basic_auth: Option<RawBasicAuth>,
    pub authorization: Option<RawAuthorization>,
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls_config: Option<TlsConfig>,
    pub follow_redirects: bool,
    pub enable_http2: bool,

    pub static_configs: Vec<StaticConfig>,
    pub file_sd_configs: Vec<RawFileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,

    // Prometheus settings Strata refuses by name (see `http::refuse`).
    #[serde(deserialize_with = "http::refuse_oauth2")]
    pub oauth2: Refused,
    #[serde(deserialize_with = "http::refuse_proxy")]
    pub proxy_url: Refused,
    #[serde(deserialize_with = "http::refuse_proxy")]
    pub no_proxy: Refused,
    #[serde(deserialize_with = "http::refuse_proxy")]
    pub proxy_from_environment: Refused,
    #[serde(deserialize_with = "http::refuse_proxy")]
    pub proxy_connect_header: Refused,
    #[serde(deserialize_with = "http::refuse_headers")]
    pub http_headers: Refused,
    #[serde(deserialize_with = "super::refuse_log_file")]
    pub scrape_failure_log_file: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub azure_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub consul_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub digitalocean_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub docker_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub dockerswarm_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub dns_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub ec2_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub eureka_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub gce_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub hetzner_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub http_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub kubernetes_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub lightsail_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub linode_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub marathon_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub nomad_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub openstack_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub puppetdb_sd_configs: Refused,
    #[serde(deserialize_with = "http::refuse_sd")]
    pub serverset_sd_configs: Refused,
}

impl Default for RawScrapeConfig {
    fn default() -> Self {
        RawScrapeConfig {
            job_name: None,
            honor_labels: false,
            honor_timestamps: true,
            track_timestamps_staleness: false,
            params: BTreeMap::new(),
            scrape_interval: None,
            scrape_timeout: None,
            scrape_protocols: None,
            fallback_scrape_protocol: None,
            scrape_native_histograms: None,
            always_scrape_classic_histograms: None,
            convert_classic_histograms_to_nhcb: None,
            extra_scrape_metrics: None,
            native_histogram_bucket_limit: 0,
            native_histogram_min_bucket_factor: 0.0,
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            enable_compression: true,
            body_size_limit: ByteSize(0),
            sample_limit: 0,
            target_limit: 0,
            label_limit: 0,
            label_name_length_limit: 0,
            label_value_length_limit: 0,
            keep_dropped_targets: 0,
            metric_name_validation_scheme: None,
            metric_name_escaping_scheme: None,
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: None,
            tls_config: None,
            follow_redirects: true,
            enable_http2: true,
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            relabel_configs: Vec::new(),
            metric_relabel_configs: Vec::new(),
            oauth2: Refused,
            proxy_url: Refused,
            no_proxy: Refused,
            proxy_from_environment: Refused,
            proxy_connect_header: Refused,
            http_headers: Refused,
            scrape_failure_log_file: Refused,
            azure_sd_configs: Refused,
            consul_sd_configs: Refused,
            digitalocean_sd_configs: Refused,
            docker_sd_configs: Refused,
            dockerswarm_sd_configs: Refused,
            dns_sd_configs: Refused,
            ec2_sd_configs: Refused,
            eureka_sd_configs: Refused,
            gce_sd_configs: Refused,
            hetzner_sd_configs: Refused,
            http_sd_configs: Refused,
            kubernetes_sd_configs: Refused,
            lightsail_sd_configs: Refused,
            linode_sd_configs: Refused,
            marathon_sd_configs: Refused,
            nomad_sd_configs: Refused,
            openstack_sd_configs: Refused,
            puppetdb_sd_configs: Refused,
            serverset_sd_configs: Refused,
        }
    }
}

/// The validated scrape configuration.
#[derive(Debug, Clone)]
pub struct ScrapeConfigs {
    pub global: GlobalConfig,
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// One validated job, every default filled in.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub track_timestamps_staleness: bool,
    /// Query parameters; the first value of each may be overridden by `__param_<name>`.
    pub params: BTreeMap<String, Vec<String>>,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub scrape_protocols: Vec<ScrapeProtocol>,
    /// How targets should escape names Strata cannot store (`underscores` unless set): sent
    /// in the `Accept` header.
    pub metric_name_escaping_scheme: String,
    pub fallback_scrape_protocol: Option<ScrapeProtocol>,
    pub metrics_path: String,
    /// `http` or `https`.
    pub scheme: String,
    pub enable_compression: bool,
    pub extra_scrape_metrics: bool,
    pub limits: Limits,
    pub http: HttpClientConfig,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub relabel_configs: Vec<RelabelConfig>,
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

impl ScrapeSection {
    /// Reads and parses a YAML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// Parses YAML text; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ScrapeSection::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| yaml_error(&e, text, origin))
    }

    /// Applies the defaults and checks of Prometheus' `config.Load`. Relative file paths
    /// (`file_sd_configs`, TLS and credential files) are taken from `base_dir`, the config
    /// file's folder; `$VAR` in external labels comes from the process environment.
    pub fn validate(self, base_dir: &Path) -> Result<ScrapeConfigs, ConfigError> {
        self.validate_with_env(base_dir, &|k| std::env::var(k).ok())
    }

    /// [`ScrapeSection::validate`] with the environment given.
    pub fn validate_with_env(
        self,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ScrapeConfigs, ConfigError> {
        let global = self.global.validate(env)?;
        let mut jobs = Vec::with_capacity(self.scrape_configs.len());
        let mut names = HashSet::new();
        for (i, raw) in self.scrape_configs.into_iter().enumerate() {
            let job = raw.validate(i, &global, base_dir)?;
            if !names.insert(job.job_name.clone()) {
                return Err(invalid(
                    format!("scrape_configs[{i}].job_name"),
                    format!("found multiple scrape configs with job name {:?}", job.job_name),
                ));
            }
            jobs.push(job);
        }
        Ok(ScrapeConfigs { global, scrape_configs: jobs })
    }
}

/// A serde_yaml_ng error with the offending line quoted, as the server's config does.
pub(crate) fn yaml_error(e: &serde_yaml_ng::Error, text: &str, origin: &str) -> ConfigError {
    let line = e
        .location()
        .and_then(|l| text.lines().nth(l.line().saturating_sub(1)))
        .map(|l| format!(" (`{}`)", l.trim()))
        .unwrap_or_default();
    ConfigError::Parse { origin: origin.to_string(), message: format!("{e}{line}") }
}

impl RawScrapeConfig {
    /// `ScrapeConfig.UnmarshalYAML` and `ScrapeConfig.Validate`: entry `i` of the list.
    fn validate(
        self,
        i: usize,
        global: &GlobalConfig,
        base_dir: &Path,
    ) -> Result<ScrapeConfig, ConfigError> {
        let job_name = self.job_name.unwrap_or_default();
        let at = |field: &str| format!("scrape_configs[{i}].{field}");
        let job = if job_name.is_empty() {
            return Err(invalid(at("job_name"), "job_name is empty"));
        } else {
            format!(" for scrape config with job name {job_name:?}")
        };
        let interval = set(self.scrape_interval).unwrap_or(global.scrape_interval);
        let timeout = match set(self.scrape_timeout) {
            Some(t) if t > interval => {
                return Err(invalid(
                    at("scrape_timeout"),
                    format!(
                        "scrape timeout greater than scrape interval{job} ({} > {})",
                        format_duration(t),
                        format_duration(interval)
                    ),
                ))
            }
            Some(t) => t,
            None => global.scrape_timeout.min(interval),
        };
        if self.scheme != "http" && self.scheme != "https" {
            return Err(invalid(at("scheme"), format!("{:?} is not http or https", self.scheme)));
        }
        let protocols = match self.scrape_protocols.or_else(|| global.scrape_protocols.clone()) {
            Some(ps) => {
                check_protocols(&at("scrape_protocols"), &ps)?;
                ps
            }
            None => ScrapeProtocol::DEFAULT.to_vec(),
        };
        check_name_schemes(
            &at(""),
            self.metric_name_validation_scheme.as_deref(),
            self.metric_name_escaping_scheme.as_deref(),
        )?;
        // Names must be legacy ones, so targets are asked to escape others (Prometheus's
        // default under `metric_name_validation_scheme: legacy`).
        let escaping = self
            .metric_name_escaping_scheme
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| global.metric_name_escaping_scheme.clone())
            .unwrap_or_else(|| "underscores".to_string());
        check_histograms(
            &at(""),
            self.scrape_native_histograms,
            self.convert_classic_histograms_to_nhcb,
        )?;
        let mut http = RawHttp {
            basic_auth: self.basic_auth,
            authorization: self.authorization,
            bearer_token: self.bearer_token,
            bearer_token_file: self.bearer_token_file,
            tls_config: self.tls_config,
            follow_redirects: self.follow_redirects,
            enable_http2: self.enable_http2,
        }
        .validate()
        .map_err(|m| invalid(format!("scrape_configs[{i}]"), m))?;
        http.join_dir(base_dir);

        let mut static_configs = Vec::with_capacity(self.static_configs.len());
        for (j, sc) in self.static_configs.into_iter().enumerate() {
            if self.relabel_configs.is_empty() {
                // Prometheus' check for URLs pasted as targets, skipped when relabeling may
                // rewrite the address.
                if let Some(t) = sc.targets.iter().find(|t| t.contains('/')) {
                    return Err(invalid(
                        at(&format!("static_configs[{j}].targets")),
                        format!("{t:?} is not a valid hostname"),
                    ));
                }
            }
            static_configs.push(TargetGroup {
                targets: sc.targets,
                labels: labels_from_map(sc.labels),
                source: j.to_string(),
            });
        }
        let mut file_sd_configs = Vec::with_capacity(self.file_sd_configs.len());
        for (j, f) in self.file_sd_configs.into_iter().enumerate() {
            let field = at(&format!("file_sd_configs[{j}].files"));
            if f.files.is_empty() {
                return Err(invalid(
                    field,
                    "file service discovery config must contain at least one path name",
                ));
            }
            for name in &f.files {
                if !crate::targets::is_valid_file_sd_pattern(name) {
                    return Err(invalid(
                        field,
                        format!("path name {name:?} is not valid for file discovery"),
                    ));
                }
            }
            file_sd_configs.push(FileSdConfig {
                files: f.files.iter().map(|p| http::join_dir(base_dir, Path::new(p))).collect(),
                refresh_interval: set(f.refresh_interval).unwrap_or(DEFAULT_FILE_SD_REFRESH),
            });
        }
        let limits = Limits {
            body_size_limit: self.body_size_limit.0,
            sample_limit: self.sample_limit,
            target_limit: self.target_limit,
            label_limit: self.label_limit,
            label_name_length_limit: self.label_name_length_limit,
            label_value_length_limit: self.label_value_length_limit,
            keep_dropped_targets: self.keep_dropped_targets,
        };
        Ok(ScrapeConfig {
            job_name,
            honor_labels: self.honor_labels,
            honor_timestamps: self.honor_timestamps,
            track_timestamps_staleness: self.track_timestamps_staleness,
            params: self.params,
            scrape_interval: interval,
            scrape_timeout: timeout,
            scrape_protocols: protocols,
            metric_name_escaping_scheme: escaping,
            fallback_scrape_protocol: self.fallback_scrape_protocol,
            metrics_path: self.metrics_path,
            scheme: self.scheme,
            enable_compression: self.enable_compression,
            extra_scrape_metrics: self.extra_scrape_metrics.unwrap_or(global.extra_scrape_metrics),
            limits: limits.or(global.limits),
            http,
            static_configs,
            file_sd_configs,
            relabel_configs: self.relabel_configs,
            metric_relabel_configs: self.metric_relabel_configs,
        })
    }
}
