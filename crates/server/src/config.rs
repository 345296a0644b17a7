//! The configuration file: raw serde structs (unknown keys rejected, durations as "30s")
//! turned into a validated [`Config`] by [`RawConfig::validate`].
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use strata_head::HeadConfig;
use strata_ingester::route::DecodeLimits;
use strata_ingester::IngesterConfig;
use strata_promql::EngineOpts;
use strata_raft::RaftSettings;
use strata_scrape::config::{RawGlobal, RawScrapeConfig, ScrapeConfigs, ScrapeSection};

/// A configuration problem, naming the key that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid value for {field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// A problem in `global` or `scrape_configs`; the message names the field's path.
    #[error(transparent)]
    Scrape(#[from] strata_scrape::config::ConfigError),
}

/// A duration in milliseconds written as Prometheus writes durations: `30s`, `1h30m`, `100ms`, `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed inside the value's own visitor, so an error names this key and its line.
        let d = strata_scrape::config::PromDuration::deserialize(d)?;
        Ok(Millis(u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX)))
    }
}

/// A size in bytes: a plain number of bytes, or with a unit as Prometheus writes sizes
/// (`64MiB`, `512KB`; KB and KiB both mean 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read inside the value's own visitor, so an error names this key and its line.
        strata_scrape::config::parse_scalar(d, "a size in bytes, such as 16777216 or 16MiB", |v| {
            let bytes = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                v.parse::<u64>().map_err(|_| format!("size {v:?} out of range"))
            } else {
                strata_scrape::config::parse_byte_size(v)
            };
            bytes
                .and_then(|b| usize::try_from(b).map_err(|_| format!("size {v:?} out of range")))
                .map(Size)
        })
    }
}

/// A map keyed by tenant: a tenant named twice (YAML keeps the last silently) or an empty
/// name is an error, at its line.
fn tenant_map<'de, D, V>(d: D) -> Result<std::collections::BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct M<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for M<V> {
        type Value = std::collections::BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map from tenant to value")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = std::collections::BTreeMap::new();
            while let Some(tenant) = a.next_key_seed(Key(&out))? {
                let v = a.next_value()?;
                out.insert(tenant, v);
            }
            Ok(out)
        }
    }
    /// Reads one key and checks it inside its own visitor, so an error points at that key.
    struct Key<'m, V>(&'m std::collections::BTreeMap<String, V>);
    impl<'de, V> serde::de::DeserializeSeed<'de> for Key<'_, V> {
        type Value = String;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
            d.deserialize_str(self)
        }
    }
    impl<V> serde::de::Visitor<'_> for Key<'_, V> {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a tenant name")
        }
        fn visit_str<E: serde::de::Error>(self, tenant: &str) -> Result<String, E> {
            if tenant.is_empty() {
                return Err(E::custom("an empty tenant name"));
            }
            if self.0.contains_key(tenant) {
                return Err(E::custom(format!("tenant {tenant:?} given twice")));
            }
            Ok(tenant.to_string())
        }
    }
    d.deserialize_map(M(std::marker::PhantomData))
}

/// Parses `1h30m`, `15s`, `250ms`, `0` into milliseconds, as Prometheus does (units from
/// largest to smallest, each at most once).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    strata_model::parse_duration_ms(s).map_err(|e| format!("{e} (use e.g. 30s, 5m, 1h30m, 250ms)"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub http_addr: String,
    pub grpc_addr: String,
    pub data_dir: PathBuf,
    pub ingester: RawIngester,
    pub raft: RawRaft,
    pub querier: RawQuerier,
    /// Where blocks go and how they are cut.
    pub blocks: RawBlocks,
    /// The object store holding the blocks.
    pub bucket: RawBucket,
    pub compactor: RawCompactor,
    /// Prometheus' `global` section (scrape defaults, external labels).
    pub global: RawGlobal,
    /// Prometheus' `scrape_configs`, scraped into the default tenant.
    pub scrape_configs: Vec<RawScrapeConfig>,
    /// The folder of the config file: relative `file_sd_configs` paths start there.
    #[serde(skip)]
    pub config_dir: PathBuf,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            http_addr: ":9009".into(),
            grpc_addr: ":9095".into(),
            data_dir: PathBuf::from("./data"),
            ingester: RawIngester::default(),
            raft: RawRaft::default(),
            querier: RawQuerier::default(),
            blocks: RawBlocks::default(),
            bucket: RawBucket::default(),
            compactor: RawCompactor::default(),
            global: RawGlobal::default(),
            scrape_configs: Vec::new(),
            config_dir: PathBuf::from("."),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIngester {
    pub shards: u32,
    pub out_of_order_window: Millis,
    pub max_request_bytes: Size,
    pub max_decompressed_bytes: Size,
}

impl Default for RawIngester {
    fn default() -> Self {
        RawIngester {
            shards: 16,
            out_of_order_window: Millis(0),
            max_request_bytes: Size(16 << 20),
            max_decompressed_bytes: Size(128 << 20),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRaft {
    pub heartbeat_interval: Millis,
    pub election_timeout: Millis,
}

impl Default for RawRaft {
    fn default() -> Self {
        RawRaft { heartbeat_interval: Millis(100), election_timeout: Millis(1000) }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBlocks {
    /// Length of the blocks flushed from the heads (2h; as short as 10s for tests).
    pub range: Millis,
    /// Time covered by each data column of a block.
    pub data_column_duration: Millis,
    /// Series per Parquet row group.
    pub row_group_rows: usize,
}

impl Default for RawBlocks {
    fn default() -> Self {
        RawBlocks {
            range: Millis(2 * 3_600_000),
            data_column_duration: Millis(8 * 3_600_000),
            row_group_rows: 16_384,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBucket {
    /// `file:///path`, `s3://bucket/prefix`, `gs://…`, `az://…`, `memory://`; empty means
    /// `<data_dir>/bucket`.
    pub url: String,
    pub s3: strata_objstore::S3Options,
    pub request_timeout: Millis,
    pub max_retries: usize,
}

impl Default for RawBucket {
    fn default() -> Self {
        RawBucket {
            url: String::new(),
            s3: strata_objstore::S3Options::default(),
            request_timeout: Millis(30_000),
            max_retries: 5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCompactor {
    /// Run the compactor inside `strata all`.
    pub enabled: bool,
    /// Length of compacted blocks.
    pub range: Millis,
    /// How often the compactor runs.
    pub interval: Millis,
    /// How long a replaced block stays (marked) before it is deleted.
    pub deletion_delay: Millis,
    /// How long a block folder without meta.json (an abandoned upload) is left alone before it
    /// is deleted.
    pub partial_deletion_delay: Millis,
    /// Data older than this is deleted; 0 keeps everything.
    pub retention: Millis,
    /// Per-tenant retention overriding `retention`.
    #[serde(deserialize_with = "tenant_map")]
    pub tenant_retention: std::collections::BTreeMap<String, Millis>,
}

impl Default for RawCompactor {
    fn default() -> Self {
        RawCompactor {
            enabled: true,
            range: Millis(24 * 3_600_000),
            interval: Millis(5 * 60_000),
            deletion_delay: Millis(3_600_000),
            partial_deletion_delay: Millis(24 * 3_600_000),
            retention: Millis(0),
            tenant_retention: Default::default(),
        }
    }
}

/// Validated block, bucket and compactor settings.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub bucket: strata_objstore::BucketConfig,
    pub block_range_ms: i64,
    pub block: strata_block::BlockOptions,
    pub compactor_enabled: bool,
    pub compactor: strata_block::compact::CompactorConfig,
    pub compactor_interval: Duration,
    /// How often a querier re-lists the bucket.
    pub sync_interval: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuerier {
    /// How far back an instant selector looks for a sample (Prometheus's
    /// `--query.lookback-delta`).
    pub lookback_delta: Millis,
    /// The longest a query may run (`--query.timeout`); a request's `timeout` can only shorten it.
    pub timeout: Millis,
    /// The most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
}

impl Default for RawQuerier {
    fn default() -> Self {
        let engine = EngineOpts::default();
        RawQuerier {
            lookback_delta: Millis(engine.lookback_delta_ms.unsigned_abs()),
            timeout: Millis(120_000),
            max_samples: engine.max_samples,
        }
    }
}

/// Validated settings of the query path.
#[derive(Debug, Clone)]
pub struct QuerierConfig {
    pub engine: EngineOpts,
    pub timeout: Duration,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub ingester: IngesterConfig,
    pub raft: RaftSettings,
    pub querier: QuerierConfig,
    /// What to scrape; empty `scrape_configs` means no scraping.
    pub scrape: ScrapeConfigs,
    pub storage: StorageConfig,
}

/// `:9009` means every interface, as in Prometheus and Mimir.
pub fn parse_addr(field: &'static str, s: &str) -> Result<SocketAddr, ConfigError> {
    let full = if s.starts_with(':') { format!("0.0.0.0{s}") } else { s.to_string() };
    // A host name (`localhost:9009`) as Go's listener takes it: its first IPv4 address, else
    // its first address.
    let resolved = || {
        use std::net::ToSocketAddrs;
        let all: Vec<SocketAddr> = full.to_socket_addrs().ok()?.collect();
        all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
    };
    full.parse().ok().or_else(resolved).ok_or_else(|| ConfigError::Invalid {
        field,
        message: format!("{s:?} is not a host:port address (e.g. :9009 or 127.0.0.1:9009)"),
    })
}

impl RawConfig {
    /// Reads and parses a YAML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        let mut raw = Self::from_yaml(&text, &path.display().to_string())?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            raw.config_dir = dir.to_path_buf();
        }
        Ok(raw)
    }

    /// Parses YAML text; `origin` names the source in errors.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(RawConfig::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| {
            // Quote the offending line so the message names the key even when serde only
            // knows the enclosing section.
            let line = e
                .location()
                .and_then(|l| text.lines().nth(l.line().saturating_sub(1)))
                .map(|l| format!(" (`{}`)", l.trim()))
                .unwrap_or_default();
            ConfigError::Parse { path: origin.to_string(), message: format!("{e}{line}") }
        })
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let i = &self.ingester;
        if !(1..=4096).contains(&i.shards) {
            return Err(ConfigError::Invalid {
                field: "ingester.shards",
                message: format!("{} is outside 1..=4096", i.shards),
            });
        }
        if i.out_of_order_window.0 > self.blocks.range.0 {
            // A range stays in the head (and the Raft log) until the window past its end has
            // gone by: a longer window would keep days of data in memory.
            return Err(ConfigError::Invalid {
                field: "ingester.out_of_order_window",
                message: format!(
                    "{}ms is longer than blocks.range ({}ms)",
                    i.out_of_order_window.0, self.blocks.range.0
                ),
            });
        }
        if i.max_request_bytes.0 == 0 || i.max_decompressed_bytes.0 < i.max_request_bytes.0 {
            return Err(ConfigError::Invalid {
                field: "ingester.max_decompressed_bytes",
                message: "must be positive and at least ingester.max_request_bytes".into(),
            });
        }
        let (hb, et) = (self.raft.heartbeat_interval.0, self.raft.election_timeout.0);
        if hb == 0 || et < hb.saturating_mul(2) {
            return Err(ConfigError::Invalid {
                field: "raft.election_timeout",
                message: format!("{et}ms must be at least twice raft.heartbeat_interval ({hb}ms)"),
            });
        }
        let q = &self.querier;
        let positive = |field: &'static str, ms: u64| {
            if ms == 0 {
                return Err(ConfigError::Invalid {
                    field,
                    message: "must be greater than 0".into(),
                });
            }
            Ok(ms)
        };
        let lookback_ms = positive("querier.lookback_delta", q.lookback_delta.0)?;
        let timeout_ms = positive("querier.timeout", q.timeout.0)?;
        if q.max_samples == 0 {
            return Err(ConfigError::Invalid {
                field: "querier.max_samples",
                message: "must be greater than 0".into(),
            });
        }
        let querier = QuerierConfig {
            engine: EngineOpts {
                lookback_delta_ms: i64::try_from(lookback_ms).unwrap_or(i64::MAX),
                max_samples: q.max_samples,
                ..EngineOpts::default()
            },
            timeout: Duration::from_millis(timeout_ms),
        };
        let scrape = ScrapeSection { global: self.global, scrape_configs: self.scrape_configs }
            .validate(&self.config_dir)?;
        let raft = RaftSettings {
            heartbeat_interval_ms: hb,
            election_timeout_min_ms: et,
            election_timeout_max_ms: et.saturating_mul(2),
            ..RaftSettings::default()
        };
        let storage =
            validate_storage(&self.blocks, &self.bucket, &self.compactor, &self.data_dir)?;
        let chunk_range_ms = storage.block_range_ms;
        Ok(Config {
            storage,
            http_addr: parse_addr("http_addr", &self.http_addr)?,
            grpc_addr: parse_addr("grpc_addr", &self.grpc_addr)?,
            data_dir: self.data_dir,
            ingester: IngesterConfig {
                shards: i.shards,
                head: HeadConfig {
                    ooo_window_ms: i64::try_from(i.out_of_order_window.0).unwrap_or(i64::MAX),
                    chunk_range_ms,
                    ..HeadConfig::default()
                },
                limits: DecodeLimits {
                    max_request_bytes: i.max_request_bytes.0,
                    max_decompressed_bytes: i.max_decompressed_bytes.0,
                },
            },
            raft,
            querier,
            scrape,
        })
    }
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn validate_storage(
    b: &RawBlocks,
    bucket: &RawBucket,
    c: &RawCompactor,
    data_dir: &Path,
) -> Result<StorageConfig, ConfigError> {
    let invalid = |field: &'static str, message: String| ConfigError::Invalid { field, message };
    if b.range.0 < 10_000 {
        return Err(invalid("blocks.range", format!("{}ms is shorter than 10s", b.range.0)));
    }
    if b.data_column_duration.0 < 1000 {
        return Err(invalid("blocks.data_column_duration", "must be at least 1s".into()));
    }
    if b.row_group_rows == 0 {
        return Err(invalid("blocks.row_group_rows", "must be greater than 0".into()));
    }
    if c.range.0 < b.range.0 || !c.range.0.is_multiple_of(b.range.0) {
        return Err(invalid(
            "compactor.range",
            format!(
                "{}ms must be a multiple of blocks.range ({}ms, also set by --block-range)",
                c.range.0, b.range.0
            ),
        ));
    }
    if c.interval.0 == 0 {
        return Err(invalid("compactor.interval", "must be greater than 0".into()));
    }
    if c.partial_deletion_delay.0 < 10 * 60_000 {
        // Shorter could delete an upload that is still being retried.
        return Err(invalid("compactor.partial_deletion_delay", "must be at least 10m".into()));
    }
    let url = if bucket.url.is_empty() {
        let dir = std::path::absolute(data_dir.join("bucket")).map_err(|e| {
            invalid("bucket.url", format!("cannot resolve the data directory: {e}"))
        })?;
        format!("file://{}", dir.display())
    } else {
        bucket.url.clone()
    };
    if bucket.request_timeout.0 == 0 {
        return Err(invalid("bucket.request_timeout", "must be above 0".into()));
    }
    let cfg = strata_objstore::BucketConfig {
        url,
        s3: bucket.s3.clone(),
        request_timeout: Duration::from_millis(bucket.request_timeout.0),
        max_retries: bucket.max_retries,
    };
    cfg.check().map_err(|e| invalid("bucket.url", e.to_string()))?;
    let retention = |m: Millis| (m.0 > 0).then(|| ms_i64(m.0));
    let range_ms = ms_i64(b.range.0);
    Ok(StorageConfig {
        bucket: cfg,
        block_range_ms: range_ms,
        block: strata_block::BlockOptions {
            row_group_rows: b.row_group_rows,
            data_column_ms: ms_i64(b.data_column_duration.0),
            ..strata_block::BlockOptions::default()
        },
        compactor_enabled: c.enabled,
        compactor: strata_block::compact::CompactorConfig {
            range_ms: ms_i64(c.range.0),
            // Level-1 blocks of a window arrive up to 1.5 block ranges after it ends.
            grace_ms: range_ms * 2,
            retention_ms: retention(c.retention),
            tenant_retention_ms: c
                .tenant_retention
                .iter()
                .map(|(t, m)| (t.clone(), retention(*m)))
                .collect(),
            deletion_delay_ms: ms_i64(c.deletion_delay.0),
            partial_delay_ms: ms_i64(c.partial_deletion_delay.0),
        },
        compactor_interval: Duration::from_millis(c.interval.0),
        sync_interval: Duration::from_millis((b.range.0 / 4).clamp(1000, 60_000)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration("250ms").unwrap(), 250);
        assert_eq!(parse_duration("0").unwrap(), 0);
        for bad in ["", "5", "5x", "m", "-1s", "5s5s", "1s1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = RawConfig::from_yaml("ingester:\n  shard: 3\n", "t.yaml").unwrap_err().to_string();
        assert!(e.contains("shard") && e.contains("line 2"), "{e}");
        let e = RawConfig::from_yaml("ingester:\n  out_of_order_window: soon\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("out_of_order_window") && e.contains("soon"), "{e}");
        // The key and line of the bad value itself, not of its section's first key.
        let yaml = "querier:\n  lookback_delta: 5m\n  timeout: soon\n";
        let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("querier.timeout") && e.contains("line 3"), "{e}");
        let e = RawConfig::from_yaml("raft:\n  election_timeout: 300000000y\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("raft.election_timeout") && e.contains("out of range"), "{e}");
        let e = RawConfig::from_yaml("ingester:\n  shards: 0\n", "t.yaml").unwrap().validate();
        assert!(e.unwrap_err().to_string().contains("ingester.shards"));
        let e = RawConfig::from_yaml("http_addr: nowhere\n", "t.yaml").unwrap().validate();
        assert!(e.unwrap_err().to_string().contains("http_addr"));
        for (yaml, line) in [
            ("compactor:\n  tenant_retention:\n    a: 1d\n    b: 1d\n    a: 2d\n", "line 5"),
            ("compactor:\n  tenant_retention:\n    b: 1d\n    \"\": 1d\n", "line 4"),
        ] {
            let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap_err().to_string();
            assert!(e.contains("tenant_retention") && e.contains(line), "{e}");
        }
        let yaml = "compactor:\n  tenant_retention:\n    a: 1d\n    b: 0s\n";
        let cfg = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap();
        assert_eq!(cfg.storage.compactor.tenant_retention_ms.len(), 2);
        // Sizes with or without a unit; a bad one is named with its line.
        let yaml = "ingester:\n  max_request_bytes: 16MiB\n  max_decompressed_bytes: 134217728\n";
        let cfg = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap();
        assert_eq!(cfg.ingester.limits.max_request_bytes, 16 << 20);
        assert_eq!(cfg.ingester.limits.max_decompressed_bytes, 128 << 20);
        let yaml = "ingester:\n  shards: 2\n  max_request_bytes: 16 MB please\n";
        let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("ingester.max_request_bytes") && e.contains("line 3"), "{e}");
        let cfg = RawConfig::from_yaml("http_addr: localhost:9009\n", "t.yaml").unwrap();
        assert_eq!(cfg.validate().unwrap().http_addr, "127.0.0.1:9009".parse().unwrap());
    }

    #[test]
    fn querier_section() {
        let cfg = RawConfig::from_yaml("", "t.yaml").unwrap().validate().unwrap();
        assert_eq!(cfg.querier.engine.lookback_delta_ms, 300_000);
        assert_eq!(cfg.querier.engine.max_samples, 50_000_000);
        assert_eq!(cfg.querier.timeout, Duration::from_secs(120));
        let yaml = "querier:\n  lookback_delta: 1m\n  timeout: 30s\n  max_samples: 1000\n";
        let cfg = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap();
        assert_eq!(cfg.querier.engine.lookback_delta_ms, 60_000);
        assert_eq!(cfg.querier.engine.max_samples, 1000);
        assert_eq!(cfg.querier.timeout, Duration::from_secs(30));

        let e = RawConfig::from_yaml("querier:\n  timeout: 30s\n  max_sample: 5\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_sample") && e.contains("line 3"), "{e}");
        let e = RawConfig::from_yaml("querier:\n  lookback_delta: later\n", "t.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lookback_delta") && e.contains("later"), "{e}");
        for (yaml, field) in [
            ("querier:\n  timeout: 0s\n", "querier.timeout"),
            ("querier:\n  lookback_delta: 0\n", "querier.lookback_delta"),
            ("querier:\n  max_samples: 0\n", "querier.max_samples"),
            ("compactor:\n  partial_deletion_delay: 1m\n", "compactor.partial_deletion_delay"),
            ("bucket:\n  request_timeout: 0s\n", "bucket.request_timeout"),
            ("ingester:\n  out_of_order_window: 3h\n", "ingester.out_of_order_window"),
            ("bucket:\n  url: ftp://x\n", "bucket.url"),
            ("bucket:\n  url: s3://\n", "bucket.url"),
            ("bucket:\n  url: file://relative/x\n", "bucket.url"),
            ("bucket:\n  url: /no/scheme\n", "bucket.url"),
        ] {
            let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn scrape_configs() {
        let yaml = "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [\"localhost:9100\"]\n        labels: {env: dev}\n";
        let cfg = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap();
        assert_eq!(cfg.scrape.global.scrape_interval, Duration::from_secs(5));
        let job = &cfg.scrape.scrape_configs[0];
        assert_eq!(job.job_name, "node");
        assert_eq!(job.scrape_interval, Duration::from_secs(5));
        assert_eq!(job.static_configs[0].targets, ["localhost:9100"]);
        assert_eq!(job.static_configs[0].labels.get("env"), Some("dev"));
        let cfg = RawConfig::from_yaml("", "t.yaml").unwrap().validate().unwrap();
        assert!(cfg.scrape.scrape_configs.is_empty());

        // An unknown key, a bad value, and a rule across fields each name their field.
        let yaml = "scrape_configs:\n  - job_name: node\n    scrape_intervall: 5s\n";
        let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("scrape_intervall") && e.contains("line 3"), "{e}");
        let yaml = "scrape_configs:\n  - job_name: node\n    scrape_interval: 1x\n";
        let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap_err().to_string();
        assert!(e.contains("scrape_interval") && e.contains("line 3"), "{e}");
        let yaml = "scrape_configs:\n  - job_name: node\n    scrape_interval: 5s\n    scrape_timeout: 10s\n";
        let e = RawConfig::from_yaml(yaml, "t.yaml").unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("scrape_configs[0].scrape_timeout"), "{e}");
    }

    #[test]
    fn example_config_parses() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/strata.yaml");
        let cfg = RawConfig::from_file(Path::new(path)).unwrap().validate().unwrap();
        assert_eq!(cfg.http_addr.port(), 9009);
        assert_eq!(cfg.ingester.shards, 16);
        assert_eq!(cfg.querier.timeout, Duration::from_secs(120));
        assert!(cfg.scrape.scrape_configs.is_empty());

        // The commented-out scrape example at the end is valid once uncommented.
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("\n# global:\n").expect("scrape example");
        let example: String = text[start + 1..]
            .lines()
            .map(|l| l.strip_prefix("# ").or_else(|| l.strip_prefix('#')).unwrap_or(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let cfg = RawConfig::from_yaml(&example, path).unwrap().validate().unwrap();
        assert_eq!(cfg.scrape.scrape_configs.len(), 2);
        assert_eq!(cfg.scrape.scrape_configs[1].scrape_interval, Duration::from_secs(30));
    }
}
